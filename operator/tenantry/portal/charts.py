"""Server-side SVG for the portal: bars, progress and the white-label preview (pure).

Numbers and colours only reach attributes after a check here (a colour must be #RRGGBB, or the
fallback is used); text goes through the template engine's escaping. No script, no external
reference: the pages work without JavaScript and under a Content-Security-Policy without inline
scripts or styles.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass

from tenantry.api.svg import svg_problems

_COLOUR = re.compile(r"#[0-9A-Fa-f]{6}")
FALLBACK_PRIMARY, FALLBACK_TEXT = "#334155", "#FFFFFF"


def colour(value: object, fallback: str) -> str:
    """`value` when it is exactly #RRGGBB, else the fallback (allow-list: it lands in an attribute)."""
    return value if isinstance(value, str) and _COLOUR.fullmatch(value) else fallback


@dataclass(frozen=True)
class Bar:
    """A horizontal bar of `share` (clipped to 0..1.25, 1 = the limit), with an optional marker."""

    width: float
    marker: float | None
    over: bool


def bar(value: float, limit: float, marker_value: float | None = None, scale: float = 200.0) -> Bar:
    top = max(limit, value, marker_value or 0.0, 1.0)
    width = round(scale * min(value / top, 1.0), 1)
    marker = round(scale * min(marker_value / top, 1.0), 1) if marker_value is not None else None
    return Bar(width, marker, bool(limit) and value > limit)


def progress(share: float, scale: float = 200.0) -> float:
    return round(scale * max(0.0, min(share, 1.0)), 1)


def logo_source(logo: object) -> str | None:
    """A URL an <img> may load: the inline SVG (checked again here, as the operator does) as a
    data: URL (an image cannot run script), or an https URL; None otherwise."""
    if not isinstance(logo, dict):
        return None
    svg, url = logo.get("svg"), logo.get("url")
    if isinstance(svg, str) and svg and not svg_problems(svg):
        return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()
    if isinstance(url, str) and url.startswith("https://") and not re.search(r"[\s\"'<>\\]", url):
        return url
    return None
