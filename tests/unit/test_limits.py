"""Ceilings the platform sets and the operator enforces itself (pure functions, no cluster).

Tested here:
- egress: the metadata service, private, link-local, CGNAT, loopback, multicast and reserved IPv4
  networks are denied by default; IPv6 is allowed except ULA, link-local, loopback, v4-mapped and
  NAT64; a configured list replaces the default, is split by family, and is validated (the error
  names the variable)
- quota: base + perSeat x seats is clamped to the per-tenant ceiling (1,000,000 seats get the
  ceiling, not 10,000 cores) and the clamp is explained; object-count quotas are in the quota
- LimitRange: a per-container max (cpu, memory) and a per-PVC max storage, configurable
- a partner FeatureSet's spec.resources are ignored (webhook down or not), and named
- the tenant cap per partner: creation order, names break ties, provisioned tenants keep their place;
  a partner exactly at the cap decides without walking its tenants; every tenant namespace that
  exists holds a place (kept by Retain, or terminating) until it is gone, and a tenant of that
  name takes it back, so creating and deleting tenants cannot grow a partner's namespaces beyond
  the cap; a freed place goes to the oldest waiting tenants only; the catalogue counts existing
  namespaces from the operator's own marks only, each once
- settings from TENANTRY_* variables are validated with the variable's name in the error
"""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tenantry.api.featureset import ResourceAmounts, Resources
from tenantry.api.tenant import TenantSpec
from tenantry.domain import caps, naming, quantity, tenantpass
from tenantry.domain.caps import Held, within_partner_cap
from tenantry.domain.children import (
    PRIORITY_QUOTA,
    TenantInput,
    desired_state,
    egress_blocks,
    quota_clamped_message,
    quota_hard,
)
from tenantry.domain.config import DEFAULT_EGRESS_DENY_CIDRS, OperatorConfig
from tenantry.domain.features import Plan, ignored_resources_message, resolve_plan
from tenantry.handlers.catalogue import Catalogue

CONFIG = OperatorConfig(platform_domain="platform.test")
RESOURCES = Resources(base=ResourceAmounts(cpu="2", memory="4Gi", storage="10Gi", pods=20),
                      per_seat=ResourceAmounts(cpu="10m", memory="32Mi", storage="100Mi", pods=1))


def _desired(seats: int = 50, config: OperatorConfig = CONFIG) -> dict[str, dict[str, Any]]:
    spec = TenantSpec.model_validate({"company": "M GmbH", "contact": {"name": "M", "email": "m@m.de"},
                                      "plan": {"featureSet": "business", "seats": seats}})
    plan = Plan(("tenantry-system/business",), {}, RESOURCES)
    desired = desired_state(TenantInput("m", "partner-a", "a", spec, plan, None), config)
    # By kind; of the two ResourceQuotas, the tenant's quota (not the PriorityClass one).
    return {m["kind"]: m for m in desired.apply if m["metadata"]["name"] != PRIORITY_QUOTA}


# --- egress ---------------------------------------------------------------------------------------

def _egress_blocks(config: OperatorConfig = CONFIG) -> list[dict[str, Any]]:
    egress = _desired(config=config)["NetworkPolicy"]["spec"]["egress"]
    return [peer["ipBlock"] for rule in egress for peer in rule.get("to", []) if "ipBlock" in peer]


def _allowed(address: str, blocks: list[dict[str, Any]]) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # a v4-mapped address leaves the node as IPv4
    for block in blocks:
        net = ipaddress.ip_network(block["cidr"])
        if ip.version == net.version and ip in net and not any(
                ip in ipaddress.ip_network(e) for e in block.get("except", [])):
            return True
    return False


@pytest.mark.parametrize("address", [
    "169.254.169.254",  # AWS, GCP, Azure, OpenStack metadata
    "100.100.100.200",  # Alibaba metadata (CGNAT range)
    "100.64.0.1", "10.96.0.1", "172.16.0.1", "192.168.1.1", "127.0.0.1", "0.0.0.0", "224.0.0.1",
    "255.255.255.255", "fd00:ec2::254", "fe80::1", "::1", "fc00::1", "64:ff9b::a9fe:a9fe",
    "::ffff:169.254.169.254",  # IPv4 on the wire: checked as its IPv4 address
    "168.63.129.16",  # Azure's wireserver (platform endpoint)
    "198.18.0.1", "192.0.0.170", "64:ff9b:1::a9fe:a9fe",
])
def test_default_egress_denies_metadata_and_internal_networks(address: str) -> None:
    assert not _allowed(address, _egress_blocks())


@pytest.mark.parametrize("address", ["1.1.1.1", "8.8.8.8", "100.63.255.255", "2606:4700:4700::1111"])
def test_default_egress_allows_the_internet_over_ipv4_and_ipv6(address: str) -> None:
    assert _allowed(address, _egress_blocks())


def test_egress_excepts_lie_inside_their_family() -> None:
    for block in _egress_blocks():
        outer = ipaddress.ip_network(block["cidr"])
        assert all(ipaddress.ip_network(e).subnet_of(outer) for e in block["except"])  # type: ignore[arg-type]
    assert [b["cidr"] for b in _egress_blocks()] == ["0.0.0.0/0", "::/0"]


def test_configured_egress_list_replaces_the_default() -> None:
    config = OperatorConfig.from_env({"TENANTRY_EGRESS_DENY_CIDRS": "169.254.0.0/16, fd00::/8"})
    assert config.egress_deny_cidrs == ("169.254.0.0/16", "fd00::/8")
    blocks = _egress_blocks(config)
    assert blocks == [{"cidr": "0.0.0.0/0", "except": ["169.254.0.0/16"]}, {"cidr": "::/0", "except": ["fd00::/8"]}]
    assert _allowed("10.0.0.1", blocks)


def test_denying_a_whole_family_drops_its_rule() -> None:
    assert egress_blocks(("::/0", "10.0.0.0/8")) == [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}}]


@pytest.mark.parametrize("text", ["169.254.169.254/16", "10.0.0.0/33", "metadata", "", " , ", "::ffff:0:0/96"])
def test_bad_egress_list_is_refused_naming_the_variable(text: str) -> None:
    with pytest.raises(ValueError, match="TENANTRY_EGRESS_DENY_CIDRS"):
        OperatorConfig.from_env({"TENANTRY_EGRESS_DENY_CIDRS": text})


def test_default_list_is_valid() -> None:
    config = OperatorConfig.from_env({"TENANTRY_EGRESS_DENY_CIDRS": ",".join(DEFAULT_EGRESS_DENY_CIDRS)})
    assert config == OperatorConfig()


# --- quota ceiling and object counts --------------------------------------------------------------

def test_a_million_seats_get_the_ceiling_not_ten_thousand_cores() -> None:
    hard = quota_hard(RESOURCES, 1_000_000, True, CONFIG)
    assert (hard["requests.cpu"], hard["limits.cpu"]) == ("128", "256")
    assert (hard["requests.memory"], hard["requests.storage"], hard["pods"]) == ("512Gi", "10Ti", "1000")
    message = quota_clamped_message(RESOURCES, 1_000_000, CONFIG)
    assert message is not None
    assert "cpu 10002 -> 128" in message and "TENANTRY_TENANT_QUOTA_CEILING" in message
    assert "operator.tenantQuotaCeiling" in message


def test_quota_below_the_ceiling_is_unchanged_and_not_reported() -> None:
    assert quota_hard(RESOURCES, 50, True, CONFIG)["requests.cpu"] == "2500m"
    assert quota_hard(RESOURCES, 50, True, CONFIG)["pods"] == "70"
    assert quota_clamped_message(RESOURCES, 50, CONFIG) is None


@given(st.integers(min_value=1, max_value=1_000_000))
def test_quota_never_exceeds_the_ceiling(seats: int) -> None:
    config = OperatorConfig.from_env({"TENANTRY_TENANT_QUOTA_CEILING": "cpu=16,memory=64Gi,storage=1Ti,pods=100"})
    hard = quota_hard(RESOURCES, seats, True, config)
    assert quantity.parse(hard["requests.cpu"]) <= 16
    assert quantity.parse(hard["requests.memory"]) <= quantity.parse("64Gi")
    assert quantity.parse(hard["requests.storage"]) <= quantity.parse("1Ti")
    assert int(hard["pods"]) <= 100


def test_the_tenant_quota_has_object_counts() -> None:
    hard = _desired()["ResourceQuota"]["spec"]["hard"]
    for name in ("secrets", "configmaps", "services", "persistentvolumeclaims", "jobs.batch", "cronjobs.batch",
                 "replicationcontrollers", "resourcequotas"):
        assert f"count/{name}" in hard, name
    assert hard["count/resourcequotas"] == "2"
    config = OperatorConfig.from_env({"TENANTRY_OBJECT_COUNT_QUOTA": "secrets=10,ingresses.networking.k8s.io=3"})
    hard = _desired(config=config)["ResourceQuota"]["spec"]["hard"]
    assert (hard["count/secrets"], hard["count/ingresses.networking.k8s.io"]) == ("10", "3")
    assert hard["count/configmaps"] == "100"  # merged over the defaults


@pytest.mark.parametrize(("key", "text", "words"), [
    ("TENANTRY_OBJECT_COUNT_QUOTA", "secrets=-1", "secrets"),
    ("TENANTRY_OBJECT_COUNT_QUOTA", "secrets", "key=value"),
    ("TENANTRY_OBJECT_COUNT_QUOTA", "configmaps=2", "operator itself keeps 4"),
    ("TENANTRY_OBJECT_COUNT_QUOTA", "Secrets=2", "resource name"),
    ("TENANTRY_TENANT_QUOTA_CEILING", "cpu=lots", "quantity"),
    ("TENANTRY_TENANT_QUOTA_CEILING", "gpu=1", "unknown resource"),
    ("TENANTRY_TENANT_QUOTA_CEILING", "pods=-3", "pods"),
    ("TENANTRY_CONTAINER_MAX", "cpu=100m", "below the default container limit"),
    ("TENANTRY_CONTAINER_MAX", "disk=1Gi", "unknown"),
    ("TENANTRY_PVC_MAX_STORAGE", "1 TB", "quantity"),
    ("TENANTRY_MAX_TENANTS_PER_PARTNER", "many", "whole number"),
])
def test_bad_ceilings_are_refused_naming_the_variable(key: str, text: str, words: str) -> None:
    with pytest.raises(ValueError, match=key) as error:
        OperatorConfig.from_env({key: text})
    assert words in str(error.value)


# --- LimitRange -----------------------------------------------------------------------------------

def test_limit_range_has_a_max_per_container_and_per_volume() -> None:
    limits = _desired()["LimitRange"]["spec"]["limits"]
    container = next(item for item in limits if item["type"] == "Container")
    assert container["max"] == {"cpu": "8", "memory": "32Gi"}
    assert container["default"] == {"cpu": "500m", "memory": "512Mi"}
    assert next(item for item in limits if item["type"] == "PersistentVolumeClaim")["max"] == {"storage": "1Ti"}
    config = OperatorConfig.from_env({"TENANTRY_CONTAINER_MAX": "cpu=2", "TENANTRY_PVC_MAX_STORAGE": "50Gi"})
    limits = _desired(config=config)["LimitRange"]["spec"]["limits"]
    assert limits[0]["max"] == {"cpu": "2", "memory": "32Gi"} and limits[1]["max"] == {"storage": "50Gi"}


# --- partner FeatureSets may not set resources ------------------------------------------------------

HUGE = {"base": {"cpu": "100000", "memory": "1000Ti", "storage": "1000Ti", "pods": 100000}}
PLATFORM = {("tenantry-system", "business"): {"features": {"chat": {}}, "resources": RESOURCES.model_dump(
    by_alias=True)}}


def _lookup(specs: dict) -> Any:
    return lambda namespace, name: specs.get((namespace, name))


def test_partner_feature_set_resources_are_ignored_and_named() -> None:
    specs = {**PLATFORM, ("partner-a", "gold"): {"extends": "business", "resources": HUGE}}
    plan = resolve_plan("gold", _lookup(specs), "partner-a", "tenantry-system")
    assert isinstance(plan, Plan)
    assert plan.resources == RESOURCES  # the platform plan it extends, not the partner's
    assert plan.ignored_resources == ("partner-a/gold",)
    message = ignored_resources_message(plan, "tenantry-system")
    assert message and "FeatureSet partner-a/gold" in message and "spec.resources" in message


def test_partner_feature_set_without_platform_parent_falls_back_to_the_platform_default() -> None:
    plan = resolve_plan("own", _lookup({("partner-a", "own"): {"resources": HUGE}}), "partner-a", "tenantry-system")
    assert isinstance(plan, Plan) and plan.resources is None and plan.ignored_resources == ("partner-a/own",)


def test_platform_feature_set_resources_count() -> None:
    plan = resolve_plan("business", _lookup(PLATFORM), "partner-a", "tenantry-system")
    assert isinstance(plan, Plan) and plan.resources == RESOURCES and plan.ignored_resources == ()
    assert ignored_resources_message(plan, "tenantry-system") is None


# --- tenants per partner --------------------------------------------------------------------------

def _tenants(*items: tuple[str, str, bool]) -> dict[str, tuple[str, bool]]:
    return {name: (created, provisioned) for name, created, provisioned in items}


def test_tenants_beyond_the_cap_wait_in_creation_order_with_names_breaking_ties() -> None:
    tenants = _tenants(("c", "2026-01-01T00:00:00Z", False), ("b", "2026-01-01T00:00:01Z", False),
                       ("a", "2026-01-01T00:00:01Z", False))
    assert [n for n in sorted(tenants) if within_partner_cap(n, tenants, 2)] == ["a", "c"]
    assert all(within_partner_cap(n, tenants, 3) for n in tenants)
    assert all(within_partner_cap(n, tenants, 0) for n in tenants)  # 0: no cap


def test_an_older_newcomer_does_not_evict_a_provisioned_tenant() -> None:
    # "a" sorts first and claims an older time, but "z" is provisioned and keeps its place.
    tenants = _tenants(("z", "2026-02-01T00:00:00Z", True), ("a", "2026-01-01T00:00:00Z", False))
    assert within_partner_cap("z", tenants, 1)
    assert not within_partner_cap("a", tenants, 1)


def test_lowering_the_cap_keeps_every_provisioned_tenant() -> None:
    tenants = _tenants(("a", "1", True), ("b", "2", True), ("c", "3", True), ("d", "0", False))
    assert [n for n in "abcd" if within_partner_cap(n, tenants, 2)] == ["a", "b", "c"]


@given(st.lists(st.tuples(st.integers(0, 5), st.booleans()), min_size=1, max_size=12), st.integers(1, 8))
def test_admitted_tenants_never_exceed_the_cap_unless_already_provisioned(items: list, cap: int) -> None:
    tenants = {f"t{i}": (str(created), done) for i, (created, done) in enumerate(items)}
    admitted = [n for n in tenants if within_partner_cap(n, tenants, cap)]
    provisioned = [n for n, (_, done) in tenants.items() if done]
    assert set(provisioned) <= set(admitted)
    assert len(admitted) <= max(cap, len(provisioned))
    assert len(admitted) == min(len(tenants), max(cap, len(provisioned)))


def _held(tenants: dict[str, tuple[str, bool]], *names: str) -> Held:
    return Held(frozenset(names), sum(1 for n in names if n not in tenants))


def test_a_namespace_without_its_tenant_holds_a_place_until_it_is_gone() -> None:
    tenants = _tenants(("a", "1", True), ("c", "3", False))
    assert within_partner_cap("c", tenants, 2)
    assert not within_partner_cap("c", tenants, 2, _held(tenants, "a", "b"))  # "b" deleted, its namespace kept
    assert within_partner_cap("c", tenants, 3, _held(tenants, "a", "b"))
    assert within_partner_cap("a", tenants, 1, _held(tenants, "a", "b"))  # a provisioned tenant keeps its place
    # A tenant whose namespace exists takes its place back, ahead of older waiting tenants, and
    # holds it all along (not only until its status says provisioned again).
    back = _tenants(("a", "1", True), ("c", "3", False), ("b", "9", False))
    assert within_partner_cap("b", back, 2, _held(back, "a", "b"))
    assert not within_partner_cap("c", back, 2, _held(back, "a", "b"))


@given(st.lists(st.tuples(st.integers(0, 5), st.booleans()), min_size=1, max_size=10), st.integers(1, 8),
       st.sets(st.integers(0, 14), max_size=8))
def test_namespaces_never_exceed_the_cap_and_the_freed_places_go_in_line(items: list, cap: int,
                                                                        existing: set[int]) -> None:
    """Namespaces held once the admitted tenants are provisioned stay within the cap, unless already
    over it; the tenants a freed place goes to are exactly the waiting ones now admitted, and none
    below the cap (nobody waits for a place there: a deletion costs no pass of the others)."""
    tenants = {f"t{i}": (str(created), done) for i, (created, done) in enumerate(items)}
    held = _held(tenants, *(f"t{i}" for i in existing))
    admitted = {n for n in tenants if within_partner_cap(n, tenants, cap, held)}
    holding = admitted | held.names
    already = {n for n, (_, done) in tenants.items() if done} | held.names
    assert already & tenants.keys() <= admitted and len(holding) <= max(cap, len(already))
    waiting = {n for n, (_, done) in tenants.items() if not done and n not in held.names}
    in_line = admitted & waiting if len(tenants) + held.without_tenant > cap else set()
    assert set(caps.next_in_line(tenants, cap, held)) == in_line
    first = caps.next_in_line(tenants, cap, held, at_least=1)
    assert set(first) >= in_line and len(first) == max(len(in_line), min(1, len(waiting)))


def test_catalogue_counts_existing_tenant_namespaces_by_the_operators_marks_only() -> None:
    catalogue = Catalogue(namespace_prefix="tenant-")

    def namespace(name: str, managed: bool = True, owner: str = "p/b", **labels: str) -> dict[str, Any]:
        return {"metadata": {"name": name, "labels": {naming.MANAGED_BY: naming.OPERATOR} if managed else labels,
                             "annotations": {naming.OWNER_ANNOTATION: owner}}}

    catalogue.track_tenant(("p", "a"), {"plan": {}}, {"metadata": {"creationTimestamp": "1"}})
    catalogue.track_namespace(("", "tenant-a"), namespace("tenant-a", owner="p/a"))
    catalogue.track_namespace(("", "tenant-b"), namespace("tenant-b"))  # b's Tenant is gone
    catalogue.track_namespace(("", "tenant-x"), namespace("tenant-x", managed=False, owner="p/x"))
    catalogue.track_namespace(("", "tenant-y"), namespace("tenant-y", owner="not-an-owner-key"))
    catalogue.track_namespace(("", "other-z"), namespace("other-z", owner="p/z"))  # not the owner's name
    assert catalogue.held("p") == Held(frozenset({"a", "b"}), 1) and catalogue.held("q") == Held()
    catalogue.track_tenant(("p", "b"), {"plan": {}}, {"metadata": {"creationTimestamp": "2"}})  # applied again
    assert catalogue.held("p") == Held(frozenset({"a", "b"}), 0)
    catalogue.track_tenant(("p", "a"), None)  # deleted: its namespace stays (Retain)
    assert catalogue.held("p") == Held(frozenset({"a", "b"}), 1)
    catalogue.track_namespace(("", "tenant-a"), None)  # and then deleted
    catalogue.track_namespace(("", "tenant-b"), namespace("tenant-b"))  # (seen again: counted once)
    assert catalogue.held("p") == Held(frozenset({"b"}), 0)


_STEPS = st.lists(st.tuples(st.sampled_from(["tenant", "provisioned", "tenant-gone", "namespace", "orphaned",
                                             "foreign", "namespace-gone"]),
                             st.sampled_from(["p", "q"]), st.sampled_from(["a", "b", "c"])), max_size=40)


@given(_STEPS)
def test_the_count_without_a_tenant_stays_what_it_is_derived_from(steps: list[tuple[str, str, str]]) -> None:
    """The catalogue keeps Held.without_tenant by hand (a pass must not count): after any order of
    Tenants and namespaces coming, changing and going it equals the held names without a Tenant."""
    catalogue = Catalogue(namespace_prefix="tenant-")
    for step, partner, slug in steps:
        name, meta = f"tenant-{slug}", {"creationTimestamp": "1"}
        mark = {"labels": {naming.MANAGED_BY: naming.OPERATOR},
                "annotations": {naming.OWNER_ANNOTATION: f"{partner}/{slug}"}}
        if step == "tenant":
            catalogue.track_tenant((partner, slug), {"plan": {}}, {"metadata": meta})
        elif step == "provisioned":
            catalogue.track_tenant((partner, slug), {"plan": {}}, {"metadata": meta, "status": {"namespace": name}})
        elif step == "tenant-gone":
            catalogue.track_tenant((partner, slug), None)
        elif step in ("namespace", "orphaned"):
            labels = {**mark["labels"], **({naming.ORPHANED_LABEL: "true"} if step == "orphaned" else {})}
            catalogue.track_namespace(("", name), {"metadata": {"name": name, **mark, "labels": labels}})
        elif step == "foreign":  # its owner mark removed: no longer a tenant's namespace
            catalogue.track_namespace(("", name), {"metadata": {"name": name}})
        else:
            catalogue.track_namespace(("", name), None)
        for each in ("p", "q"):
            held = catalogue.held(each)
            assert held.without_tenant == len(set(held.names) - set(catalogue.partner_tenants(each))) >= 0


def test_the_cap_refusal_counts_namespaces_without_a_tenant_and_says_how_to_free_them() -> None:
    config = OperatorConfig(max_tenants_per_partner=2)
    body = {"metadata": {"name": "c", "namespace": "partner-p", "creationTimestamp": "3"},
            "spec": {"company": "C", "contact": {"name": "C", "email": "c@c.de"},
                     "plan": {"featureSet": "x", "seats": 1}}}
    tenants = {"a": ("1", True)}
    refusal = tenantpass.admit(body, "p", tenants, config, _held(tenants, "a", "b"))
    assert isinstance(refusal, tenantpass.Refusal)
    assert "1 of them namespaces of deleted tenants" in refusal.verdicts[0].message
    assert "again with deletionPolicy: Delete and then delete it" in refusal.verdicts[0].message
    assert not isinstance(tenantpass.admit(body, "p", tenants, config, _held(tenants, "a")), tenantpass.Refusal)
    # A Tenant applied again over its own namespace, new to the catalogue: counted once, and admitted.
    again = {**body, "metadata": {**body["metadata"], "name": "b"}}
    assert not isinstance(tenantpass.admit(again, "p", tenants, config, _held(tenants, "a", "b")),
                          tenantpass.Refusal)


def test_catalogue_tracks_tenants_by_partner_with_creation_and_provisioning() -> None:
    catalogue = Catalogue()
    body = {"metadata": {"creationTimestamp": "2026-01-01T00:00:00Z"}, "status": {"namespace": "tenant-a"}}
    catalogue.track_tenant(("p", "a"), {"plan": {"featureSet": "gold"}}, body)
    catalogue.track_tenant(("p", "b"), {"plan": {"featureSet": "gold"}}, {"metadata": {"creationTimestamp": "x"}})
    assert catalogue.partner_tenants("p") == {"a": ("2026-01-01T00:00:00Z", True), "b": ("x", False)}
    catalogue.track_tenant(("p", "a"), None)
    assert catalogue.partner_tenants("p") == {"b": ("x", False)} and catalogue.partner_tenants("q") == {}


class _NoScan(dict):
    """A partner's tenants that fail the test if walked: deciding at the cap must not scan them."""

    def __iter__(self):  # type: ignore[override]
        raise AssertionError("walked every tenant of the partner")

    items = values = keys = __iter__  # type: ignore[assignment]


def test_a_partner_exactly_at_the_cap_admits_its_own_tenants_without_a_scan() -> None:
    from tenantry.domain.tenantpass import _within_cap
    tenants = _NoScan({f"t{i}": (str(i), False) for i in range(3)})
    assert _within_cap({"metadata": {"name": "t1"}}, tenants, 3)
    with pytest.raises(AssertionError, match="walked"):  # a fourth, new to the catalogue, must be ranked
        _within_cap({"metadata": {"name": "t9", "creationTimestamp": "9"}}, tenants, 3)
