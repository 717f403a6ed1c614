"""`tenantry plan`'s field-by-field diff and derived lines (pure, no cluster).

Tested here:
- changed, added and removed fields are listed with their YAML path, unchanged ones are not
- a key stored in the cluster while the webhook was down (a newline, quotes, 500 characters) is
  quoted and cut in the path, as `tenantry validate` shows keys: nothing raw reaches the CI log
- the derived quota of a trial follows the stored Tenant's trial clock, as the operator serves it
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


def test_the_derived_quota_follows_the_trial_clock_of_the_stored_tenant() -> None:
    """A trial whose clock started 100 days ago is served as Suspended (90 days at most), though its
    `ends` is 200 days away: plan shows the quota the operator sets (pods=0); a new one runs."""
    import datetime

    from tenantry.cli.plan import _derived
    from tenantry.domain.config import OperatorConfig

    now = datetime.datetime.now(datetime.UTC)
    spec = {"company": "K", "contact": {"name": "K", "email": "k@k.de"}, "state": "Trial",
            "trial": {"ends": (now + datetime.timedelta(days=200)).strftime("%Y-%m-%dT%H:%M:%SZ")},
            "plan": {"featureSet": "business", "seats": 5}}
    plans = {("tenantry-system", "business"): {"features": {"chat": {}}}}

    def lookup(namespace: str, name: str) -> dict | None:
        return plans.get((namespace, name))

    config = OperatorConfig(platform_namespace="tenantry-system", platform_domain="platform.test")
    started = (now - datetime.timedelta(days=100)).strftime("%Y-%m-%dT%H:%M:%SZ")
    [quota] = [line for line in _derived(spec, "k", "partner-p", lookup, config, started) if line.startswith("quota")]
    assert "pods=0" in quota
    [quota] = [line for line in _derived(spec, "k", "partner-p", lookup, config) if line.startswith("quota")]
    assert "pods=0" not in quota
