"""domain.children.compact_json: the operator's ConfigMap JSON is what json.dumps(sort_keys=True,
ensure_ascii=False, separators=(",", ":")) writes (one spelling, so an unchanged document is never
written again), for every JSON document without exponent floats, and the same value for all of them.

Tested here:
- identical text for documents of strings (any Unicode, quotes, control characters), integers,
  booleans, null, nested objects and arrays, and plain floats
- floats with an exponent: a different spelling (1e20 for 1e+20), the same parsed value
"""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from tenantry.domain.children import compact_json

_scalars = st.none() | st.booleans() | st.integers(-2**63, 2**63 - 1) | st.text() \
    | st.floats(allow_nan=False, allow_infinity=False, min_value=-1e15, max_value=1e15).filter(
        lambda f: "e" not in repr(f))
_documents = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=4)
                          | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=30)


@given(_documents)
def test_same_text_as_json_dumps(document: object) -> None:
    assert compact_json(document) == json.dumps(document, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_exponent_floats_keep_their_value(number: float) -> None:
    assert json.loads(compact_json({"limit": number})) == {"limit": number}
