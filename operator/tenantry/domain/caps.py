"""Limits the platform sets on partners (pure): how many tenants one partner may have provisioned."""

from __future__ import annotations

from collections.abc import Mapping, Set

PARTNER_TENANT_LIMIT = "PartnerTenantLimit"

# name -> (creationTimestamp as RFC 3339, provisioned: the tenant's status.namespace is set)
PartnerTenants = Mapping[str, tuple[str, bool]]


def within_partner_cap(name: str, tenants: PartnerTenants, cap: int, retained: Set[str] = frozenset()) -> bool:
    """Whether this tenant of a partner may be provisioned under a cap of `cap` tenants (0: no cap).

    Provisioned tenants always keep their place (a partner cannot evict one, nor does lowering the
    cap); the free places go to the others in creation order, names breaking ties. Deterministic:
    every pass over every tenant of the partner reaches the same answer from the same tenants.

    `retained`: the names of deleted tenants whose namespaces were kept (deletionPolicy Retain),
    data and quota included. Each holds a place like a provisioned tenant until the namespace is
    deleted; a tenant of that name takes its place back (so Retain cannot grow a partner's
    namespaces beyond the cap, however many tenants it creates and deletes).
    """
    kept = sum(1 for slug in retained if slug not in tenants)
    if cap <= 0 or len(tenants) + kept <= cap:
        return True
    created, provisioned = tenants[name]
    if provisioned or name in retained:
        return True
    taken = kept + sum(1 for other, (_, done) in tenants.items() if done or other in retained)
    ahead = sum(1 for other, (when, done) in tenants.items()
                if not done and other not in retained and (when, other) < (created, name))
    return taken + ahead < cap


def partner_cap_message(partner: str, cap: int, retained: int = 0) -> str:
    kept = (f" ({retained} of them namespaces kept from deleted tenants, deletionPolicy: Retain; each holds its "
            "place until it is deleted: apply that Tenant again with deletionPolicy: Delete and delete it, or ask "
            "the platform team to delete the namespace)") if retained else ""
    return (f"partner {partner!r} already has the {cap} tenants the platform allows per partner{kept}, so this "
            "tenant is not provisioned; delete a tenant that is no longer needed (the oldest waiting tenant gets "
            "the place), or ask the platform team to raise the limit (TENANTRY_MAX_TENANTS_PER_PARTNER, chart value "
            "operator.maxTenantsPerPartner)")
