"""Limits the platform sets on partners (pure): how many tenants one partner may have provisioned."""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass

PARTNER_TENANT_LIMIT = "PartnerTenantLimit"

# name -> (creationTimestamp as RFC 3339, provisioned: the tenant's status.namespace is set)
PartnerTenants = Mapping[str, tuple[str, bool]]


@dataclass(frozen=True)
class Held:
    """The tenant namespaces of a partner that exist, whatever their state (provisioned, kept after
    the Tenant's deletion, terminating): `names` (the tenants' names), `without_tenant` (how many
    of them no Tenant asks for any more). Kept current by the catalogue, so a pass never counts."""

    names: Set[str] = frozenset()
    without_tenant: int = 0


NOTHING_HELD = Held()


def within_partner_cap(name: str, tenants: PartnerTenants, cap: int, held: Held = NOTHING_HELD) -> bool:
    """Whether this tenant of a partner may be provisioned under a cap of `cap` tenants (0: no cap).

    A place is held by every provisioned tenant and by every namespace of the partner's that
    exists, a Tenant or not (deletionPolicy Retain keeps it, a stuck deletion may keep it
    terminating): so creating and deleting tenants cannot grow a partner's namespaces beyond the
    cap. Those keep their place (a partner cannot evict one, nor does lowering the cap; a tenant
    whose namespace exists takes it back). The free places go to the others in creation order,
    names breaking ties. Deterministic: every pass over every tenant of the partner reaches the
    same answer from the same tenants.
    """
    if cap <= 0 or len(tenants) + held.without_tenant <= cap:
        return True
    created, provisioned = tenants[name]
    if provisioned or name in held.names:
        return True
    taken = held.without_tenant + sum(1 for other, (_, done) in tenants.items() if done or other in held.names)
    return taken + sum(1 for other, when in _waiting(tenants, held) if (when, other) < (created, name)) < cap


def _waiting(tenants: PartnerTenants, held: Held) -> list[tuple[str, str]]:
    """(name, creationTimestamp) of the tenants that hold no place yet."""
    return [(other, when) for other, (when, done) in tenants.items() if not done and other not in held.names]


def next_in_line(tenants: PartnerTenants, cap: int, held: Held = NOTHING_HELD, at_least: int = 0) -> list[str]:
    """The waiting tenants that the free places go to now (after a tenant or a namespace went), in
    order; at least the first `at_least` of them, places or not."""
    waiting = sorted(_waiting(tenants, held), key=lambda item: (item[1], item[0]))
    if cap <= 0 or len(tenants) + held.without_tenant <= cap:
        return [other for other, _ in waiting[:at_least]]  # none waits for a place: their passes decide
    taken = held.without_tenant + sum(1 for other, (_, done) in tenants.items() if done or other in held.names)
    return [other for other, _ in waiting[:max(at_least, cap - taken)]]


def partner_cap_message(partner: str, cap: int, held: Held = NOTHING_HELD) -> str:
    kept = (f" ({held.without_tenant} of them namespaces of deleted tenants, kept by deletionPolicy: Retain or "
            "still being deleted; each holds its place until it is gone: apply that Tenant again with "
            "deletionPolicy: Delete and then delete it, or ask the platform team to delete the namespace)"
            ) if held.without_tenant else ""
    return (f"partner {partner!r} already has the {cap} tenants the platform allows per partner{kept}, so this "
            "tenant is not provisioned; delete a tenant that is no longer needed (the oldest waiting tenant gets "
            "the place), or ask the platform team to raise the limit (TENANTRY_MAX_TENANTS_PER_PARTNER, chart value "
            "operator.maxTenantsPerPartner)")
