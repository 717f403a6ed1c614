"""Kubernetes resource quantities: parse, add, scale and format, exactly (Fractions)."""

from __future__ import annotations

import functools
import re
from fractions import Fraction

_SUFFIXES = {
    "m": Fraction(1, 1000), "": Fraction(1), "k": Fraction(10**3), "M": Fraction(10**6),
    "G": Fraction(10**9), "T": Fraction(10**12), "Ki": Fraction(2**10), "Mi": Fraction(2**20),
    "Gi": Fraction(2**30), "Ti": Fraction(2**40),
}
_PATTERN = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(m|k|M|G|T|Ki|Mi|Gi|Ti)?$")


def parse(text: str | int) -> Fraction:
    """The exact value of a quantity such as "500m", "2", "1.5Gi"."""
    stripped = str(text).strip()
    # Cached only when short: drift compares any two differing strings as quantities, and a tenant
    # admin writes some of them (a long value would pin up to MiBs per entry in the cache).
    return _parse(stripped) if len(stripped) <= CACHED_LENGTH else _parse.__wrapped__(stripped)


# The API's quantities are at most 32 characters (api/common.py). Every pass parses the plan's and
# the ceiling's amounts again (a plan change: eight per tenant, 5 % of the operator's samples), and
# a cluster has few distinct ones; a Fraction is immutable, so one may be shared.
CACHED_LENGTH = 32


@functools.lru_cache(maxsize=4096)
def _parse(text: str) -> Fraction:
    match = _PATTERN.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a Kubernetes quantity (examples: 500m, 2, 4Gi)")
    return Fraction(match.group(1)) * _SUFFIXES[match.group(2) or ""]


def format_cpu(value: Fraction) -> str:
    """CPU in whole cores when exact, else in millicores (rounded up), as the API server writes it."""
    if value.denominator == 1:
        return str(value.numerator)
    millis = -(-value * 1000 // 1)
    return str(millis // 1000) if millis % 1000 == 0 else f"{millis}m"


def format_bytes(value: Fraction) -> str:
    """Bytes in the largest binary unit that keeps the value whole (rounded up to Mi)."""
    mebibytes = -(-value // 2**20)
    for unit, size in (("Ti", 2**20), ("Gi", 2**10)):
        if mebibytes and mebibytes % size == 0:
            return f"{mebibytes // size}{unit}"
    return f"{mebibytes}Mi"


def equal(a: str | int, b: str | int) -> bool:
    """Whether two quantities mean the same amount ("1024Mi" == "1Gi")."""
    try:
        return parse(a) == parse(b)
    except ValueError:
        return str(a) == str(b)
