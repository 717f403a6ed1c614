"""Operator settings that shape the desired state (read from the environment by the handlers)."""

from __future__ import annotations

import base64
import binascii
import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from tenantry.api.featureset import ResourceAmounts, Resources
from tenantry.domain import quantity
from tenantry.domain.naming import reserved_slug


def _default_resources() -> Resources:
    return Resources(
        base=ResourceAmounts(cpu="2", memory="4Gi", storage="10Gi", pods=20),
        per_seat=ResourceAmounts(cpu="10m", memory="32Mi", storage="100Mi", pods=0),
    )


# Where tenant pods may not send traffic: private networks (the cluster, the platform's own
# services), link-local (the cloud metadata service at 169.254.169.254 and fd00:ec2::254), CGNAT
# (100.64/10, where some clouds and service meshes live), loopback, "this network", multicast,
# reserved; for IPv6 unique-local (fc00::/7, which holds fd00:ec2::254), link-local, loopback and
# NAT64 (which would reach the IPv4 private ranges through a NAT64 gateway). IPv4-mapped addresses
# (::ffff:0:0/96) are IPv4 on the wire, so the IPv4 list covers them; the API server refuses them
# inside ::/0 anyway.
DEFAULT_EGRESS_DENY_CIDRS: tuple[str, ...] = (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
    "192.168.0.0/16", "224.0.0.0/4", "240.0.0.0/4",
    # IETF protocol assignments, benchmarking networks, and Azure's platform endpoint (wireserver).
    "192.0.0.0/24", "198.18.0.0/15", "168.63.129.16/32",
    "::1/128", "64:ff9b::/96", "64:ff9b:1::/48", "fc00::/7", "fe80::/10",
)
# Objects a tenant may hold, per kind (ResourceQuota count/<resource>[.<group>]). The operator's
# own objects count too: 2 ResourceQuotas (the quota and the PriorityClass guard), 4 ConfigMaps.
DEFAULT_OBJECT_COUNTS: Mapping[str, int] = {
    "configmaps": 100, "cronjobs.batch": 20, "deployments.apps": 100, "jobs.batch": 100,
    "persistentvolumeclaims": 20, "replicationcontrollers": 0, "resourcequotas": 2, "secrets": 100,
    "serviceaccounts": 50, "services": 50, "statefulsets.apps": 20,
}


DEFAULT_CONTAINER_MAX: Mapping[str, str] = {"cpu": "8", "memory": "32Gi"}


def _default_ceiling() -> ResourceAmounts:
    return ResourceAmounts(cpu="128", memory="512Gi", storage="10Ti", pods=1000)


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
    # The platform records; the provider that publishes them is DnsSettings', chosen once at start-up.
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
    # Ceilings the platform sets and the operator enforces itself (whatever a plan or seats say).
    egress_deny_cidrs: tuple[str, ...] = DEFAULT_EGRESS_DENY_CIDRS
    tenant_quota_ceiling: ResourceAmounts = field(default_factory=_default_ceiling)
    container_max: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_CONTAINER_MAX))
    pvc_max_storage: str = "1Ti"
    object_counts: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_OBJECT_COUNTS))
    max_tenants_per_partner: int = 10_000  # 0: no limit
    # PriorityClasses tenants' pods may use (besides none); any other is refused by a quota.
    allowed_priority_classes: tuple[str, ...] = ()
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
        return reserved_slug(slug) or slug in self.reserved_slugs

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
                kwargs[name] = _parsed(key, env[key], kind)
        config = cls(**kwargs)  # type: ignore[arg-type]
        if config.domain_claim_ttl_seconds <= 0 or config.max_pending_domains < 0:
            raise ValueError("TENANTRY_DOMAIN_CLAIM_TTL_SECONDS must be positive, "
                             "TENANTRY_MAX_PENDING_DOMAINS at least 0")
        return config


_SIMPLE_SETTINGS = (
    ("TENANTRY_DNS_TARGET", "dns_target", str),
    ("TENANTRY_DNS_TTL", "dns_ttl", int),
    ("TENANTRY_DNS_OWNER_ID", "dns_owner_id", str),
    ("TENANTRY_DOMAIN_GRACE_SECONDS", "domain_grace_seconds", float),
    ("TENANTRY_ROUTE_SERVICE", "route_service", str),
    ("TENANTRY_ROUTE_PORT", "route_port", int),
    ("TENANTRY_CERT_ISSUER", "cert_issuer", str),
    ("TENANTRY_TENANT_ADMIN_CLUSTERROLE", "tenant_admin_cluster_role", str),
    ("TENANTRY_OPERATOR_USERNAME", "operator_username", str),
    ("TENANTRY_PLATFORM_GROUPS", "platform_groups", lambda text: _names(text)),
    ("TENANTRY_EGRESS_DENY_CIDRS", "egress_deny_cidrs", lambda text: parse_cidrs(text)),
    ("TENANTRY_TENANT_QUOTA_CEILING", "tenant_quota_ceiling", lambda text: parse_ceiling(text)),
    ("TENANTRY_CONTAINER_MAX", "container_max", lambda text: parse_container_max(text)),
    ("TENANTRY_PVC_MAX_STORAGE", "pvc_max_storage", lambda text: _quantity("storage", text.strip())),
    ("TENANTRY_OBJECT_COUNT_QUOTA", "object_counts", lambda text: parse_object_counts(text)),
    ("TENANTRY_MAX_TENANTS_PER_PARTNER", "max_tenants_per_partner", lambda text: _count("value", text)),
    ("TENANTRY_ALLOWED_PRIORITY_CLASSES", "allowed_priority_classes", lambda text: _names(text)),
    ("TENANTRY_DOMAIN_CLAIM_TTL_SECONDS", "domain_claim_ttl_seconds", float),
    ("TENANTRY_MAX_PENDING_DOMAINS", "max_pending_domains", int),
    ("TENANTRY_RESERVED_SLUGS", "reserved_slugs", lambda text: _names(text)),
    ("TENANTRY_RESERVED_DOMAINS", "reserved_domains", lambda text: tuple(n.lower().rstrip(".") for n in _names(text))),
)


def parse_cidrs(text: str) -> tuple[str, ...]:
    """`10.0.0.0/8,fc00::/7` -> the networks, each checked (host bits must be zero)."""
    cidrs = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        try:
            network = ipaddress.ip_network(item, strict=True)
        except ValueError as error:
            raise ValueError(f"{item!r} is not a CIDR such as 10.0.0.0/8 or fc00::/7 ({error})") from error
        if isinstance(network, ipaddress.IPv6Network) and network.subnet_of(_V4_MAPPED):
            raise ValueError(f"{item!r} is IPv4-mapped: the API server refuses it in a NetworkPolicy; give the "
                             "IPv4 network instead (it covers the mapped addresses)")
        cidrs.append(str(network))
    if not cidrs:
        raise ValueError("empty: give at least one CIDR")
    return tuple(cidrs)


_V4_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")


def _quantity(name: str, text: str) -> str:
    try:
        quantity.parse(text)
    except ValueError as error:
        raise ValueError(f"{name}: {error}") from error
    return text


def _count(name: str, text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise ValueError(f"{name} {text!r} is not a whole number >= 0")
    return value


def parse_ceiling(text: str) -> ResourceAmounts:
    """`cpu=128,memory=512Gi,storage=10Ti,pods=1000`; names left out keep their default."""
    items = parse_labels(text)
    unknown = sorted(set(items) - {"cpu", "memory", "storage", "pods"})
    if unknown:
        raise ValueError(f"unknown resource(s) {', '.join(unknown)}: use cpu, memory, storage, pods")
    base = _default_ceiling().model_dump()
    base.update({k: _quantity(k, v) for k, v in items.items() if k != "pods"})
    if "pods" in items:
        base["pods"] = _count("pods", items["pods"])
    return ResourceAmounts.model_validate(base)


def parse_container_max(text: str) -> dict[str, str]:
    """`cpu=8,memory=32Gi`: the most one container may use (LimitRange max); at least the defaults."""
    items = parse_labels(text)
    unknown = sorted(set(items) - {"cpu", "memory"})
    if unknown or not items:
        raise ValueError(f"use cpu=<quantity>,memory=<quantity> (unknown: {', '.join(unknown) or 'none'})")
    result = {**DEFAULT_CONTAINER_MAX, **{k: _quantity(k, v) for k, v in items.items()}}
    for name, floor in CONTAINER_DEFAULT_LIMITS.items():
        if quantity.parse(result[name]) < quantity.parse(floor):
            raise ValueError(f"{name}={result[name]} is below the default container limit {floor}")
    return result


# What a container without limits gets (LimitRange default); a max below it would refuse them all.
CONTAINER_DEFAULT_LIMITS = {"cpu": "500m", "memory": "512Mi"}


def parse_object_counts(text: str) -> dict[str, int]:
    """`secrets=100,jobs.batch=50`: merged over the defaults."""
    counts = dict(DEFAULT_OBJECT_COUNTS)
    for name, value in parse_labels(text).items():
        if not name.replace(".", "").replace("-", "").isalnum() or name != name.lower():
            raise ValueError(f"{name!r} is not a resource name such as secrets or jobs.batch")
        counts[name] = _count(name, value)
    for name, floor in _OPERATOR_OBJECTS.items():
        if counts[name] < floor:
            raise ValueError(f"{name}={counts[name]}: the operator itself keeps {floor} in each tenant namespace")
    return counts


_OPERATOR_OBJECTS = {"configmaps": 4, "resourcequotas": 2}


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


_T = TypeVar("_T")


def _parsed(key: str, text: str, parse: Callable[[str], _T]) -> _T:
    """`parse(text)`, its error prefixed with the variable and its value."""
    try:
        return parse(text)
    except ValueError as error:
        raise ValueError(f"{key}={text!r}: {error}") from error


# --- DNS ----------------------------------------------------------------------------------------

DNS_PROVIDERS = ("none", "rfc2136", "externaldns")
TSIG_ALGORITHMS = ("hmac-md5", "hmac-sha1", "hmac-sha224", "hmac-sha256", "hmac-sha384", "hmac-sha512")
_RFC2136_NEEDS = ("TENANTRY_RFC2136_SERVER", "TENANTRY_RFC2136_TSIG_NAME", "TENANTRY_RFC2136_TSIG_SECRET")


@dataclass(frozen=True)
class Rfc2136Settings:
    """An authoritative server that takes TSIG-signed dynamic updates (RFC 2136) of the zone."""

    server: tuple[str, int]
    zone: str
    tsig_name: str
    tsig_secret: str = field(repr=False)
    tsig_algorithm: str = "hmac-sha256"


@dataclass(frozen=True)
class DnsSettings:
    """Who publishes the tenants' platform records, and how custom domains are checked.

    The provider is chosen here, once: the running operator builds it from these settings at
    start-up (adapters.dnsproviders.make_dns_provider) and the reconcile never asks which it is.
    """

    provider: str = "none"  # one of DNS_PROVIDERS
    rfc2136: Rfc2136Settings | None = None  # set exactly when the provider is rfc2136
    resolver: tuple[str, int] | None = None  # for custom-domain checks; None: the system's
    recheck_seconds: float = 3600.0  # a verified custom domain is checked again after this
    first_retry_seconds: float = 10.0  # a pending one after this, doubling up to recheck_seconds

    @classmethod
    def from_env(cls, env: Mapping[str, str], platform_domain: str) -> DnsSettings:
        """TENANTRY_DNS_PROVIDER, TENANTRY_RFC2136_*, TENANTRY_RESOLVER and
        TENANTRY_DOMAIN_{RECHECK,RETRY}_SECONDS; the zone defaults to the platform domain."""
        provider = env.get("TENANTRY_DNS_PROVIDER") or "none"
        if provider not in DNS_PROVIDERS:
            raise ValueError(f"TENANTRY_DNS_PROVIDER={provider!r}: use {', '.join(DNS_PROVIDERS)}")
        kwargs: dict[str, object] = {"provider": provider}
        for key, name, parse in _DNS_SETTINGS:
            if env.get(key):
                kwargs[name] = _parsed(key, env[key], parse)
        if provider == "rfc2136":
            kwargs["rfc2136"] = _rfc2136_settings(env, platform_domain)
        return cls(**kwargs)  # type: ignore[arg-type]


def _rfc2136_settings(env: Mapping[str, str], platform_domain: str) -> Rfc2136Settings:
    missing = [key for key in _RFC2136_NEEDS if not env.get(key)]
    if missing:
        raise ValueError(f"TENANTRY_DNS_PROVIDER=rfc2136 needs {', '.join(missing)}")
    try:
        base64.b64decode(env["TENANTRY_RFC2136_TSIG_SECRET"], validate=True)
    except binascii.Error as error:
        # The secret itself is never part of a message.
        raise ValueError("TENANTRY_RFC2136_TSIG_SECRET is not base64 (the secret of the BIND key statement)") \
            from error
    algorithm = env.get("TENANTRY_RFC2136_TSIG_ALGORITHM") or "hmac-sha256"
    if algorithm not in TSIG_ALGORITHMS:
        raise ValueError(f"TENANTRY_RFC2136_TSIG_ALGORITHM={algorithm!r}: use one of {', '.join(TSIG_ALGORITHMS)}")
    return Rfc2136Settings(_parsed("TENANTRY_RFC2136_SERVER", env["TENANTRY_RFC2136_SERVER"], parse_host_port),
                           (env.get("TENANTRY_RFC2136_ZONE") or platform_domain).rstrip("."),
                           env["TENANTRY_RFC2136_TSIG_NAME"], env["TENANTRY_RFC2136_TSIG_SECRET"], algorithm)


def parse_host_port(text: str) -> tuple[str, int]:
    """`host`, `host:port` or `[IPv6 address]:port`; the port defaults to 53 (DNS)."""
    text = text.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest.removeprefix(":") or "53"
    elif text.count(":") == 1:
        host, port = text.split(":")
    else:  # a name, an IPv4 address or a bare IPv6 address
        host, port = text, "53"
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("give host or host:port ([address]:port for IPv6), the port from 1 to 65535")
    return host, int(port)


def _seconds(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise ValueError("give a number of seconds above 0")
    return value


_DNS_SETTINGS: tuple[tuple[str, str, Callable[[str], object]], ...] = (
    ("TENANTRY_RESOLVER", "resolver", parse_host_port),
    ("TENANTRY_DOMAIN_RECHECK_SECONDS", "recheck_seconds", _seconds),
    ("TENANTRY_DOMAIN_RETRY_SECONDS", "first_retry_seconds", _seconds),
)
