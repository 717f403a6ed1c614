"""Operator settings that shape the desired state (read from the environment by the handlers)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from tenantry.api.featureset import ResourceAmounts, Resources
from tenantry.domain.naming import RESERVED_SLUGS


def _default_resources() -> Resources:
    return Resources(
        base=ResourceAmounts(cpu="2", memory="4Gi", storage="10Gi", pods=20),
        per_seat=ResourceAmounts(cpu="10m", memory="32Mi", storage="100Mi", pods=0),
    )


@dataclass(frozen=True)
class OperatorConfig:
    """What a platform team configures once for all tenants."""

    platform_namespace: str = "tenantry-system"
    platform_domain: str = "platform.example"
    # Namespaces whose pods may reach every tenant (the ingress controller's). Selected by label:
    # Kubernetes 1.20 does not yet set kubernetes.io/metadata.name on namespaces by itself.
    ingress_namespace_labels: Mapping[str, str] = field(
        default_factory=lambda: {"kubernetes.io/metadata.name": "ingress-nginx"}
    )
    namespace_prefix: str = "tenant-"
    default_resources: Resources = field(default_factory=_default_resources)
    # DNS: "none" (not managed), "rfc2136" (update a zone directly) or "externaldns" (DNSEndpoints).
    dns_provider: str = "none"
    dns_target: str = ""  # what <slug>.<platform domain> points at (IP -> A, name -> CNAME)
    dns_ttl: int = 300
    dns_owner_id: str = "tenantry"
    domain_grace_seconds: float = 86400.0
    route_service: str = "frontend"  # the Service in the tenant namespace that custom domains route to
    route_port: int = 80
    cert_issuer: str = "letsencrypt"  # the cert-manager ClusterIssuer for custom-domain certificates
    # The ClusterRole (shipped by the chart) bound to each tenant's admins in their namespace.
    tenant_admin_cluster_role: str = "tenantry-tenant-admin"
    # Who may set platform-only fields and change immutable ones, besides the operator itself.
    platform_groups: tuple[str, ...] = ("system:masters", "tenantry:platform-admins")
    # The operator's own user name (its kopf bookkeeping annotations are under tenantry.dev/ too);
    # empty: the chart's default ServiceAccount `tenantry` in the platform namespace.
    operator_username: str = ""
    # Custom-domain claims: a claim never verified is released after this many seconds, and a
    # partner holds at most this many unverified claims across all its tenants.
    domain_claim_ttl_seconds: float = 7 * 86400.0
    max_pending_domains: int = 20
    # Tenant names nobody may take (besides naming.RESERVED_SLUGS), and domains (with every name
    # under them) nobody may claim, e.g. the platform company's own.
    reserved_slugs: tuple[str, ...] = ()
    reserved_domains: tuple[str, ...] = ()

    @property
    def operator_identity(self) -> str:
        return self.operator_username or f"system:serviceaccount:{self.platform_namespace}:tenantry"

    def slug_reserved(self, slug: str) -> bool:
        return slug in RESERVED_SLUGS or slug in self.reserved_slugs

    def domain_reserved(self, domain: str) -> bool:
        return any(domain == name or domain.endswith("." + name) for name in self.reserved_domains)

    @property
    def entry_point(self) -> str:
        return self.dns_target or f"ingress.{self.platform_domain}"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> OperatorConfig:
        """Settings from TENANTRY_* variables; unset ones keep their defaults."""
        kwargs: dict[str, object] = {}
        if "TENANTRY_PLATFORM_NAMESPACE" in env:
            kwargs["platform_namespace"] = env["TENANTRY_PLATFORM_NAMESPACE"]
        if "TENANTRY_PLATFORM_DOMAIN" in env:
            kwargs["platform_domain"] = env["TENANTRY_PLATFORM_DOMAIN"]
        if "TENANTRY_INGRESS_NAMESPACE_LABELS" in env:
            kwargs["ingress_namespace_labels"] = parse_labels(env["TENANTRY_INGRESS_NAMESPACE_LABELS"])
        for key, name, kind in _SIMPLE_SETTINGS:
            if key in env:
                kwargs[name] = kind(env[key])
        if kwargs.get("dns_provider", "none") not in ("none", "rfc2136", "externaldns"):
            raise ValueError(f"TENANTRY_DNS_PROVIDER={kwargs['dns_provider']!r}: use none, rfc2136 or externaldns")
        config = cls(**kwargs)  # type: ignore[arg-type]
        if config.domain_claim_ttl_seconds <= 0 or config.max_pending_domains < 0:
            raise ValueError("TENANTRY_DOMAIN_CLAIM_TTL_SECONDS must be positive, "
                             "TENANTRY_MAX_PENDING_DOMAINS at least 0")
        return config


_SIMPLE_SETTINGS = (
    ("TENANTRY_DNS_PROVIDER", "dns_provider", str),
    ("TENANTRY_DNS_TARGET", "dns_target", str),
    ("TENANTRY_DNS_TTL", "dns_ttl", int),
    ("TENANTRY_DNS_OWNER_ID", "dns_owner_id", str),
    ("TENANTRY_DOMAIN_GRACE_SECONDS", "domain_grace_seconds", float),
    ("TENANTRY_ROUTE_SERVICE", "route_service", str),
    ("TENANTRY_ROUTE_PORT", "route_port", int),
    ("TENANTRY_CERT_ISSUER", "cert_issuer", str),
    ("TENANTRY_TENANT_ADMIN_CLUSTERROLE", "tenant_admin_cluster_role", str),
    ("TENANTRY_OPERATOR_USERNAME", "operator_username", str),
    ("TENANTRY_PLATFORM_GROUPS", "platform_groups", lambda text: tuple(filter(None, map(str.strip, text.split(","))))),
    ("TENANTRY_DOMAIN_CLAIM_TTL_SECONDS", "domain_claim_ttl_seconds", float),
    ("TENANTRY_MAX_PENDING_DOMAINS", "max_pending_domains", int),
    ("TENANTRY_RESERVED_SLUGS", "reserved_slugs", lambda text: _names(text)),
    ("TENANTRY_RESERVED_DOMAINS", "reserved_domains", lambda text: tuple(n.lower().rstrip(".") for n in _names(text))),
)


def _names(text: str) -> tuple[str, ...]:
    """`a, b,c` -> ("a", "b", "c")."""
    return tuple(filter(None, map(str.strip, text.split(","))))


def parse_labels(text: str) -> dict[str, str]:
    """`a=b,c=d` -> {"a": "b", "c": "d"}, with a clear error for anything else."""
    labels: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"label selector item {item!r} is not of the form key=value")
        labels[key.strip()] = value.strip()
    return labels
