"""What the operator keeps in memory: FeatureSets, Brandings, which tenants use which, and the
tenants and the tenant namespaces of each partner (its cap).

Why not kopf indexes: kopf holds every handler back until each indexed object has been indexed,
and its readiness check wakes every waiting worker for every object, which grows with the square
of the objects; at 1,000 tenants the start took minutes. Here the plans and brandings come from
their informers (listed once at start-up, before any tenant is reconciled, then kept current from
their watch) and the tenants from kopf's events.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tenantry.domain import naming
from tenantry.domain.branding import branding_name
from tenantry.domain.caps import Held, PartnerTenants
from tenantry.domain.features import SpecLookup, dependents

Key = tuple[str, str]  # (namespace, name)


@dataclass
class Catalogue:
    """FeatureSets and Brandings by (namespace, name); tenants by the plan and branding they ask for."""

    feature_sets: dict[Key, Mapping[str, Any]] = field(default_factory=dict)
    brandings: dict[Key, Mapping[str, Any]] = field(default_factory=dict)
    _uses: dict[Key, tuple[str | None, str]] = field(default_factory=dict)
    # (partner namespace, plan name) -> the partner's tenants asking for that plan
    _by_plan: dict[tuple[str, str | None], set[Key]] = field(default_factory=dict)
    _by_branding: dict[str, set[Key]] = field(default_factory=dict)
    # partner namespace -> tenant name -> (creationTimestamp, provisioned), for the per-partner cap
    _by_partner: dict[str, dict[str, tuple[str, bool]]] = field(default_factory=dict)
    # The tenant namespaces that exist, by owner (see caps.Held): partner namespace -> tenant names;
    # namespace -> (partner namespace, tenant name); partner namespace -> how many have no Tenant.
    namespace_prefix: str = "tenant-"
    _holding: dict[str, set[str]] = field(default_factory=dict)
    _held_by: dict[str, tuple[str, str]] = field(default_factory=dict)
    _without_tenant: dict[str, int] = field(default_factory=dict)

    def feature_set(self) -> SpecLookup:
        return lambda namespace, name: self.feature_sets.get((namespace, name))

    def branding(self) -> SpecLookup:
        return lambda namespace, name: self.brandings.get((namespace, name))

    def put(self, kind: str, key: Key, spec: Mapping[str, Any] | None) -> None:
        """Remember (or with None, forget) a FeatureSet or Branding."""
        store = self.feature_sets if kind == "FeatureSet" else self.brandings
        if spec is None:
            store.pop(key, None)
        else:
            store[key] = dict(spec)

    def track_tenant(self, key: Key, spec: Mapping[str, Any] | None, body: Mapping[str, Any] | None = None) -> None:
        """Index a tenant by the plan and branding it asks for (None: the tenant is gone), and by
        partner with its creation time and whether it is provisioned (from `body`)."""
        old = self._uses.pop(key, None)
        if old is not None:
            self._by_plan.get((key[0], old[0]), set()).discard(key)
            self._by_branding.get(old[1], set()).discard(key)
        if spec is None:
            if self._by_partner.get(key[0], {}).pop(key[1], None) is not None and \
                    key[1] in self._holding.get(key[0], ()):
                self._without_tenant[key[0]] = self._without_tenant.get(key[0], 0) + 1  # its namespace stays
        else:
            self.track_provisioning(key, body or {})
            plan, look = (spec.get("plan") or {}).get("featureSet"), branding_name(spec.get("branding"))
            self._uses[key] = (plan, look)
            self._by_plan.setdefault((key[0], plan), set()).add(key)
            self._by_branding.setdefault(look, set()).add(key)

    def track_provisioning(self, key: Key, body: Mapping[str, Any]) -> None:
        created = str((body.get("metadata") or {}).get("creationTimestamp") or "")
        provisioned = bool((body.get("status") or {}).get("namespace"))
        tenants = self._by_partner.setdefault(key[0], {})
        if key[1] not in tenants and key[1] in self._holding.get(key[0], ()):
            self._without_tenant[key[0]] = self._without_tenant.get(key[0], 0) - 1  # a Tenant again, for it
        tenants[key[1]] = (created, provisioned)

    def partner_tenants(self, namespace: str) -> PartnerTenants:
        """The tenants in a partner namespace: name -> (creationTimestamp, provisioned)."""
        return self._by_partner.get(namespace, {})

    def track_namespace(self, key: Key, body: Mapping[str, Any] | None) -> None:
        """Index a tenant namespace by the tenant it belongs to (its owner mark, set by the operator
        when it creates the namespace and kept after the Tenant's deletion); None: it is gone.
        Only the operator writes a namespace's labels and annotations (neither a partner nor a
        tenant admin may), and only a name that is the owner's tenant namespace counts."""
        old = self._held_by.pop(key[1], None)
        if old is not None:
            self._holding[old[0]].discard(old[1])
            if old[1] not in self._by_partner.get(old[0], {}):
                self._without_tenant[old[0]] = self._without_tenant.get(old[0], 0) - 1
        meta = (body or {}).get("metadata") or {}
        owner = naming.parse_owner_key((meta.get("annotations") or {}).get(naming.OWNER_ANNOTATION, ""))
        if owner is None or not naming.is_managed(meta.get("labels")) or \
                key[1] != naming.tenant_namespace(self.namespace_prefix, owner[1]):
            return
        self._held_by[key[1]] = owner
        self._holding.setdefault(owner[0], set()).add(owner[1])
        if owner[1] not in self._by_partner.get(owner[0], {}):
            self._without_tenant[owner[0]] = self._without_tenant.get(owner[0], 0) + 1

    def held(self, namespace: str) -> Held:
        """The tenant namespaces of a partner namespace's tenants that exist (see caps.Held)."""
        return Held(self._holding.get(namespace, frozenset()), self._without_tenant.get(namespace, 0))

    def plan_users(self, namespace: str, name: str, platform_namespace: str) -> set[Key]:
        """The tenants a change to FeatureSet namespace/name reaches, each seeing the plans as its
        partner does (of a name the partner's own first, else the platform's; extends followed the
        same way). So a partner's FeatureSet of a platform plan's name hides that plan's children
        from its own tenants only, never from another partner's (a change to a platform plan used
        to miss them until the resync), and a partner's change reaches its own tenants only."""
        if namespace != platform_namespace:
            return self._on_plans(namespace, dependents(name, self._plans_seen_by(namespace, platform_namespace)))
        own = {ns for ns, _ in self.feature_sets if ns != platform_namespace}
        shared = dependents(name, self._plans_seen_by(platform_namespace, platform_namespace))
        found = {key for (partner, plan), keys in self._by_plan.items() if plan in shared and partner not in own
                 for key in keys}
        for partner in own:
            if (partner, name) not in self.feature_sets:  # else its own of that name is what its tenants see
                found |= self._on_plans(partner, dependents(name, self._plans_seen_by(partner, platform_namespace)))
        return found

    def _plans_seen_by(self, partner: str, platform_namespace: str) -> dict[str, Mapping[str, Any]]:
        seen = {name: spec for (ns, name), spec in self.feature_sets.items() if ns == platform_namespace}
        seen.update({name: spec for (ns, name), spec in self.feature_sets.items() if ns == partner})
        return seen

    def _on_plans(self, partner: str, names: Iterable[str]) -> set[Key]:
        return set().union(*(self._by_plan.get((partner, name), set()) for name in names))

    def tenants_with_branding(self, name: str) -> set[Key]:
        return set(self._by_branding.get(name, set()))

