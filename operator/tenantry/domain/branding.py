"""A tenant's white-label branding: which Branding applies, is it valid, and its front-end config."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from tenantry.api.branding import BrandingSpec
from tenantry.domain.features import SpecLookup, Unresolved, find
from tenantry.domain.lifecycle import describe_errors

DEFAULT_BRANDING = "default"
# The tenant's branding ConfigMap: the API server stores at most 1 MiB of a ConfigMap, and a
# Branding's texts grow when written into branding.json (< > & as \\u003c... are six bytes each; the
# inline logo is there and in logo.svg), so a valid Branding could render to more. Half that is
# more than any real one needs and leaves the rest of the ConfigMap room.
BRANDING_DATA_MAX_BYTES = 512 * 1024
# WCAG 2.x: 4.5:1 is the minimum contrast for normal text (level AA).
MIN_CONTRAST = 4.5


@dataclass(frozen=True)
class ResolvedBranding:
    source: str  # namespace/name
    spec: BrandingSpec


def branding_name(spec_branding: str | None) -> str:
    """The Branding a tenant asks for: its own choice, else the one named `default`."""
    return spec_branding or DEFAULT_BRANDING


def resolve_branding(spec_branding: str | None, lookup: SpecLookup, partner_namespace: str,
                     platform_namespace: str) -> ResolvedBranding | Unresolved:
    """Tenant's Branding -> the partner's `default` -> the platform's `default`."""
    name = branding_name(spec_branding)
    found = find(lookup, name, partner_namespace, platform_namespace)
    if found is None:
        where = "spec.branding" if spec_branding else f"a Branding named {DEFAULT_BRANDING!r}"
        return Unresolved("BrandingNotFound", f"no Branding {name!r} in namespace {partner_namespace!r} nor "
                         f"in the platform namespace {platform_namespace!r}: create it or fix {where}")
    source, raw = found
    try:
        resolved = ResolvedBranding(source, BrandingSpec.model_validate(raw))
    except ValidationError as error:
        return Unresolved("InvalidBranding", f"Branding {source} is invalid: {describe_errors(error, 'spec')}")
    too_big = size_problem(resolved.spec)
    return Unresolved("InvalidBranding", f"Branding {source} is invalid: spec: {too_big}") if too_big else resolved


def size_problem(spec: BrandingSpec) -> str | None:
    """Why the Branding's front-end config would not fit in its ConfigMap, or None. Checked by the
    webhook and `validate` too (the same measure: without the source's name, which the limit's
    room covers); without it the tenant's ConfigMap write failed on every pass."""
    size = sum(len(value.encode()) for value in branding_data(ResolvedBranding("", spec)).values())
    if size <= BRANDING_DATA_MAX_BYTES:
        return None
    return (f"it renders to {size:,} bytes of front-end config (branding.json with its texts escaped for HTML, "
            f"where < > & take six bytes each, branding.css and logo.svg); at most {BRANDING_DATA_MAX_BYTES:,} fit: "
            "shorten the welcome texts or the inline logo, or give the logo as logo.url")


def _luminance(colour: str) -> float:
    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast_ratio(a: str, b: str) -> float:
    """WCAG contrast ratio of two #RRGGBB colours, from 1 (none) to 21 (black on white)."""
    light, dark = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def text_colour_on(background: str) -> str:
    """Black or white, whichever reads better on the background."""
    return "#000000" if contrast_ratio(background, "#000000") >= contrast_ratio(background, "#FFFFFF") else "#FFFFFF"


def contrast_warning(spec: BrandingSpec) -> str | None:
    """A message when text on the primary colour is hard to read (below WCAG AA)."""
    primary, text = spec.colours.primary, spec.colours.text
    ratio = contrast_ratio(primary, text)
    if ratio >= MIN_CONTRAST:
        return None
    better = text_colour_on(primary)
    return (f"text {text} on the primary colour {primary} has a contrast of only {ratio:.2f}:1; WCAG AA asks "
            f"for {MIN_CONTRAST}:1: set colours.text to {better} "
            f"({contrast_ratio(primary, better):.2f}:1) or choose another primary colour")


_CSS_PLAIN = re.compile(r"[A-Za-z0-9 ._/:-]")
_COLOUR = re.compile(r"#[0-9A-Fa-f]{6}")


def css_string(value: str) -> str:
    """A quoted CSS string that holds exactly `value` and nothing can leave: every character but
    [A-Za-z0-9 ._/:-] is written as a hexadecimal escape followed by a space (CSS Syntax 4.3.7)."""
    return '"' + "".join(ch if _CSS_PLAIN.fullmatch(ch) else f"\\{ord(ch):x} " for ch in value) + '"'


def css_colour(value: str) -> str:
    """A #RRGGBB colour, checked again here: it goes into CSS unquoted."""
    if not _COLOUR.fullmatch(value):
        raise ValueError(f"not a #RRGGBB colour: {value!r}")
    return value


def css(spec: BrandingSpec) -> str:
    """CSS custom properties for a front end; every value serialised for its place (colours checked,
    text and URLs as CSS strings), so no value can end the declaration, the rule or a <style> element."""
    props = {"--brand-primary": css_colour(spec.colours.primary), "--brand-on-primary": css_colour(spec.colours.text)}
    if spec.colours.secondary:
        props["--brand-secondary"] = css_colour(spec.colours.secondary)
        props["--brand-on-secondary"] = text_colour_on(spec.colours.secondary)
    if spec.logo and spec.logo.url:
        props["--brand-logo-url"] = f"url({css_string(spec.logo.url)})"
    if spec.assistant_name:
        props["--brand-assistant-name"] = css_string(spec.assistant_name)
    body = "".join(f"  {key}: {value};\n" for key, value in props.items())
    return f":root {{\n{body}}}\n"


def html_safe_json(document: Any) -> str:
    """JSON that stays JSON inside an HTML <script> element: < > & and the JavaScript line separators
    only ever appear escaped (they can only occur inside strings, where \\uXXXX means the same)."""
    text = json.dumps(document, sort_keys=True, ensure_ascii=False, indent=2)
    for ch in "<>&\u2028\u2029":
        text = text.replace(ch, f"\\u{ord(ch):04x}")
    return text


def branding_data(resolved: ResolvedBranding) -> dict[str, str]:
    """ConfigMap data: branding.json, branding.css and, for an inline logo, logo.svg."""
    spec = resolved.spec
    document: dict[str, Any] = {"source": resolved.source, **spec.model_dump(by_alias=True, exclude_none=True)}
    data = {"branding.json": html_safe_json(document),
            "branding.css": css(spec)}
    if spec.logo and spec.logo.svg:
        data["logo.svg"] = spec.logo.svg
    return data
