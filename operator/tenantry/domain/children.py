"""The desired child objects of a tenant: a pure function of the tenant and the settings."""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import msgspec

from tenantry.api.featureset import ResourceAmounts, Resources
from tenantry.api.tenant import TenantSpec
from tenantry.domain import naming, quantity
from tenantry.domain.branding import ResolvedBranding, branding_data
from tenantry.domain.config import CONTAINER_DEFAULT_LIMITS, OperatorConfig
from tenantry.domain.features import EffectiveFeature, Plan, effective_features, features_document, flagd_document

Manifest = dict[str, Any]


@dataclass(frozen=True)
class ObjectRef:
    """Enough to find one object."""

    api_version: str
    kind: str
    name: str
    namespace: str | None = None


@dataclass(frozen=True)
class TenantInput:
    """Everything the desired state depends on, already fetched by the handler."""

    slug: str
    partner_namespace: str
    partner: str
    spec: TenantSpec
    plan: Plan | None  # None: unresolved, so what was derived from it last time is kept
    branding: ResolvedBranding | None  # None: unresolved, the last good branding is kept
    # The plan's features with the tenant's overrides, when the caller has them already (one pass
    # resolves them once); None: derived here from plan and spec.
    features: Mapping[str, EffectiveFeature] | None = None


@dataclass(frozen=True)
class DesiredState:
    """Objects to apply (in order), to create only if missing, and that must not exist."""

    namespace: Manifest
    apply: tuple[Manifest, ...]
    remove: tuple[ObjectRef, ...]
    ensure: tuple[Manifest, ...] = ()


def ref(manifest: Manifest) -> ObjectRef:
    meta = manifest["metadata"]
    return ObjectRef(manifest["apiVersion"], manifest["kind"], meta["name"], meta.get("namespace"))


def owned_meta(name: str, namespace: str | None, inp: TenantInput) -> dict[str, Any]:
    """Metadata with the labels and ownership annotation of everything a tenant owns."""
    meta: dict[str, Any] = {
        "name": name,
        "labels": naming.tenant_labels(inp.slug, inp.partner),
        "annotations": {naming.OWNER_ANNOTATION: naming.owner_key(inp.partner_namespace, inp.slug)},
    }
    if namespace:
        meta["namespace"] = namespace
    return meta


def namespace_manifest(inp: TenantInput, config: OperatorConfig, orphaned: bool = False) -> Manifest:
    """The tenant namespace, restricted by Pod Security Admission, marked as ours."""
    meta = owned_meta(naming.tenant_namespace(config.namespace_prefix, inp.slug), None, inp)
    meta["labels"].update({
        naming.STATE_LABEL: inp.spec.state,
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/enforce-version": "latest",
        "pod-security.kubernetes.io/audit": "restricted",
        "pod-security.kubernetes.io/warn": "restricted",
    })
    if orphaned:
        meta["labels"][naming.ORPHANED_LABEL] = "true"
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}


_AMOUNTS = ("cpu", "memory", "storage", "pods")


def clamped_amounts(resources: Resources, seats: int, ceiling: ResourceAmounts | None
                    ) -> tuple[dict[str, Fraction], dict[str, Fraction]]:
    """(base + perSeat x seats clamped to the platform's ceiling, what the plan asked for where it
    was more than the ceiling)."""
    wanted = {name: quantity.parse(getattr(resources.base, name)) + quantity.parse(getattr(resources.per_seat, name))
              * seats for name in _AMOUNTS}
    if ceiling is None:
        return wanted, {}
    limit = {name: quantity.parse(getattr(ceiling, name)) for name in _AMOUNTS}
    over = {name: value for name, value in wanted.items() if value > limit[name]}
    return {name: min(value, limit[name]) for name, value in wanted.items()}, over


def quota_hard(resources: Resources, seats: int, workloads_allowed: bool,
               config: OperatorConfig | None = None) -> dict[str, str]:
    """ResourceQuota limits: base + perSeat x seats up to the platform's ceiling, and object counts;
    a blocked tenant may run no pods at all."""
    amounts, _ = clamped_amounts(resources, seats, config.tenant_quota_ceiling if config else None)
    cpu, memory, storage, pods = (amounts[name] for name in _AMOUNTS)
    hard = {
        "requests.cpu": quantity.format_cpu(cpu),
        "limits.cpu": quantity.format_cpu(cpu * 2),
        "requests.memory": quantity.format_bytes(memory),
        "limits.memory": quantity.format_bytes(memory),
        "requests.storage": quantity.format_bytes(storage),
        "pods": str(int(pods) if workloads_allowed else 0),
        # Isolation: tenants never open ports on nodes or get their own cloud load balancers.
        "services.nodeports": "0",
        "services.loadbalancers": "0",
    }
    if config is not None:
        hard.update({f"count/{name}": str(count) for name, count in sorted(config.object_counts.items())})
    return hard


def quota_clamped_message(resources: Resources, seats: int, config: OperatorConfig) -> str | None:
    """Why the tenant's quota is less than its plan says (None: it is not), and how to get more."""
    amounts, over = clamped_amounts(resources, seats, config.tenant_quota_ceiling)
    if not over:
        return None
    shown = ", ".join(f"{name} {_show(name, over[name])} -> {_show(name, amounts[name])}" for name in sorted(over))
    return (f"the plan's quota for {seats} seats exceeds the platform's per-tenant ceiling and is clamped to it "
            f"({shown}); ask the platform team to raise the ceiling (TENANTRY_TENANT_QUOTA_CEILING, chart value "
            "operator.tenantQuotaCeiling) or to split the tenant")


def _show(name: str, value: Fraction) -> str:
    if name == "cpu":
        return quantity.format_cpu(value)
    return str(int(value)) if name == "pods" else quantity.format_bytes(value)


def _quota(ns: str, inp: TenantInput, resources: Resources, config: OperatorConfig) -> Manifest:
    hard = quota_hard(resources, inp.spec.plan.seats, inp.spec.state == "Active", config)
    return {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": owned_meta(naming.QUOTA, ns, inp),
            "spec": {"hard": hard}}


def _limit_range(ns: str, inp: TenantInput, config: OperatorConfig) -> Manifest:
    # Defaults let pods without requests start under a quota that demands requests; max keeps one
    # container or volume from taking the whole quota (or more than a node has) at once.
    container = {
        "type": "Container",
        "default": dict(CONTAINER_DEFAULT_LIMITS),
        "defaultRequest": {"cpu": "100m", "memory": "128Mi"},
        "max": dict(config.container_max),
    }
    volume = {"type": "PersistentVolumeClaim", "max": {"storage": config.pvc_max_storage}}
    return {"apiVersion": "v1", "kind": "LimitRange", "metadata": owned_meta(naming.LIMITS, ns, inp),
            "spec": {"limits": [container, volume]}}


def _network_policy(ns: str, inp: TenantInput, config: OperatorConfig) -> Manifest:
    same_namespace = {"podSelector": {}}
    ingress_controller = {"namespaceSelector": {"matchLabels": dict(config.ingress_namespace_labels)}}
    dns = {
        "to": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
    }
    internet = {"to": egress_blocks(config.egress_deny_cidrs)}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": owned_meta(naming.NETWORK_POLICY, ns, inp),
        "spec": {
            "podSelector": {},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": [same_namespace, ingress_controller]}],
            "egress": [{"to": [same_namespace]}, dns, internet],
        },
    }


def egress_blocks(deny: tuple[str, ...]) -> list[dict[str, Any]]:
    """The internet for both address families, without the denied networks (metadata service,
    private, link-local, ...): an ipBlock per family, as `except` must lie inside its `cidr`."""
    # New dicts each time (they go into one tenant's manifest); the parsing is done once.
    return [{"ipBlock": {"cidr": everything, **({"except": list(inside)} if inside else {})}}
            for everything, inside in _egress_ranges(deny)]


@functools.lru_cache(maxsize=8)
def _egress_ranges(deny: tuple[str, ...]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    ranges = []
    for everything in ("0.0.0.0/0", "::/0"):
        family = ipaddress.ip_network(everything)
        nets = [net for net in map(ipaddress.ip_network, deny) if net.version == family.version]
        if family in nets:
            continue  # the whole family is denied: no rule for it at all
        ranges.append((everything, tuple(sorted({str(net) for net in nets}, key=ipaddress.ip_network))))
    return tuple(ranges)


def _admin_binding(ns: str, inp: TenantInput, cluster_role: str) -> Manifest:
    """The tenant's admins get the shipped ClusterRole, in their namespace only.

    Binding a ClusterRole the chart ships (instead of writing a Role per namespace) lets the
    operator hold `bind` on that one role rather than every permission in it.
    """
    subjects = [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": admin}
                for admin in sorted(inp.spec.admins)]
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": owned_meta(naming.ADMIN_BINDING, ns, inp),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": cluster_role},
            "subjects": subjects}


PRIORITY_QUOTA = "tenantry-priority-classes"


def priority_quota(ns: str, inp: TenantInput, config: OperatorConfig) -> Manifest:
    """No pods with a PriorityClass the platform did not allow: a quota of 0 pods over every other class.

    A high PriorityClass lets a tenant's pods preempt other tenants' pods; RBAC cannot restrict which
    class a pod names, a quota scoped by PriorityClass can (on 1.20 too). Pods without a class stay
    allowed: `Exists` leaves them out (a `NotIn` alone would match them, as the API server treats a
    missing class as not in any list); the two expressions are ANDed.
    """
    expressions: list[dict[str, Any]] = [{"scopeName": "PriorityClass", "operator": "Exists"}]
    if config.allowed_priority_classes:
        expressions.append({"scopeName": "PriorityClass", "operator": "NotIn",
                            "values": sorted(set(config.allowed_priority_classes))})
    return {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": owned_meta(PRIORITY_QUOTA, ns, inp),
            "spec": {"hard": {"pods": "0"}, "scopeSelector": {"matchExpressions": expressions}}}


def tenant_url(slug: str, config: OperatorConfig) -> str:
    return f"https://{slug}.{config.platform_domain}"


def _tenant_config(ns: str, inp: TenantInput, config: OperatorConfig) -> Manifest:
    spec = inp.spec
    data = {
        "slug": inp.slug,
        "partner": inp.partner,
        "company": spec.company,
        "state": spec.state,
        "plan": spec.plan.feature_set,
        "seats": str(spec.plan.seats),
        "url": tenant_url(inp.slug, config),
        "domains": ",".join(spec.domains),
    }
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": owned_meta(naming.TENANT_CONFIG, ns, inp),
            "data": data}


def compact_json(document: Any) -> str:
    """Sorted keys, no whitespace, UTF-8: what json.dumps(sort_keys=True, ensure_ascii=False,
    separators=(",", ":")) writes (floats with an exponent aside: 1e20, not 1e+20; the same
    number), by msgspec at a fraction of the stdlib's cost.

    Not indented: a tenant's flags were 16 KB indented and are 6 KB so, and every byte is sent,
    stored in etcd and sent again to each watcher whenever a plan changes (`jq` indents it for
    a reader)."""
    return msgspec.json.encode(document, order="sorted").decode()


def _json_config(name: str, ns: str, inp: TenantInput, key: str, document: Any) -> Manifest:
    # Sorted keys: the same document always serialises the same, so unchanged means no write.
    text = compact_json(document)
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": owned_meta(name, ns, inp), "data": {key: text}}


def _plan_objects(ns: str, inp: TenantInput, config: OperatorConfig
                  ) -> tuple[list[Manifest], list[Manifest], list[ObjectRef]]:
    """Quota, features and flags: (apply, ensure, remove).

    An unresolved plan keeps the last good ones; a tenant that never had a quota gets one from
    the platform default, so no tenant is ever without limits.
    """
    features_ref = ObjectRef("v1", "ConfigMap", naming.FEATURES_CONFIG, ns)
    flags_ref = ObjectRef("v1", "ConfigMap", naming.FLAGS_CONFIG, ns)
    if inp.plan is None:
        return [], [_quota(ns, inp, config.default_resources, config)], []
    quota = _quota(ns, inp, inp.plan.resources or config.default_resources, config)
    if inp.spec.state == "Cancelled":
        return [quota], [], [features_ref, flags_ref]
    features = inp.features if inp.features is not None else effective_features(inp.plan, inp.spec)
    return [
        quota,
        _json_config(naming.FEATURES_CONFIG, ns, inp, "features.json",
                     features_document(inp.slug, inp.plan, features)),
        _json_config(naming.FLAGS_CONFIG, ns, inp, "flags.json",
                     flagd_document(inp.slug, inp.partner, inp.plan, features)),
    ], [], []


def _branding(ns: str, inp: TenantInput) -> Manifest:
    assert inp.branding is not None
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": owned_meta(naming.BRANDING_CONFIG, ns, inp),
            "data": branding_data(inp.branding)}


def desired_state(inp: TenantInput, config: OperatorConfig) -> DesiredState:
    """What must exist (and must not) for this tenant in its current lifecycle state.

    Active: everything. Suspended: pods blocked by quota, every feature off, data and access
    kept. Cancelled: no flags, the admins lose access; with deletionPolicy Delete the namespace
    itself goes.
    """
    ns = naming.tenant_namespace(config.namespace_prefix, inp.slug)
    state, policy = inp.spec.state, inp.spec.deletion_policy
    namespace = namespace_manifest(inp, config)
    if state == "Cancelled" and policy == "Delete":
        return DesiredState(namespace, (), (ref(namespace),))
    plan_apply, ensure, remove = _plan_objects(ns, inp, config)
    objects = [*plan_apply, _limit_range(ns, inp, config), _network_policy(ns, inp, config),
               _tenant_config(ns, inp, config)]
    if inp.branding is not None:
        objects.append(_branding(ns, inp))
    objects.append(priority_quota(ns, inp, config))
    binding = _admin_binding(ns, inp, config.tenant_admin_cluster_role)
    if inp.spec.admins and state != "Cancelled":
        objects.append(binding)
    else:
        remove.append(ref(binding))
    return DesiredState(namespace, (namespace, *objects), tuple(remove), tuple(ensure))
