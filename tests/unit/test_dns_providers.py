"""DNS settings and the DNS provider chosen from them, once (no server needed; a closed loopback port
stands for a DNS server that is down).

Tested here:
- DnsSettings.from_env: defaults; each provider; the RFC 2136 zone defaults to the platform domain;
  every refusal names the variable (unknown provider, missing RFC 2136 settings, a bad server,
  TSIG secret or algorithm, resolver, re-check and retry seconds), and never echoes the secret
- host[:port] forms (a name, IPv4, bare IPv6, [IPv6]:port), the DNS port by default
- make_dns_services builds the provider the settings name (none, externaldns, rfc2136 with its
  server and zone) and the resolver; the provider table covers exactly the providers the settings
  accept, which are the chart's (as are the TSIG algorithms); a provider the table does not know is
  refused
- the reconcile never chooses: no handler module names a provider or compares one; platform_records
  and remove_records go through the provider the services hold (none: NotManaged without a write)
- a DNS server failure from the provider becomes DNSReady=False with its reason, and the next pass
  within the back-off reports it again without a request
- the DNSReady verdict for each kind of publication (not managed, conflict, withdrawn, published
  directly or handed to external-dns)
"""

from __future__ import annotations

import ast
import asyncio
import base64
import json
from pathlib import Path

import pytest

from tenantry.adapters.dns import Rfc2136Zone
from tenantry.adapters.dnsproviders import (
    PROVIDERS,
    ExternalDns,
    NoDns,
    PlatformName,
    Publication,
    Rfc2136,
    make_dns_provider,
)
from tenantry.api.tenant import TenantSpec
from tenantry.domain.children import TenantInput
from tenantry.domain.config import (
    DNS_PROVIDERS,
    TSIG_ALGORITHMS,
    DnsSettings,
    OperatorConfig,
    Rfc2136Settings,
    parse_host_port,
)
from tenantry.domain.status import Verdict
from tenantry.handlers import dnsflow
from tenantry.handlers.writer import Writer
from tests.integration.net import free_port
from tests.unit.chart import CHART

DOMAIN = "platform.test"
SECRET = base64.b64encode(b"a TSIG secret of 32 bytes length").decode()
RFC2136 = {"TENANTRY_DNS_PROVIDER": "rfc2136", "TENANTRY_RFC2136_SERVER": "192.0.2.53:5353",
           "TENANTRY_RFC2136_TSIG_NAME": "tenantry-key", "TENANTRY_RFC2136_TSIG_SECRET": SECRET}
HANDLERS = Path(dnsflow.__file__).parent


def settings(**env: str) -> DnsSettings:
    return DnsSettings.from_env(env, DOMAIN)


def test_defaults_manage_no_dns() -> None:
    assert settings() == DnsSettings(provider="none", rfc2136=None, resolver=None, recheck_seconds=3600.0,
                                     first_retry_seconds=10.0)
    assert settings(TENANTRY_DNS_PROVIDER="") == DnsSettings()  # the chart leaves nothing empty; be lenient


def test_rfc2136_settings_and_their_defaults() -> None:
    parsed = DnsSettings.from_env(RFC2136, DOMAIN)
    assert parsed.rfc2136 == Rfc2136Settings(("192.0.2.53", 5353), DOMAIN, "tenantry-key", SECRET, "hmac-sha256")
    zone = DnsSettings.from_env({**RFC2136, "TENANTRY_RFC2136_ZONE": "saas.example.", "TENANTRY_RFC2136_TSIG_ALGORITHM":
                                 "hmac-sha512"}, DOMAIN).rfc2136
    assert zone is not None and (zone.zone, zone.tsig_algorithm) == ("saas.example", "hmac-sha512")
    assert SECRET not in repr(parsed)


def test_other_providers_need_no_rfc2136_settings() -> None:
    assert settings(TENANTRY_DNS_PROVIDER="externaldns") == DnsSettings(provider="externaldns")
    # Left-over RFC 2136 variables do not make another provider talk to a zone.
    assert DnsSettings.from_env({**RFC2136, "TENANTRY_DNS_PROVIDER": "none"}, DOMAIN).rfc2136 is None


def test_resolver_and_check_intervals() -> None:
    parsed = settings(TENANTRY_RESOLVER="127.0.0.1:5300", TENANTRY_DOMAIN_RECHECK_SECONDS="60",
                      TENANTRY_DOMAIN_RETRY_SECONDS="0.5")
    assert (parsed.resolver, parsed.recheck_seconds, parsed.first_retry_seconds) == (("127.0.0.1", 5300), 60, 0.5)


@pytest.mark.parametrize(("env", "message"), [
    ({"TENANTRY_DNS_PROVIDER": "route53"}, "TENANTRY_DNS_PROVIDER='route53': use none, rfc2136, externaldns"),
    ({"TENANTRY_DNS_PROVIDER": "rfc2136"}, "TENANTRY_DNS_PROVIDER=rfc2136 needs TENANTRY_RFC2136_SERVER, "
                                           "TENANTRY_RFC2136_TSIG_NAME, TENANTRY_RFC2136_TSIG_SECRET"),
    ({**RFC2136, "TENANTRY_RFC2136_TSIG_NAME": ""}, "TENANTRY_DNS_PROVIDER=rfc2136 needs TENANTRY_RFC2136_TSIG_NAME$"),
    ({**RFC2136, "TENANTRY_RFC2136_SERVER": "ns1:dns"}, "TENANTRY_RFC2136_SERVER='ns1:dns': give host or host:port"),
    ({**RFC2136, "TENANTRY_RFC2136_TSIG_ALGORITHM": "sha256"}, "TENANTRY_RFC2136_TSIG_ALGORITHM='sha256': use one "
                                                               "of hmac-md5"),
    ({"TENANTRY_RESOLVER": "127.0.0.1:0"}, "TENANTRY_RESOLVER='127.0.0.1:0': give host or host:port"),
    ({"TENANTRY_DOMAIN_RECHECK_SECONDS": "0"}, "TENANTRY_DOMAIN_RECHECK_SECONDS='0': give a number of seconds"),
    ({"TENANTRY_DOMAIN_RETRY_SECONDS": "soon"}, "TENANTRY_DOMAIN_RETRY_SECONDS='soon': could not convert"),
])
def test_refusals_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace("[", r"\[")):
        DnsSettings.from_env(env, DOMAIN)


def test_a_bad_tsig_secret_is_refused_without_showing_it() -> None:
    with pytest.raises(ValueError, match="TENANTRY_RFC2136_TSIG_SECRET is not base64") as refused:
        DnsSettings.from_env({**RFC2136, "TENANTRY_RFC2136_TSIG_SECRET": "not base64!"}, DOMAIN)
    assert "not base64!" not in str(refused.value)


@pytest.mark.parametrize(("text", "parsed"), [
    ("ns1.example.com", ("ns1.example.com", 53)), ("192.0.2.1:5353", ("192.0.2.1", 5353)),
    ("::1", ("::1", 53)), ("[::1]:5353", ("::1", 5353)), ("[2001:db8::1]", ("2001:db8::1", 53)),
])
def test_host_and_port(text: str, parsed: tuple[str, int]) -> None:
    assert parse_host_port(text) == parsed


@pytest.mark.parametrize("text", [":53", "ns1:", "ns1:65536", "[::1]:x", ""])
def test_host_and_port_refused(text: str) -> None:
    with pytest.raises(ValueError, match="host:port"):
        parse_host_port(text)


def test_the_settings_choose_the_provider() -> None:
    assert isinstance(dnsflow.make_dns_services(settings()).provider, NoDns)
    assert isinstance(dnsflow.make_dns_services(settings(TENANTRY_DNS_PROVIDER="externaldns")).provider, ExternalDns)
    services = dnsflow.make_dns_services(DnsSettings.from_env({**RFC2136, "TENANTRY_DOMAIN_RETRY_SECONDS": "2"},
                                                              DOMAIN))
    assert isinstance(services.provider, Rfc2136)
    zone = services.provider.zone
    assert (zone.server, zone.port, zone.zone, zone.key_name.to_text()) == ("192.0.2.53", 5353, DOMAIN,
                                                                            "tenantry-key.")
    assert (services.recheck_seconds, services.first_retry_seconds) == (3600.0, 2.0)


def test_every_accepted_provider_has_an_implementation_and_no_other() -> None:
    assert set(PROVIDERS) == set(DNS_PROVIDERS)
    chart = json.loads((CHART / "values.schema.json").read_text())["properties"]["operator"]["properties"]["dns"]
    assert tuple(chart["properties"]["provider"]["enum"]) == DNS_PROVIDERS
    assert tuple(chart["properties"]["rfc2136"]["properties"]["tsigAlgorithm"]["enum"]) == TSIG_ALGORITHMS
    with pytest.raises(ValueError, match="TENANTRY_DNS_PROVIDER='route53': use none"):
        make_dns_provider(DnsSettings(provider="route53"))
    with pytest.raises(ValueError, match="rfc2136 without its server settings"):
        make_dns_provider(DnsSettings(provider="rfc2136"))


def _provider_choices(tree: ast.AST) -> list[str]:
    """Provider names written in the code, and comparisons of anything called *provider*."""
    found = [f"{node.lineno}: {node.value!r}" for node in ast.walk(tree)
             if isinstance(node, ast.Constant) and node.value in DNS_PROVIDERS]
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            names = [n.attr if isinstance(n, ast.Attribute) else getattr(n, "id", "")
                     for n in [node.left, *node.comparators]]
            found += [f"{node.lineno}: compares {name}" for name in names if "provider" in name]
    return found


def test_no_handler_chooses_a_provider() -> None:
    chosen = {path.name: found for path in HANDLERS.glob("*.py")
              if (found := _provider_choices(ast.parse(path.read_text())))}
    assert chosen == {}
    # The check itself sees the comparisons dnsflow used to make.
    assert _provider_choices(ast.parse('if config.dns_provider == "externaldns": pass')) == [
        "1: 'externaldns'", "1: compares dns_provider"]


def _tenant(state: str = "Active") -> TenantInput:
    spec = TenantSpec.model_validate({"company": "Mustermann GmbH", "contact": {"name": "Max", "email": "max@m.de"},
                                      "plan": {"featureSet": "business", "seats": 5}, "state": state})
    return TenantInput("mustermann", "partner-acme", "acme", spec, None, None)


def test_no_dns_provider_through_the_reconcile_path() -> None:
    services = dnsflow.make_dns_services(settings())
    # No write and no read: a writer without an API client would fail on any request.
    writer = Writer(None)  # type: ignore[arg-type]
    verdict = asyncio.run(dnsflow.platform_records(writer, services, _tenant(), OperatorConfig(platform_domain=DOMAIN),
                                                   "tenant-mustermann"))
    assert (verdict.status, verdict.reason) == ("True", "NotManaged")
    asyncio.run(dnsflow.remove_records(writer, services, OperatorConfig(), "partner-acme", "mustermann"))
    assert writer.count == 0


def test_a_failing_zone_backs_off() -> None:
    # A loopback port nobody listens on: the zone's queries go unanswered.
    provider = Rfc2136(Rfc2136Zone("127.0.0.1", free_port(), DOMAIN, "tenantry-key", SECRET, timeout=0.3))
    services = dnsflow.DnsServices(provider, dnsflow.Resolver(), first_retry_seconds=60)
    config, writer = OperatorConfig(platform_domain=DOMAIN), Writer(None)  # type: ignore[arg-type]
    key = ("partner-acme", "mustermann")

    async def two_passes() -> tuple[Verdict, float, Verdict]:
        first = await dnsflow.platform_records(writer, services, _tenant(), config, "tenant-mustermann")
        retry_at = services.failures[key][0]
        return first, retry_at, await dnsflow.platform_records(writer, services, _tenant(), config,
                                                               "tenant-mustermann")

    first, retry_at, second = asyncio.run(two_passes())
    assert (first.status, first.reason) == ("False", "DNSUnavailable")
    assert "does not answer" in first.message and "retrying with back-off" in first.message
    # Reported from memory, with the back-off unchanged: the second pass made no request.
    assert second is first and services.failures[key][:2] == (retry_at, 60) and writer.count == 0


HOST = f"mustermann.{DOMAIN}"


@pytest.mark.parametrize(("published", "withdrawn", "expected"), [
    (Publication(managed=False), False, ("True", "NotManaged", "DNS is not managed by tenantry")),
    (Publication(conflicts=(HOST,)), False, ("False", "DNSConflict", f"{HOST} already has records that tenantry")),
    (Publication(), True, ("True", "Withdrawn", f"{HOST} withdrawn (tenant cancelled)")),
    (Publication(), False, ("True", "Published", f"{HOST} -> ingress.{DOMAIN}")),
    (Publication(handed_to="external-dns (DNSEndpoint tenantry-dns)"), False,
     ("True", "Published", f"{HOST} handed to external-dns (DNSEndpoint tenantry-dns)")),
])
def test_verdict_of_a_publication(published: Publication, withdrawn: bool, expected: tuple[str, str, str]) -> None:
    verdict = dnsflow.dns_verdict(published, HOST, f"ingress.{DOMAIN}", withdrawn)
    assert (verdict.type, verdict.status, verdict.reason) == ("DNSReady", *expected[:2])
    assert verdict.message.startswith(expected[2])


def test_platform_name_of_a_tenant() -> None:
    config = OperatorConfig(platform_domain=DOMAIN, dns_owner_id="tenantry-prod")
    assert dnsflow._platform_name(config, "partner-acme", "mustermann", "tenant-mustermann") == PlatformName(
        HOST, "tenant-mustermann", "partner-acme/mustermann", "tenantry-prod")


def test_what_is_remembered_of_a_tenants_domains_goes_with_them() -> None:
    """Tenants and custom domains that come and go cost no memory for good (a concurrency review,
    3 Dec: the next checks and failures of every tenant ever seen were kept)."""
    from tenantry.handlers.dnsflow import DnsServices
    services = DnsServices(None, None)  # type: ignore[arg-type]
    gone, kept = ("partner-p", "gone"), ("partner-p", "kept")
    for tenant in (gone, kept):
        for domain in ("a.example", "b.example"):
            services.checked((tenant, domain), verified=False)
        services.failed(tenant, None)  # type: ignore[arg-type]
    assert not services.due((kept, "a.example"))
    services.forget(kept, keep=["a.example"])  # b.example dropped from the spec
    services.forget(gone)  # the Tenant deleted
    assert services.next_check == {kept: {"a.example": services.next_check[kept]["a.example"]}}
    assert list(services.failures) == [kept] and not services.due((kept, "a.example"))
    assert services.due((kept, "b.example")) and services.due((gone, "a.example"))
