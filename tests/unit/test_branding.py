"""White-label branding: validation (SVG attacks, colours, URLs), contrast, resolution, CSS.

Tested here:
- a table of hostile SVG logos, each rejected with a message naming what to remove
- safe SVGs pass; exactly one of logo.url and logo.svg
- WCAG contrast ratios against known values; a low ratio becomes a warning, not an error
- resolution: tenant's Branding -> partner default -> platform default; missing and invalid ones
- the ConfigMap data: JSON and CSS custom properties; a Branding whose data would not fit its
  ConfigMap is refused (webhook, validate, reconcile)
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from tenantry.api.branding import BrandingSpec
from tenantry.api.svg import svg_problems
from tenantry.domain.branding import (
    ResolvedBranding,
    branding_data,
    contrast_ratio,
    contrast_warning,
    resolve_branding,
)
from tenantry.domain.features import Unresolved

SAFE = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><circle cx="5" cy="5" r="4" fill="#c00"/></svg>'

ATTACKS = [
    ("script element", '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "<script>"),
    ("onload handler", '<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', "onload="),
    ("onclick on a child", '<svg xmlns="http://www.w3.org/2000/svg"><rect onclick="x()"/></svg>', "onclick="),
    ("javascript link", '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink">'
                        '<a xlink:href="javascript:alert(1)"><text>x</text></a></svg>', "javascript: URL"),
    ("external image", '<svg xmlns="http://www.w3.org/2000/svg"><image href="https://tracker.example/p.png"/></svg>',
     "external content"),
    ("external use", '<svg xmlns="http://www.w3.org/2000/svg"><use href="https://evil.example/s.svg#a"/></svg>',
     "external content"),
    ("foreignObject", '<svg xmlns="http://www.w3.org/2000/svg"><foreignObject><div/></foreignObject></svg>',
     "<foreignObject>"),
    ("css import", '<svg xmlns="http://www.w3.org/2000/svg"><style>@import url(https://x.example/a.css);</style></svg>',
     "<style>"),
    ("css url in style attribute",
     '<svg xmlns="http://www.w3.org/2000/svg"><rect style="fill:url(https://x/y)"/></svg>', "style="),
    ("data URL",
     '<svg xmlns="http://www.w3.org/2000/svg"><image href="data:text/html;base64,PHNjcmlwdD4="/></svg>',
     "data: URL"),
    ("entity bomb", '<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;">]><svg>&b;</svg>',
     "DOCTYPE"),
    ("not SVG at all", "<html><body>hi</body></html>", "root element <html>"),
    ("broken XML", "<svg><g></svg>", "not well-formed"),
    ("too big", "<svg>" + "<g/>" * 20000 + "</svg>", "64 KiB"),
]


@pytest.mark.parametrize(("why", "svg", "words"), ATTACKS, ids=[a[0] for a in ATTACKS])
def test_hostile_svg_is_rejected(why: str, svg: str, words: str) -> None:
    problems = svg_problems(svg)
    assert problems, why
    assert any(words in p for p in problems), problems


def test_safe_svg_passes() -> None:
    assert svg_problems(SAFE) == []
    assert svg_problems('<svg xmlns="http://www.w3.org/2000/svg"><use href="#a"/></svg>') == []


def branding(**overrides: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {"colours": {"primary": "#1F4E79"}, "logo": {"svg": SAFE}, "assistantName": "Ada"}
    raw.update(overrides)
    return raw


@pytest.mark.parametrize(("change", "field"), [
    ({"logo": {"svg": ATTACKS[0][1]}}, "logo.svg"),
    ({"logo": {"url": "http://insecure.example/logo.png"}}, "logo.url"),
    ({"logo": {"url": "https://a.example/l.png", "svg": SAFE}}, "exactly one"),
    ({"colours": {"primary": "red"}}, "colours.primary"),
    ({"favicon": "javascript:alert(1)"}, "favicon"),
    ({"welcome": {"deutsch": "Hallo"}}, "welcome"),
])
def test_invalid_brandings_name_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as error:
        BrandingSpec.model_validate(branding(**change))
    assert field in str(error.value)


@pytest.mark.parametrize(("a", "b", "ratio"), [("#000000", "#FFFFFF", 21.0), ("#FFFFFF", "#FFFFFF", 1.0),
                                               ("#777777", "#FFFFFF", 4.48)])
def test_contrast_ratio_matches_wcag(a: str, b: str, ratio: float) -> None:
    assert contrast_ratio(a, b) == pytest.approx(ratio, abs=0.01)


def test_low_contrast_is_a_warning_with_a_hint() -> None:
    assert contrast_warning(BrandingSpec.model_validate(branding())) is None
    warning = contrast_warning(BrandingSpec.model_validate(branding(colours={"primary": "#FFD700"})))
    assert warning and "4.5:1" in warning and "#FFD700" in warning and "colours.text to #000000" in warning


PLATFORM, PARTNER = "tenantry-system", "partner-acme"
LOOKS = {(PLATFORM, "default"): branding(), (PARTNER, "default"): branding(assistantName="Acme"),
         (PARTNER, "gold"): branding(assistantName="Gold"), (PLATFORM, "broken"): {"colours": {"primary": "nope"}}}


def look(ns: str, name: str) -> dict[str, Any] | None:
    return LOOKS.get((ns, name))


@pytest.mark.parametrize(("asked", "partner", "source"), [
    ("gold", PARTNER, "partner-acme/gold"),
    (None, PARTNER, "partner-acme/default"),
    (None, "partner-other", "tenantry-system/default"),
])
def test_resolution_order(asked: str | None, partner: str, source: str) -> None:
    resolved = resolve_branding(asked, look, partner, PLATFORM)
    assert isinstance(resolved, ResolvedBranding) and resolved.source == source


def test_missing_and_invalid_brandings() -> None:
    missing = resolve_branding("silver", look, PARTNER, PLATFORM)
    assert isinstance(missing, Unresolved) and missing.reason == "BrandingNotFound"
    assert "spec.branding" in missing.message
    broken = resolve_branding("broken", look, PARTNER, PLATFORM)
    assert isinstance(broken, Unresolved) and broken.reason == "InvalidBranding"
    assert "spec.colours.primary" in broken.message


def test_config_map_data_has_json_css_and_logo() -> None:
    resolved = resolve_branding("gold", look, PARTNER, PLATFORM)
    assert isinstance(resolved, ResolvedBranding)
    data = branding_data(resolved)
    assert json.loads(data["branding.json"])["assistantName"] == "Gold"
    assert "--brand-primary: #1F4E79;" in data["branding.css"]
    assert "--brand-on-primary: #FFFFFF;" in data["branding.css"]
    assert data["logo.svg"] == SAFE


def test_a_branding_that_renders_past_its_configmap_is_refused_by_the_webhook_validate_and_the_reconcile() -> None:
    """Every field valid, but escaped for HTML (< > & six bytes each) and with the logo twice, the
    front-end config would be over the API server's 1 MiB per ConfigMap."""
    from tenantry.api.svg import SVG_MAX_BYTES
    from tenantry.domain.admission import spec_problems
    from tenantry.domain.branding import BRANDING_DATA_MAX_BYTES, resolve_branding

    head, tail = '<svg xmlns="http://www.w3.org/2000/svg"><text>', "</text></svg>"
    svg = head + ">" * (SVG_MAX_BYTES - len(head) - len(tail)) + tail
    spec = {"colours": {"primary": "#112233"}, "logo": {"svg": svg},
            "welcome": {f"{a}{b}": "&" * 2000 for a in "abcdefghij" for b in "abcde"}}
    BrandingSpec.model_validate(spec)  # each field on its own is fine
    [problem] = spec_problems("Branding", spec)
    assert problem.field == "spec" and f"at most {BRANDING_DATA_MAX_BYTES:,} fit" in problem.message
    assert "renders to 1,05" in problem.message and "shorten the welcome texts" in problem.message
    resolved = resolve_branding("big", lambda namespace, name: spec if name == "big" else None, "partner-p", "platform")
    assert isinstance(resolved, Unresolved) and resolved.reason == "InvalidBranding"
    # The same logo with a few texts fits.
    assert spec_problems("Branding", {**spec, "welcome": {"de": "Willkommen & hallo"}}) == []


@pytest.mark.parametrize("invisible", ["\u00ad", "\u034f", "\u061c", "\u115f", "\u1160", "\u17b4", "\u180e", "\u3164",
                                       "\uffa0", "\U0001d173", "\U0001d17a"])
def test_invisible_and_formatting_characters_are_refused_in_names(invisible: str) -> None:
    """Each was let through by the ranges before: invisible or reordering names in the partner's front ends."""
    with pytest.raises(ValidationError, match="not allowed in a name"):
        BrandingSpec.model_validate({"colours": {"primary": "#112233"}, "displayName": f"Acme{invisible}Cloud"})
    for name in ("한국어 서비스", "العربية", "ខ្មែរ", "Ελληνικά", "𝄞 Musik", "ÿ Ā ſ", "Süd Cloud KI (Beta) 日本 🤖"):
        BrandingSpec.model_validate({"colours": {"primary": "#112233"}, "displayName": name})
