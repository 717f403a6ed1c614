"""Every setting of the running operator, read once from the environment (pure).

`Settings.from_env` is the only place that reads TENANTRY_* variables for the operator: the
reconcile's (OperatorConfig), DNS (DnsSettings) and the process's own (ProcessSettings: ports,
timers, workers, leader election, logging). Each bad value is refused at start with the variable,
its value and what to give instead; nothing reads the environment at import time.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from tenantry.api.common import EMAIL
from tenantry.domain.config import DnsSettings, OperatorConfig, _parsed
from tenantry.domain.leadership import Timing
from tenantry.domain.usage import DEFAULT_LEVELS, LEVEL_CURRENCY, parse_level_currency, parse_levels

LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("text", "json")


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise ValueError("give a number above 0")
    return value


def _port(text: str) -> int:
    if not text.strip().isdigit() or not 0 <= int(text) < 65536:
        raise ValueError("give a port from 1 to 65535 (0: off)")
    return int(text)


def _workers(text: str) -> int:
    if not text.strip().isdigit() or not 0 < int(text) <= 10_000:
        raise ValueError("give a number of concurrent reconciles from 1 to 10000")
    return int(text)


def _shards(text: str) -> int:
    if not text.strip().isdigit() or not 0 < int(text) <= 1024:
        raise ValueError("give a number of shards from 1 to 1024 (1: one active replica, by leader election)")
    return int(text)


def _flag(text: str) -> bool:
    if text.strip().lower() in ("1", "true", "yes"):
        return True
    if text.strip().lower() in ("", "0", "false", "no"):
        return False
    raise ValueError("give true or false")


def _one_of(choices: tuple[str, ...]) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text.strip().lower() not in choices:
            raise ValueError(f"use one of {', '.join(choices)}")
        return text.strip().lower()
    return parse


def _rate(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise ValueError("give a fraction from 0 to 1, e.g. 0.20 for 20 %")
    return value


@dataclass(frozen=True)
class ProcessSettings:
    """How the operator process runs: its timers, concurrency, endpoints, leadership and logs."""

    resync_seconds: float = 300.0  # every tenant gets a pass this often (drift is caught sooner, by watches)
    dns_check_seconds: float = 30.0  # tenants with custom domains or failing DNS: checked this often
    # Tenants in memory checked against one LIST of them this often (handlers/tenant.forget_vanished).
    vanished_check_seconds: float = 600.0
    workers: int = 64  # concurrent reconciles
    metrics_port: int = 8080  # 0: no metrics endpoint
    metrics_address: str = "0.0.0.0"
    health_port: int = 0  # 0: no /healthz, /readyz, /leader
    health_address: str = "0.0.0.0"
    webhook_port: int = 0  # 0: no admission webhook server
    webhook_address: str = "0.0.0.0"
    webhook_cert_dir: str = "/tls"
    contest_limit: int = 5  # corrections of one object by another writer within the window, then a pause
    contest_window_seconds: float = 60.0
    contest_pause_seconds: float = 300.0
    commission_rate: float = 0.20
    partner_levels: tuple[tuple[str, float], ...] = DEFAULT_LEVELS
    partner_level_currency: str = LEVEL_CURRENCY
    leader_election: bool = False
    lease_name: str = "tenantry-leader"
    lease: Timing = field(default_factory=Timing)
    # Above 1: partners are spread over this many shards, each with its own Lease, and every
    # replica works on the shards it holds (handlers/leadership.ShardElector); the single leader
    # lease (leader_election) is then not used.
    shards: int = 1
    pod_name: str = ""  # the chart's downward API; empty outside a pod
    in_cluster: bool = False
    log_level: str = "info"
    log_format: str = "text"


_PROCESS_SETTINGS: tuple[tuple[str, str, Callable[[str], object]], ...] = (
    ("TENANTRY_RESYNC_SECONDS", "resync_seconds", _positive),
    ("TENANTRY_DNS_CHECK_SECONDS", "dns_check_seconds", _positive),
    ("TENANTRY_VANISHED_CHECK_SECONDS", "vanished_check_seconds", _positive),
    ("TENANTRY_WORKERS", "workers", _workers),
    ("TENANTRY_METRICS_PORT", "metrics_port", _port),
    ("TENANTRY_METRICS_ADDRESS", "metrics_address", str),
    ("TENANTRY_HEALTH_PORT", "health_port", _port),
    ("TENANTRY_HEALTH_ADDRESS", "health_address", str),
    ("TENANTRY_WEBHOOK_PORT", "webhook_port", _port),
    ("TENANTRY_WEBHOOK_ADDRESS", "webhook_address", str),
    ("TENANTRY_WEBHOOK_CERT_DIR", "webhook_cert_dir", str),
    ("TENANTRY_CONTEST_LIMIT", "contest_limit", _workers),
    ("TENANTRY_CONTEST_WINDOW_SECONDS", "contest_window_seconds", _positive),
    ("TENANTRY_CONTEST_PAUSE_SECONDS", "contest_pause_seconds", _positive),
    ("TENANTRY_COMMISSION_RATE", "commission_rate", _rate),
    ("TENANTRY_PARTNER_LEVELS", "partner_levels", parse_levels),
    ("TENANTRY_PARTNER_LEVEL_CURRENCY", "partner_level_currency", parse_level_currency),
    ("TENANTRY_LEADER_ELECTION", "leader_election", _flag),
    ("TENANTRY_LEASE_NAME", "lease_name", str),
    ("TENANTRY_SHARDS", "shards", _shards),
    ("POD_NAME", "pod_name", str),
    ("TENANTRY_LOG_LEVEL", "log_level", _one_of(LOG_LEVELS)),
    ("TENANTRY_LOG_FORMAT", "log_format", _one_of(LOG_FORMATS)),
)
_LEASE_SETTINGS = (("TENANTRY_LEASE_SECONDS", "lease_duration"), ("TENANTRY_RENEW_DEADLINE_SECONDS", "renew_deadline"),
                   ("TENANTRY_RETRY_SECONDS", "retry_period"))


def _process_settings(env: Mapping[str, str]) -> ProcessSettings:
    kwargs: dict[str, object] = {key: _parsed(var, env[var], parse)
                                 for var, key, parse in _PROCESS_SETTINGS if env.get(var)}
    timing = {key: _parsed(var, env[var], _positive) for var, key in _LEASE_SETTINGS if env.get(var)}
    try:
        kwargs["lease"] = Timing(**{**Timing().__dict__, **timing})
    except ValueError as error:
        raise ValueError(f"TENANTRY_LEASE_SECONDS, _RENEW_DEADLINE_SECONDS, _RETRY_SECONDS: {error}") from error
    if env.get("TENANTRY_VERBOSE") == "1":  # the older switch, kept
        kwargs.setdefault("log_level", "debug")
    kwargs["in_cluster"] = bool(env.get("KUBERNETES_SERVICE_HOST"))
    return ProcessSettings(**kwargs)  # type: ignore[arg-type]


SMTP_TLS = ("starttls", "tls", "none")


@dataclass(frozen=True)
class SmtpSettings:
    """The relay for the welcome e-mails; no host: none is sent (the WelcomeSent condition says so)."""

    host: str = ""
    port: int = 587
    tls: str = "starttls"  # starttls | tls (implicit, usually port 465) | none (loopback relays only)
    username: str = ""
    password: str = field(default="", repr=False)  # from the chart's Secret (smtp.existingSecret)
    sender: str = ""  # the From address
    allowed_from_domains: tuple[str, ...] = ()  # domains the platform's own Brandings' emailFrom may use
    ca_file: str = ""  # CA bundle for the relay's certificate; empty: the system's
    timeout_seconds: float = 30.0
    language: str = "en"  # the welcome's language when the Branding has none of its own
    partner_hourly_limit: int = 200  # welcome e-mail recipients per partner and hour (resends included)
    first_retry_seconds: float = 30.0  # a failed sending is retried after this, then twice as long each time
    resend_cooldown_seconds: float = 600.0  # at most one resend (annotation) per tenant this often

    @property
    def configured(self) -> bool:
        return bool(self.host)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SmtpSettings:
        parsers: tuple[tuple[str, str, Callable[[str], object]], ...] = (
            ("TENANTRY_SMTP_HOST", "host", str), ("TENANTRY_SMTP_PORT", "port", _port),
            ("TENANTRY_SMTP_TLS", "tls", _one_of(SMTP_TLS)), ("TENANTRY_SMTP_USERNAME", "username", str),
            ("TENANTRY_SMTP_PASSWORD", "password", str), ("TENANTRY_SMTP_FROM", "sender", _address),
            ("TENANTRY_SMTP_ALLOWED_FROM_DOMAINS", "allowed_from_domains", _domains),
            ("TENANTRY_SMTP_CA_FILE", "ca_file", str), ("TENANTRY_SMTP_TIMEOUT_SECONDS", "timeout_seconds", _positive),
            ("TENANTRY_WELCOME_LANGUAGE", "language", _language),
            ("TENANTRY_WELCOME_PARTNER_HOURLY_LIMIT", "partner_hourly_limit", _workers),
            ("TENANTRY_WELCOME_FIRST_RETRY_SECONDS", "first_retry_seconds", _positive),
            ("TENANTRY_WELCOME_RESEND_COOLDOWN_SECONDS", "resend_cooldown_seconds", _positive))
        kwargs = {key: _parsed(var, env[var], parse) for var, key, parse in parsers if env.get(var)}
        settings = cls(**kwargs)  # type: ignore[arg-type]
        if settings.host and not settings.sender:
            raise ValueError("TENANTRY_SMTP_FROM is empty: with TENANTRY_SMTP_HOST set, give the From address of "
                             "the welcome e-mails, e.g. welcome@platform.example")
        if settings.username and settings.tls == "none":
            raise ValueError("TENANTRY_SMTP_TLS=none with TENANTRY_SMTP_USERNAME set: the credentials would cross "
                             "the network in clear text; use starttls or tls")
        return settings


def _address(text: str) -> str:
    if not re.fullmatch(EMAIL.strip("^$"), text.strip()):
        raise ValueError("give one e-mail address, e.g. welcome@platform.example (no display name)")
    return text.strip()


def _domains(text: str) -> tuple[str, ...]:
    domains = tuple(d.strip().lower() for d in text.split(",") if d.strip())
    bad = [d for d in domains if not re.fullmatch(r"([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z]{2,}", d)]
    if bad:
        raise ValueError(f"{', '.join(bad)} is not a domain name: give domains separated by commas")
    return domains


def _language(text: str) -> str:
    if not re.fullmatch(r"[a-z]{2}(-[A-Z]{2})?", text.strip()):
        raise ValueError("give a language code such as en or de-AT")
    return text.strip()


@dataclass(frozen=True)
class Settings:
    """All of it: what the reconcile decides with, DNS, and the process."""

    operator: OperatorConfig
    dns: DnsSettings
    process: ProcessSettings
    smtp: SmtpSettings = field(default_factory=SmtpSettings)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Raises ValueError naming every variable that is wrong, not only the first one."""
        problems: list[str] = []
        parts: dict[str, object] = {}
        for name, parse in (("operator", OperatorConfig.from_env), ("process", _process_settings),
                            ("smtp", SmtpSettings.from_env)):
            try:
                parts[name] = parse(env)
            except ValueError as error:
                problems.append(str(error))
        platform_domain = parts["operator"].platform_domain if "operator" in parts else OperatorConfig().platform_domain
        try:
            parts["dns"] = DnsSettings.from_env(env, platform_domain)  # type: ignore[union-attr]
        except ValueError as error:
            problems.append(str(error))
        if problems:
            raise ValueError("; ".join(problems))
        return cls(**parts)  # type: ignore[arg-type]
