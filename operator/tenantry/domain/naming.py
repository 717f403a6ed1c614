"""Deterministic names, labels and ownership marks of everything the operator manages."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

MANAGED_BY = "app.kubernetes.io/managed-by"
OPERATOR = "tenantry"
FIELD_MANAGER = "tenantry"
PREFIX = "tenantry.dev/"  # labels and annotations under it are the operator's and the platform's
PARTNER_LABEL = "tenantry.dev/partner"
TENANT_LABEL = "tenantry.dev/tenant"
STATE_LABEL = "tenantry.dev/state"
ORPHANED_LABEL = "tenantry.dev/orphaned"
ROLE_LABEL = "tenantry.dev/role"  # on the operator's own pods: leader or standby (the Service selects the leader)
# "<partner namespace>/<slug>": who holds a tenant namespace. Kept across a Retain deletion so
# that the same partner can re-adopt its data and nobody else can take it over.
OWNER_ANNOTATION = "tenantry.dev/owner"
# Set before anything is provisioned, so a Tenant deleted a moment later still gets cleaned up.
FINALIZER = "tenantry.dev/finalizer"
# Every annotation under PREFIX that tenantry reads (defined beside what reads it; a unit test
# keeps this list complete): the informers keep only these of the prefix.
KNOWN_ANNOTATIONS = frozenset({
    OWNER_ANNOTATION, "tenantry.dev/domain", "tenantry.dev/verified-at", "tenantry.dev/commission-rate",
    "tenantry.dev/quarterly-target", "tenantry.dev/email-from-domains", "tenantry.dev/resend-welcome",
    "tenantry.dev/shards",
})
# Every label tenantry sets or reads (a unit test keeps it complete): what the informers keep of an
# object whose labels someone padded beyond a few KiB (exact keys: a prefix would let anyone pad).
KNOWN_LABELS = frozenset({
    MANAGED_BY, PARTNER_LABEL, TENANT_LABEL, STATE_LABEL, ORPHANED_LABEL, ROLE_LABEL, "tenantry.dev/route",
    "tenantry.dev/lease-group", "tenantry.dev/lease-role", "pod-security.kubernetes.io/enforce",
    "pod-security.kubernetes.io/enforce-version", "pod-security.kubernetes.io/audit",
    "pod-security.kubernetes.io/warn",
})

# Tenant names (slugs, so also <slug>.<platform domain>) no partner may take: what users could
# mistake for the platform itself, and the names the platform uses for its own services. The
# platform adds its own with TENANTRY_RESERVED_SLUGS (chart value operator.reservedSlugs).
RESERVED_SLUGS = frozenset({
    "www", "api", "admin", "administrator", "root", "login", "logout", "signin", "signup", "register",
    "account", "accounts", "billing", "pay", "payment", "support", "help", "docs", "status", "mail",
    "email", "smtp", "imap", "pop", "pop3", "mx", "webmail", "ns", "ns1", "ns2", "ns3", "ns4", "dns",
    "ftp", "sftp", "ssh", "vpn", "cdn", "static", "assets", "media", "img", "files", "download",
    "downloads", "app", "apps", "auth", "oauth", "sso", "id", "identity", "dashboard", "portal",
    "console", "panel", "grafana", "prometheus", "alertmanager", "metrics", "monitoring", "logs",
    "ingress", "gateway", "proxy", "registry", "git", "gitlab", "github", "ci", "cd", "build",
    "secure", "security", "system", "platform", "internal", "intranet", "localhost", "test", "demo",
    "staging", "dev", "prod", "production", "sandbox", "blog", "news", "shop", "store", "tenantry",
    "webhook", "webhooks", "kubernetes", "k8s", "cluster", "default", "public", "private", "abuse",
    "postmaster", "hostmaster", "webmaster", "noreply", "no-reply", "info", "contact", "legal",
    "privacy", "terms", "autodiscover", "autoconfig", "wpad", "isatap",
})

QUOTA = "tenantry-quota"
LIMITS = "tenantry-limits"
NETWORK_POLICY = "tenantry-isolation"
ADMIN_BINDING = "tenantry-tenant-admins"
TENANT_CONFIG = "tenantry-tenant"
FEATURES_CONFIG = "tenantry-features"
FLAGS_CONFIG = "tenantry-flags"
BRANDING_CONFIG = "tenantry-branding"
OPERATOR_CONFIGMAPS = frozenset({TENANT_CONFIG, FEATURES_CONFIG, FLAGS_CONFIG, BRANDING_CONFIG})
# Every key the operator writes into those ConfigMaps (a unit test keeps it complete).
OPERATOR_CONFIGMAP_KEYS = frozenset({"slug", "partner", "company", "state", "plan", "seats", "url", "domains",
                                     "features.json", "flags.json", "branding.json", "branding.css", "logo.svg"})


def tenant_namespace(prefix: str, slug: str) -> str:
    return f"{prefix}{slug}"


def owner_key(partner_namespace: str, slug: str) -> str:
    return f"{partner_namespace}/{slug}"


def parse_owner_key(value: str) -> tuple[str, str] | None:
    """The (partner namespace, slug) of an ownership mark, or None if it is not one."""
    partner_namespace, sep, slug = value.partition("/")
    return (partner_namespace, slug) if sep and partner_namespace and slug else None


def tenant_labels(slug: str, partner: str) -> dict[str, str]:
    return {MANAGED_BY: OPERATOR, TENANT_LABEL: slug, PARTNER_LABEL: partner}


def is_managed(labels: Mapping[str, str] | None) -> bool:
    return (labels or {}).get(MANAGED_BY) == OPERATOR


def owned_by(live: Mapping[str, Any], owner: str) -> bool:
    """Managed by tenantry AND this tenant's (its owner annotation is `owner`, see owner_key).

    The label alone is not enough: a tenant that lost a slug race shares the namespace name, and
    the objects there belong to the tenant that holds it.
    """
    meta = live.get("metadata") or {}
    return is_managed(meta.get("labels")) and (meta.get("annotations") or {}).get(OWNER_ANNOTATION) == owner


def reserved_slug(slug: str) -> bool:
    """A built-in reserved tenant name; punycode (`xn--`) ones too: a browser shows them as
    Unicode, so they could pass for a reserved name or another customer's."""
    return slug in RESERVED_SLUGS or slug.startswith("xn--")
