"""Property-based tests (hypothesis): random input to the models and the pure domain, never a crash.

Tested here, for generated input that is mostly well-formed with random damage:
- a Tenant spec either validates and then yields a complete desired state (namespace, quota with
  every quantity parseable, flags document, admin binding) for every lifecycle state, or fails
  with one "field: message" line per problem
- FeatureSets with random `extends` graphs resolve to a plan or to a named reason (a cycle, too
  deep, not found), never loop or raise
- Brandings with random colours and SVG either validate or name the field
- the admission checks (reserved metadata, immutable and platform-only fields, the models' rules)
  return problems for any metadata and spec, never raise
- the leader-election decisions keep their promise for any timing: a holder that renewed within
  the lease duration is never taken over
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from tenantry.api.branding import BrandingSpec
from tenantry.api.tenant import TenantSpec
from tenantry.domain import admission, leadership, quantity
from tenantry.domain.children import TenantInput, desired_state
from tenantry.domain.config import OperatorConfig
from tenantry.domain.features import Unresolved, resolve_plan
from tenantry.domain.lifecycle import error_lines

PROFILE = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CONFIG = OperatorConfig(platform_domain="platform.test")
ANYTHING = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
                        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner,
                                                                                     max_size=3), max_leaves=8)
FEATURES = st.sampled_from(["chat", "files", "tables", "meetings", "teleport", ""])
EMAILS = st.sampled_from(["max@mustermann.de", "a@b.de", "not-an-email", "", "x@y"])
DOMAINS = st.sampled_from(["ki.mustermann.de", "co.uk", "*.x.de", "shop.platform.test", "a" * 70 + ".de", "de"])


def _maybe(value: st.SearchStrategy) -> st.SearchStrategy:
    """Mostly the value, sometimes anything at all in its place."""
    return st.one_of(value, value, value, ANYTHING)


TENANT_SPECS = st.fixed_dictionaries(
    {"company": _maybe(st.text(min_size=1, max_size=60)),
     "contact": _maybe(st.fixed_dictionaries({"name": st.text(min_size=1, max_size=20), "email": EMAILS})),
     "plan": _maybe(st.fixed_dictionaries({"featureSet": st.sampled_from(["business", "starter", "Bad Name"]),
                                           "seats": st.integers(min_value=-5, max_value=2_000_000)})),
     },
    optional={"state": _maybe(st.sampled_from(["Active", "Suspended", "Cancelled", "Paused"])),
              "features": _maybe(st.dictionaries(FEATURES, st.fixed_dictionaries(
                  {}, optional={"enabled": st.booleans(),
                                "limits": st.dictionaries(st.sampled_from(["tables", "rows", "x"]),
                                                          st.integers(min_value=-10, max_value=10**9))}),
                  max_size=4)),
              "domains": _maybe(st.lists(DOMAINS, max_size=4)),
              "admins": _maybe(st.lists(EMAILS, max_size=4)),
              "deletionPolicy": _maybe(st.sampled_from(["Retain", "Delete", "Purge"]))})

@PROFILE
@given(TENANT_SPECS)
def test_tenant_specs_give_a_desired_state_or_name_each_problem(raw: dict[str, Any]) -> None:
    try:
        spec = TenantSpec.model_validate(raw)
    except ValidationError as error:
        lines = error_lines(error, "spec")
        assert lines and all(line.startswith("spec") and ": " in line for line in lines)
        return
    plan = resolve_plan(spec.plan.feature_set, lambda ns, name: {"features": {"chat": {}}} if name == "business"
                        else None, "partner-a", "tenantry-system")
    inp = TenantInput("mustermann", "partner-a", "acme", spec, None if isinstance(plan, Unresolved) else plan, None)
    desired = desired_state(inp, CONFIG)
    kinds = [m["kind"] for m in desired.apply]
    assert kinds[0] == "Namespace"
    if not (spec.state == "Cancelled" and spec.deletion_policy == "Delete"):
        quota = next(m for m in (*desired.apply, *desired.ensure) if m["metadata"]["name"] == "tenantry-quota")
        for value in quota["spec"]["hard"].values():
            quantity.parse(value)  # every quantity the API server will be sent is well-formed


@st.composite
def plan_graphs(draw: st.DrawFn) -> dict[tuple[str, str], dict[str, Any]]:
    names = draw(st.lists(st.sampled_from(["a", "b", "c", "d", "e"]), min_size=1, max_size=5, unique=True))
    graph = {}
    for name in names:
        namespace = draw(st.sampled_from(["partner-a", "tenantry-system"]))
        spec: dict[str, Any] = {"features": draw(st.dictionaries(FEATURES.filter(bool), st.fixed_dictionaries(
            {"enabled": st.booleans()}), max_size=3).filter(lambda f: "teleport" not in f))}
        parent = draw(st.none() | st.sampled_from(["a", "b", "c", "d", "e", "missing"]))
        if parent:
            spec["extends"] = parent
        graph[(namespace, name)] = spec
    return graph


@PROFILE
@given(plan_graphs(), st.sampled_from(["a", "b", "c", "d", "e"]))
def test_plan_resolution_ends_in_a_plan_or_a_reason(graph: dict, start: str) -> None:
    result = resolve_plan(start, lambda ns, name: graph.get((ns, name)), "partner-a", "tenantry-system")
    if isinstance(result, Unresolved):
        assert result.reason in ("ExtendsCycle", "ExtendsTooDeep", "FeatureSetNotFound", "InvalidFeatureSet")
        assert result.message
    else:
        assert result.chain and len(result.chain) == len(set(result.chain))


@PROFILE
@given(st.fixed_dictionaries({"colours": _maybe(st.fixed_dictionaries({
    "primary": st.sampled_from(["#003366", "#FFF", "red", "#12345G"]),
    "secondary": st.sampled_from(["#FFCC00", "blue"])}))},
    optional={"logo": _maybe(st.fixed_dictionaries({"svg": st.sampled_from([
        '<svg xmlns="http://www.w3.org/2000/svg"/>', "<svg><script/></svg>", "not svg", "<svg onload='x'/>"])})),
        "assistantName": _maybe(st.text(max_size=40))}))
def test_brandings_validate_or_name_the_field(raw: dict[str, Any]) -> None:
    try:
        BrandingSpec.model_validate(raw)
    except ValidationError as error:
        assert all(line.startswith("spec") for line in error_lines(error, "spec"))


@PROFILE
@given(st.sampled_from(["Tenant", "Branding", "FeatureSet"]), ANYTHING, ANYTHING,
       st.dictionaries(st.sampled_from(["labels", "annotations", "finalizers"]), ANYTHING, max_size=3),
       st.dictionaries(st.sampled_from(["labels", "annotations", "finalizers"]), ANYTHING, max_size=3))
def test_admission_checks_return_problems_for_anything(kind: str, spec: Any, old_spec: Any, meta: dict,
                                                       old_meta: dict) -> None:
    def mapping(value: Any) -> dict:
        return value if isinstance(value, dict) else {}

    def metadata(raw: dict) -> dict:
        """What the API server could send: label/annotation maps and a finalizer list, of any content."""
        return {k: ({str(a): b for a, b in v.items()} if k != "finalizers" else [str(x) for x in v])
                for k, v in raw.items() if isinstance(v, dict if k != "finalizers" else list)}
    problems = [*admission.spec_problems(kind, mapping(spec)),
                *admission.reserved_metadata_changes(metadata(old_meta), metadata(meta)),
                *admission.immutable_changes(kind, {"spec": mapping(old_spec), "status": {"namespace": "x"}},
                                             mapping(spec)),
                *admission.platform_only_changes(kind, "partner-a", "tenantry-system", mapping(old_spec),
                                                 mapping(spec))]
    assert all(str(p) and p.field for p in problems)


@PROFILE
@given(st.floats(min_value=0, max_value=1000), st.floats(min_value=0, max_value=14.9))
def test_a_renewed_lease_is_never_taken_over(seen_at: float, elapsed: float) -> None:
    held = {"holderIdentity": "leader", "renewTime": "2026-11-26T10:00:00.000000Z"}
    observed = leadership.observe(None, held, now=seen_at)
    assert not leadership.may_take(observed, "candidate", 15.0, now=seen_at + elapsed)
