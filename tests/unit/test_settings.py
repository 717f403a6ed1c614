"""Settings of the running operator, read once from the environment (domain.settings).

Tested here:
- no variable set: the documented defaults of every part
- each setting is read from its variable (lease timings, log level and format, the process's ports)
- a bad value is refused naming the variable, its value and what to give; all bad ones at once
- the DNS provider's errors come through the same door
- nothing in the operator reads the environment but Settings.from_env and the kube client's config
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tenantry.domain.config import DnsSettings, OperatorConfig
from tenantry.domain.leadership import Timing
from tenantry.domain.settings import ProcessSettings, Settings

PACKAGE = Path(__file__).resolve().parents[2] / "operator" / "tenantry"


def test_defaults() -> None:
    settings = Settings.from_env({})
    assert settings.process == ProcessSettings()
    assert settings.operator == OperatorConfig()
    assert settings.dns == DnsSettings()
    assert (settings.process.resync_seconds, settings.process.workers, settings.process.log_format) == (300, 64, "text")


def test_each_setting_comes_from_its_variable() -> None:
    settings = Settings.from_env({
        "TENANTRY_RESYNC_SECONDS": "30", "TENANTRY_WORKERS": "8", "TENANTRY_METRICS_PORT": "0",
        "TENANTRY_HEALTH_PORT": "8081", "TENANTRY_LOG_LEVEL": "WARNING", "TENANTRY_LOG_FORMAT": "json",
        "TENANTRY_LEASE_SECONDS": "6", "TENANTRY_RENEW_DEADLINE_SECONDS": "4", "TENANTRY_RETRY_SECONDS": "1",
        "TENANTRY_LEADER_ELECTION": "true", "TENANTRY_COMMISSION_RATE": "0.3",
        "TENANTRY_PARTNER_LEVELS": "Start=0,Top=100", "TENANTRY_PLATFORM_DOMAIN": "saas.example",
        "KUBERNETES_SERVICE_HOST": "10.0.0.1", "POD_NAME": "tenantry-0", "TENANTRY_SHARDS": "6",
    })
    process = settings.process
    assert (process.resync_seconds, process.workers, process.metrics_port, process.health_port) == (30, 8, 0, 8081)
    assert (process.log_level, process.log_format) == ("warning", "json")
    assert process.lease == Timing(6, 4, 1) and process.leader_election
    assert process.commission_rate == 0.3 and process.partner_levels == (("Start", 0.0), ("Top", 100.0))
    assert process.in_cluster and process.pod_name == "tenantry-0" and process.shards == 6
    assert settings.operator.platform_domain == "saas.example"


def test_the_older_verbose_switch_means_debug() -> None:
    assert Settings.from_env({"TENANTRY_VERBOSE": "1"}).process.log_level == "debug"
    assert Settings.from_env({"TENANTRY_VERBOSE": "1", "TENANTRY_LOG_LEVEL": "error"}).process.log_level == "error"


@pytest.mark.parametrize(("variable", "value", "hint"), [
    ("TENANTRY_RESYNC_SECONDS", "0", "above 0"),
    ("TENANTRY_RESYNC_SECONDS", "soon", "could not convert"),
    ("TENANTRY_WORKERS", "-1", "from 1 to 10000"),
    ("TENANTRY_METRICS_PORT", "80800", "from 1 to 65535"),
    ("TENANTRY_LOG_LEVEL", "loud", "debug, info, warning, error"),
    ("TENANTRY_LOG_FORMAT", "xml", "text, json"),
    ("TENANTRY_LEADER_ELECTION", "maybe", "true or false"),
    ("TENANTRY_SHARDS", "0", "from 1 to 1024"),
    ("TENANTRY_SHARDS", "two", "from 1 to 1024"),
    ("TENANTRY_COMMISSION_RATE", "20", "from 0 to 1"),
    ("TENANTRY_PARTNER_LEVELS", "Gold", "Name=<monthly revenue>"),
    ("TENANTRY_CONTAINER_MAX", "cpu=lots", "cpu"),
    ("TENANTRY_SMTP_TLS", "ssl", "starttls, tls, none"),
    ("TENANTRY_SMTP_PORT", "smtp", "from 1 to 65535"),
    ("TENANTRY_SMTP_FROM", "Welcome <w@example.com>", "one e-mail address"),
    ("TENANTRY_SMTP_ALLOWED_FROM_DOMAINS", "acme.example,not a domain", "not a domain name"),
    ("TENANTRY_WELCOME_LANGUAGE", "German", "language code"),
])
def test_a_bad_value_names_its_variable(variable: str, value: str, hint: str) -> None:
    with pytest.raises(ValueError) as refused:
        Settings.from_env({variable: value})
    assert f"{variable}={value!r}" in str(refused.value) and hint in str(refused.value)


def test_lease_timings_that_do_not_nest_are_refused() -> None:
    with pytest.raises(ValueError, match="TENANTRY_LEASE_SECONDS"):
        Settings.from_env({"TENANTRY_LEASE_SECONDS": "5", "TENANTRY_RENEW_DEADLINE_SECONDS": "10"})


def test_every_bad_variable_is_named_at_once() -> None:
    with pytest.raises(ValueError) as refused:
        Settings.from_env({"TENANTRY_WORKERS": "none", "TENANTRY_DNS_PROVIDER": "route53",
                           "TENANTRY_PLATFORM_NAMESPACE": "x", "TENANTRY_ROUTE_PORT": "http"})
    message = str(refused.value)
    assert all(name in message for name in ("TENANTRY_WORKERS", "TENANTRY_DNS_PROVIDER", "TENANTRY_ROUTE_PORT"))


def test_smtp_settings_are_checked() -> None:
    assert not Settings.from_env({}).smtp.configured
    smtp = Settings.from_env({"TENANTRY_SMTP_HOST": "smtp.example.com", "TENANTRY_SMTP_FROM": "w@example.com"}).smtp
    assert (smtp.configured, smtp.port, smtp.tls) == (True, 587, "starttls")
    with pytest.raises(ValueError, match="TENANTRY_SMTP_FROM is empty"):
        Settings.from_env({"TENANTRY_SMTP_HOST": "smtp.example.com"})
    with pytest.raises(ValueError, match="clear text"):
        Settings.from_env({"TENANTRY_SMTP_HOST": "smtp.example.com", "TENANTRY_SMTP_FROM": "w@example.com",
                           "TENANTRY_SMTP_TLS": "none", "TENANTRY_SMTP_USERNAME": "u"})


def test_nothing_else_reads_the_environment() -> None:
    readers = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative.startswith(("cli/", "devtools/")) or relative in ("__main__.py", "portal/__main__.py"):
            continue  # the CLI and dev tools are other programs; each main hands the environment to its settings
        if re.search(r"os\.environ|getenv\(", path.read_text()):
            readers.append(relative)
    assert readers == [], f"modules reading the environment themselves: {readers}"
