"""`tenantry plan`'s field-by-field diff (pure, no cluster).

Tested here:
- changed, added and removed fields are listed with their YAML path, unchanged ones are not
- a key stored in the cluster while the webhook was down (a newline, quotes, 500 characters) is
  quoted and cut in the path, as `tenantry validate` shows keys: nothing raw reaches the CI log
"""

from __future__ import annotations

from tenantry.cli.plan import diff


def test_changed_added_and_removed_fields() -> None:
    old = {"spec": {"plan": {"seats": 5}, "company": "A", "branding": "x"}}
    new = {"spec": {"plan": {"seats": 6}, "company": "A", "domains": ["a.de"]}}
    assert diff(old, new) == ["spec.branding: 'x' -> None", "spec.domains: None -> ['a.de']",
                              "spec.plan.seats: 5 -> 6"]
    assert diff(old, old) == []


def test_odd_keys_from_the_cluster_are_quoted_and_cut() -> None:
    odd, long = "x\ny: \"1\"", "k" * 500
    current = {"spec": {"features": {"tables": {"limits": {odd: 1, long: 2}}}}}
    lines = diff(current, {"spec": {"features": {"tables": {"limits": {}}}}})
    assert lines == [f'spec.features.tables.limits["{"k" * 40}..."]: 2 -> None',  # sorted by key
                     'spec.features.tables.limits["x\\ny: \\"1\\""]: 1 -> None']
    assert all("\n" not in line for line in lines)
