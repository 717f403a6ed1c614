"""Limits the platform sets on partners (pure): how many tenants one partner may have provisioned."""

from __future__ import annotations

from collections.abc import Mapping

PARTNER_TENANT_LIMIT = "PartnerTenantLimit"

# name -> (creationTimestamp as RFC 3339, provisioned: the tenant's status.namespace is set)
PartnerTenants = Mapping[str, tuple[str, bool]]


def within_partner_cap(name: str, tenants: PartnerTenants, cap: int) -> bool:
    """Whether this tenant of a partner may be provisioned under a cap of `cap` tenants (0: no cap).

    Provisioned tenants always keep their place (a partner cannot evict one, nor does lowering the
    cap); the free places go to the others in creation order, names breaking ties. Deterministic:
    every pass over every tenant of the partner reaches the same answer from the same tenants.
    """
    if cap <= 0 or len(tenants) <= cap:
        return True
    created, provisioned = tenants[name]
    if provisioned:
        return True
    taken = sum(1 for _, done in tenants.values() if done)
    ahead = sum(1 for other, (when, done) in tenants.items() if not done and (when, other) < (created, name))
    return taken + ahead < cap


def partner_cap_message(partner: str, cap: int) -> str:
    return (f"partner {partner!r} already has the {cap} tenants the platform allows per partner, so this tenant "
            "is not provisioned; delete a tenant that is no longer needed (the oldest waiting tenant gets the "
            "place), or ask the platform team to raise the limit (TENANTRY_MAX_TENANTS_PER_PARTNER, chart value "
            "operator.maxTenantsPerPartner)")
