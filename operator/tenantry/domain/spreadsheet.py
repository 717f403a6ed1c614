"""CSV cells a spreadsheet shows as text and never runs (shared by the portal and the CLI)."""

from __future__ import annotations

import re

# Spaces or quotes may stand before the formula character: `a;"=1+1"` is a formula once split at `;`.
# (A tab is a separator, not a space here: as both, a run of tabs was searched again from each of
# them, quadratic in its length.)
_FORMULA = re.compile(r"(^|[;,\t|])((?:[^\S\t]|\")*)([=+\-@])")


def cell(value: object) -> str:
    """No line breaks, and a formula character at the start, or after a character a spreadsheet in
    another locale splits cells at (`;` in German Excel), gets a `'` before it."""
    text = re.sub(r"[\r\n]+", " ", str(value))
    return _FORMULA.sub(lambda m: f"{m.group(1)}{m.group(2)}'{m.group(3)}", text)
