"""The portal's settings, read once from the environment, each bad value refused with its variable."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from tenantry.domain.config import _parsed
from tenantry.domain.settings import _flag, _port, _rate
from tenantry.domain.usage import DEFAULT_LEVELS, LEVEL_CURRENCY, parse_level_currency, parse_levels


def _names(text: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    if not names:
        raise ValueError("give a comma-separated list, e.g. Standard,Priority,Premium")
    return names


def _https_or_empty(text: str) -> str:
    if text and not text.startswith("https://"):
        raise ValueError("give an https URL (the portal links to it), e.g. https://git.example/org/tenants/blob/main")
    return text.rstrip("/")


def _url(text: str) -> str:
    if text and not text.startswith(("http://", "https://")):
        raise ValueError("give Prometheus's base URL, e.g. http://prometheus-operated.monitoring:9090")
    return text


_MATCHER = r"""\s*[A-Za-z_][A-Za-z0-9_]*\s*(=|!=|=~|!~)\s*("([^"\\\n]|\\.)*"|'([^'\\\n]|\\.)*'|`[^`]*`)\s*"""
_MATCHERS = re.compile(f"{_MATCHER}(,{_MATCHER})*")


def _matchers(text: str) -> str:
    if not _MATCHERS.fullmatch(text):
        raise ValueError('give PromQL label matchers separated by commas, e.g. namespace="tenantry-system"')
    return text.strip()


@dataclass(frozen=True)
class PortalSettings:
    port: int = 8088
    address: str = "0.0.0.0"
    platform_namespace: str = "tenantry-system"
    platform_domain: str = "platform.example"
    prometheus_url: str = ""  # empty: pages show the present only
    # Label matchers that make the history queries read the operator's own series only, e.g.
    # namespace="tenantry-system": a Prometheus that also scrapes tenants' pods would otherwise let
    # a tenant admin publish tenantry_tenant_mrr{partner="..."} and forge a partner's history.
    prometheus_selector: str = ""
    commission_rate: float = 0.20  # the platform default; a partner namespace's annotation overrides it
    partner_levels: tuple[tuple[str, float], ...] = DEFAULT_LEVELS
    partner_level_currency: str = LEVEL_CURRENCY
    support_tiers: tuple[str, ...] = ("Standard", "Priority", "Premium")
    git_url: str = ""  # e.g. https://git.example/org/tenants/blob/main: links to each customer's YAML
    trust_proxy_headers: bool = False  # only behind an authenticating proxy that sets them
    proxy_user_header: str = "X-Forwarded-User"
    proxy_groups_header: str = "X-Forwarded-Groups"
    # Put before the proxy's user and each group (as kube-apiserver's --oidc-username-prefix), so
    # that a name an identity provider lets its users choose never equals a cluster one
    # (kubeadm:cluster-admins, the platform's own groups): bind RBAC to the prefixed names.
    proxy_user_prefix: str = ""
    proxy_groups_prefix: str = ""
    audiences: tuple[str, ...] = ()  # TokenReview audiences (empty: the API server's own)
    secure_cookie: bool = True  # false only for plain-http local demos
    title: str = "tenantry partner portal"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> PortalSettings:
        parsers = (
            ("TENANTRY_PORTAL_PORT", "port", _port), ("TENANTRY_PORTAL_ADDRESS", "address", str),
            ("TENANTRY_PLATFORM_NAMESPACE", "platform_namespace", str),
            ("TENANTRY_PLATFORM_DOMAIN", "platform_domain", str),
            ("TENANTRY_PORTAL_PROMETHEUS_URL", "prometheus_url", _url),
            ("TENANTRY_PORTAL_PROMETHEUS_SELECTOR", "prometheus_selector", _matchers),
            ("TENANTRY_COMMISSION_RATE", "commission_rate", _rate),
            ("TENANTRY_PARTNER_LEVELS", "partner_levels", parse_levels),
            ("TENANTRY_PARTNER_LEVEL_CURRENCY", "partner_level_currency", parse_level_currency),
            ("TENANTRY_PORTAL_SUPPORT_TIERS", "support_tiers", _names),
            ("TENANTRY_PORTAL_GIT_URL", "git_url", _https_or_empty),
            ("TENANTRY_PORTAL_TRUST_PROXY_HEADERS", "trust_proxy_headers", _flag),
            ("TENANTRY_PORTAL_PROXY_USER_HEADER", "proxy_user_header", str),
            ("TENANTRY_PORTAL_PROXY_GROUPS_HEADER", "proxy_groups_header", str),
            ("TENANTRY_PORTAL_PROXY_USER_PREFIX", "proxy_user_prefix", str),
            ("TENANTRY_PORTAL_PROXY_GROUPS_PREFIX", "proxy_groups_prefix", str),
            ("TENANTRY_PORTAL_AUDIENCES", "audiences", _names),
            ("TENANTRY_PORTAL_SECURE_COOKIE", "secure_cookie", _flag),
            ("TENANTRY_PORTAL_TITLE", "title", str),
        )
        kwargs: dict[str, object] = {}
        problems = []
        for var, key, parse in parsers:
            if env.get(var):
                try:
                    kwargs[key] = _parsed(var, env[var], parse)
                except ValueError as error:
                    problems.append(str(error))
        if problems:
            raise ValueError("; ".join(problems))
        return cls(**kwargs)  # type: ignore[arg-type]
