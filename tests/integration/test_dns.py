"""DNS records and verified custom domains, against a real BIND 9 and the real control plane.

The operator runs with TENANTRY_DNS_PROVIDER=rfc2136 against a BIND started here on a loopback
port (authoritative for the platform zone and the customers' zones, TSIG-signed updates), and
verifies custom domains through that same BIND as its resolver.

Tested here:
- a tenant's record and its owner mark are published; cancelling and deleting withdraw them
- a foreign record at a tenant's name is left alone and reported (DNSConflict)
- a wrong TSIG key is reported (TSIGRejected) and recovers with the right one
- a BIND outage: DNSReady=False while everything else is served; converges when BIND returns
- BIND stopped halfway through onboarding 50 tenants: everything but DNS is provisioned, DNSReady
  says DNSUnavailable, and every record is published once BIND is back
- custom domain pending -> verified -> Ingress + Certificate; CNAME removed -> failing, route kept
  (the grace period is an hour) -> the failure back-dated past the grace in the status the
  operator reads it from (the clock moved on, without waiting) -> withdrawn
- a domain claimed by a tenant of another partner is refused without naming the holder
- with a short claim TTL: a verified domain's claim is marked and kept, a never-verified one of the
  same tenant expires (claim released, status says how to claim it again)
- with a limit of one unverified domain per partner: the second domain waits over the limit, and the
  pass that verifies the first marks its claim before it claims the second (the status showing the
  first verified already lists the second's records, never "not claimed")
- the external-dns provider writes a DNSEndpoint
- an unknown DNS provider stops the operator at start, with an error that names the variable
"""

from __future__ import annotations

import datetime
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from lightkube.types import PatchType

from tenantry.adapters.kube import Tenant
from tenantry.domain import dns
from tests.integration.bind import KEY_NAME, Bind
from tests.integration.fixtures import ClusterHandle, OperatorProcess, Partner, stand_in_crd, wait_for

pytestmark = pytest.mark.integration

ZONE = "platform.test"
CUSTOMER_ZONES = ("mustermann.de", "kunde-beispiel.de")
GRACE_SECONDS = 3600  # never runs out by itself within a test: see _back_date_failure

# Stand-ins for cert-manager's and external-dns's CRDs (the real ones cannot be downloaded here).
EXTRA_CRDS = [stand_in_crd("cert-manager.io", "v1", "Certificate", "certificates"),
              stand_in_crd("externaldns.k8s.io", "v1alpha1", "DNSEndpoint", "dnsendpoints")]


@pytest.fixture(scope="module")
def bind(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bind]:
    server = Bind(Path(tmp_path_factory.mktemp("bind")), (ZONE, *CUSTOMER_ZONES))
    server.start()
    yield server
    server.stop()


def dns_env(bind: Bind, secret: str | None = None, provider: str = "rfc2136") -> dict[str, str]:
    return {"TENANTRY_DNS_PROVIDER": provider, "TENANTRY_DNS_TARGET": f"ingress.{ZONE}",
            "TENANTRY_RFC2136_SERVER": f"127.0.0.1:{bind.port}", "TENANTRY_RFC2136_ZONE": ZONE,
            "TENANTRY_RFC2136_TSIG_NAME": KEY_NAME, "TENANTRY_RFC2136_TSIG_SECRET": secret or bind.secret,
            "TENANTRY_RESOLVER": f"127.0.0.1:{bind.port}", "TENANTRY_DNS_CHECK_SECONDS": "1",
            "TENANTRY_DOMAIN_RETRY_SECONDS": "1", "TENANTRY_DOMAIN_RECHECK_SECONDS": "1",
            "TENANTRY_DOMAIN_GRACE_SECONDS": str(GRACE_SECONDS), "TENANTRY_PLATFORM_DOMAIN": ZONE}


@pytest.fixture(scope="module", autouse=True)
def dns_operator(bind: Bind, operator: OperatorProcess, cluster: ClusterHandle) -> Iterator[OperatorProcess]:
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(EXTRA_CRDS))
    cluster.kubectl("wait", "--for=condition=Established", "crd/certificates.cert-manager.io",
                    "crd/dnsendpoints.externaldns.k8s.io", "--timeout=60s")
    operator.restart_with(dns_env(bind))
    yield operator
    operator.restart_with({})


def host(slug: str) -> str:
    return f"{slug}.{ZONE}"


def test_records_published_withdrawn_and_deleted(partner: Partner, bind: Bind) -> None:
    slug = partner.slug("dns")
    partner.apply(partner.tenant(slug))
    cond = partner.wait_condition(slug, reason="Published", kind="DNSReady")
    assert f"ingress.{ZONE}" in cond["message"]
    assert bind.lookup(host(slug), "CNAME") == [f"ingress.{ZONE}"]
    mark = bind.lookup(f"_tenantry-owner.{host(slug)}", "TXT")
    assert mark == [f"heritage=tenantry,owner=tenantry,tenant={partner.namespace}/{slug}"]
    partner.apply(partner.tenant(slug, state="Cancelled"))
    partner.wait_condition(slug, reason="Withdrawn", kind="DNSReady")
    assert bind.lookup(host(slug), "CNAME") == []
    partner.apply(partner.tenant(slug))
    wait_for(lambda: bind.lookup(host(slug), "CNAME") == [f"ingress.{ZONE}"], what="record back")
    partner.delete(slug)
    assert bind.lookup(host(slug), "CNAME") == [] and bind.lookup(f"_tenantry-owner.{host(slug)}", "TXT") == []


def test_foreign_record_is_left_alone_and_reported(partner: Partner, bind: Bind, operator: OperatorProcess) -> None:
    slug = partner.slug("taken")
    bind.update(ZONE, host(slug), "A", "198.51.100.7")
    partner.apply(partner.tenant(slug))
    cond = partner.wait_condition(slug, status="False", reason="DNSConflict", kind="DNSReady")
    assert host(slug) in cond["message"] and "left alone" in cond["message"]
    partner.wait_condition(slug, status="False", reason="DNSConflict")
    assert operator.metric("tenantry_dns_conflict", tenant=slug) == 1
    partner.delete(slug)
    assert bind.lookup(host(slug), "A") == ["198.51.100.7"]
    wait_for(lambda: "tenant=\"" + slug not in operator.metrics_text(), what="the deleted tenant's series gone")


def test_wrong_tsig_key_is_reported_then_recovers(partner: Partner, bind: Bind, operator: OperatorProcess) -> None:
    operator.restart_with(dns_env(bind, secret="d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldC13cm9uZw=="))
    try:
        slug = partner.slug("tsig")
        partner.apply(partner.tenant(slug))
        cond = partner.wait_condition(slug, status="False", reason="TSIGRejected", kind="DNSReady")
        assert KEY_NAME in cond["message"] or "TSIG" in cond["message"]
        partner.wait_condition(slug, kind="NamespaceReady")  # everything else is served
    finally:
        operator.restart_with(dns_env(bind))
    partner.wait_condition(slug, reason="Published", kind="DNSReady", timeout=30)


def test_dns_outage_converges_when_bind_returns(partner: Partner, bind: Bind) -> None:
    bind.stop()
    try:
        slug = partner.slug("outage")
        partner.apply(partner.tenant(slug))
        cond = partner.wait_condition(slug, status="False", reason="DNSUnavailable", kind="DNSReady", timeout=60)
        assert "does not answer" in cond["message"]
        partner.wait_condition(slug, kind="NamespaceReady")
    finally:
        bind.start()
    partner.wait_condition(slug, reason="Published", kind="DNSReady", timeout=60)
    partner.wait_condition(slug)
    assert bind.lookup(host(slug), "CNAME") == [f"ingress.{ZONE}"]


def test_dns_outage_during_bulk_onboarding(partner: Partner, bind: Bind, cluster: ClusterHandle) -> None:
    slugs = [partner.slug(f"bulk-dns{i}") for i in range(50)]
    manifests = [partner.tenant(s) for s in slugs]
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(manifests[:25]))
    bind.stop()  # the DNS server goes away halfway through the onboarding
    started = time.monotonic()
    try:
        cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(manifests[25:]))
        # Everything but DNS is provisioned meanwhile, for every tenant.
        for slug in slugs:
            partner.wait_condition(slug, kind="NamespaceReady", timeout=120)
        unavailable = sum(partner.condition(s, "DNSReady").get("reason") == "DNSUnavailable" for s in slugs)
        assert unavailable >= 25, unavailable
    finally:
        bind.start()
    for slug in slugs:
        partner.wait_condition(slug, reason="Published", kind="DNSReady", timeout=180)
    converged = time.monotonic() - started
    missing = [s for s in slugs if bind.lookup(host(s), "CNAME") != [f"ingress.{ZONE}"]]
    assert missing == []
    print(f"DNS outage during onboarding of {len(slugs)} tenants: {unavailable} reported DNSUnavailable; "
          f"all records published {converged:.0f} s after the outage began")


def _entry(partner: Partner, slug: str, domain: str) -> dict:
    body = partner.get(slug) or {}
    return next((d for d in (body.get("status") or {}).get("domains", []) if d["name"] == domain), {})


def _prove(bind: Bind, partner: Partner, slug: str, domain: str) -> None:
    """The customer creates the two records the status lists for `domain` (in kunde-beispiel.de)."""
    entry = wait_for(lambda: _entry(partner, slug, domain).get("records") and _entry(partner, slug, domain),
                     what="instructions in the status")
    token = next(r["value"] for r in entry["records"] if r["type"] == "TXT")
    bind.update("kunde-beispiel.de", domain, "CNAME", host(slug) + ".")
    bind.update("kunde-beispiel.de", f"{dns.CHALLENGE_PREFIX}{domain}", "TXT", f'"{token}"')


def _unprove(bind: Bind, domain: str) -> None:
    bind.update("kunde-beispiel.de", domain, "CNAME")
    bind.update("kunde-beispiel.de", f"{dns.CHALLENGE_PREFIX}{domain}", "TXT")


def _routes(cluster: ClusterHandle, slug: str) -> tuple[list[str], list[str]]:
    ns = f"tenant-{slug}"
    ingress = cluster.kubectl("get", "ingress", "tenantry-domains", "-n", ns, "-o", "json", check=False)
    hosts = [r["host"] for r in json.loads(ingress.stdout)["spec"]["rules"]] if ingress.returncode == 0 else []
    certs = cluster.kubectl("get", "certificates.cert-manager.io", "-n", ns, "-o", "json").stdout
    names = [d for c in json.loads(certs)["items"] for d in c["spec"]["dnsNames"]]
    return hosts, names


LONG_AGO = dns.iso(datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC))


def _back_date_failure(partner: Partner, slug: str, domain: str) -> None:
    """Move the start of a domain's failing re-verification back past the grace period.

    The operator reads when the failure began from the status it wrote (failingSince): this is the
    grace period running out, without a test that races a short grace against its own polls.
    """
    domains = ((partner.get(slug) or {}).get("status") or {}).get("domains", [])
    entry = next((d for d in domains if d["name"] == domain), {})
    if entry.get("failingSince") not in (None, LONG_AGO):
        entry["failingSince"] = LONG_AGO
        partner.cluster.client.patch(Tenant.Status, slug, {"status": {"domains": domains}},
                                     namespace=partner.namespace, patch_type=PatchType.MERGE)


def test_custom_domain_pending_verified_routed_then_withdrawn(partner: Partner, bind: Bind,
                                                              cluster: ClusterHandle) -> None:
    slug, domain = partner.slug("custom"), "ki.mustermann.de"
    partner.apply(partner.tenant(slug, domains=[domain]))
    entry = wait_for(lambda: _entry(partner, slug, domain).get("records") and _entry(partner, slug, domain),
                     what="instructions in the status")
    assert not entry["verified"] and "pending" in entry["message"]
    records = {r["type"]: r for r in entry["records"]}
    assert records["CNAME"] == {"type": "CNAME", "name": domain, "value": host(slug)}
    assert records["TXT"]["name"] == f"_tenantry-challenge.{domain}"
    assert _routes(cluster, slug) == ([], [])  # never before verification
    partner.wait_condition(slug, status="False", reason="DomainsPending", kind="DomainsVerified")
    partner.wait_condition(slug)  # a pending custom domain does not make the tenant un-Ready

    bind.update("mustermann.de", domain, "CNAME", host(slug) + ".")
    bind.update("mustermann.de", f"_tenantry-challenge.{domain}", "TXT", f'"{records["TXT"]["value"]}"')
    partner.wait_condition(slug, reason="Verified", kind="DomainsVerified", timeout=60)
    wait_for(lambda: _routes(cluster, slug) == ([domain], [domain]), what="Ingress and Certificate")

    bind.update("mustermann.de", domain, "CNAME")  # the customer removes the CNAME
    failing = wait_for(lambda: _entry(partner, slug, domain).get("failingSince") and _entry(partner, slug, domain),
                       timeout=30, what="re-verification failing")
    assert failing["verified"] and "grace" in failing["message"]
    assert _routes(cluster, slug)[0] == [domain]  # kept during the grace period
    _back_date_failure(partner, slug, domain)

    def withdrawn() -> bool:
        if _entry(partner, slug, domain).get("verified"):
            _back_date_failure(partner, slug, domain)  # again, if a pass wrote its own over it meanwhile
            return False
        return True
    wait_for(withdrawn, timeout=60, what="route withdrawn after the grace period")
    assert "withdrawn" in _entry(partner, slug, domain)["message"]
    wait_for(lambda: _routes(cluster, slug) == ([], []), timeout=30, what="Ingress and Certificate removed")
    bind.update("mustermann.de", f"_tenantry-challenge.{domain}", "TXT")


def test_domain_claimed_by_another_partner_is_refused(partner: Partner, other_partner: Partner) -> None:
    first, second, domain = partner.slug("first"), other_partner.slug("second"), "shop.kunde-beispiel.de"
    partner.apply(partner.tenant(first, domains=[domain]))
    wait_for(lambda: _entry(partner, first, domain).get("records"), what="first claim")
    other_partner.apply(other_partner.tenant(second, domains=[domain]))
    cond = other_partner.wait_condition(second, status="False", reason="DomainConflict", kind="DomainsVerified")
    entry = _entry(other_partner, second, domain)
    assert "is not available on this platform" in entry["message"] and first not in entry["message"]
    assert partner.namespace not in cond["message"]
    # The first tenant gives the domain up: now the second may claim it.
    partner.apply(partner.tenant(first, domains=[]))
    other_partner.wait_condition(second, status="False", reason="DomainsPending", kind="DomainsVerified", timeout=60)


def test_platform_and_public_suffix_domains_are_refused(partner: Partner) -> None:
    slug = partner.slug("badomain")
    partner.apply(partner.tenant(slug, domains=[f"shop.{ZONE}", "co.uk"]))
    cond = partner.wait_condition(slug, status="False", reason="InvalidDomain", kind="DomainsVerified")
    assert "invalid" in cond["message"]
    assert "platform domain" in _entry(partner, slug, f"shop.{ZONE}")["message"]
    assert "public suffix" in _entry(partner, slug, "co.uk")["message"]


def test_a_domain_verified_in_a_pass_frees_its_place_for_the_next(partner: Partner, bind: Bind,
                                                                    operator: OperatorProcess) -> None:
    slug, first, second = partner.slug("order"), "eins.kunde-beispiel.de", "zwei.kunde-beispiel.de"
    operator.restart_with({**dns_env(bind), "TENANTRY_MAX_PENDING_DOMAINS": "1"})
    try:
        partner.apply(partner.tenant(slug, domains=[first, second]))
        wait_for(lambda: _entry(partner, slug, first).get("records"), what="instructions in the status")
        assert _entry(partner, slug, second)["message"].startswith("not claimed: your tenants already hold 1 ")
        _prove(bind, partner, slug, first)

        def first_verified() -> dict | None:
            domains = {d["name"]: d for d in ((partner.get(slug) or {}).get("status") or {}).get("domains", [])}
            return domains if domains.get(first, {}).get("verified") else None
        domains = wait_for(first_verified, timeout=60, what=f"{first} verified")
        assert domains[second]["records"], domains[second]  # claimed in that same pass
        assert not domains[second]["message"].startswith("not claimed"), domains[second]
    finally:
        _unprove(bind, first)
        operator.restart_with(dns_env(bind))


def test_external_dns_provider_writes_a_dns_endpoint(partner: Partner, bind: Bind, operator: OperatorProcess,
                                                     cluster: ClusterHandle) -> None:
    operator.restart_with(dns_env(bind, provider="externaldns"))
    try:
        slug = partner.slug("extdns")
        partner.apply(partner.tenant(slug))
        partner.wait_condition(slug, reason="Published", kind="DNSReady")
        endpoint = json.loads(cluster.kubectl("get", "dnsendpoints.externaldns.k8s.io", "tenantry-dns", "-n",
                                              f"tenant-{slug}", "-o", "json").stdout)
        endpoints = {e["dnsName"]: e for e in endpoint["spec"]["endpoints"]}
        assert endpoints[host(slug)] == {"dnsName": host(slug), "recordType": "CNAME",
                                         "targets": [f"ingress.{ZONE}"], "recordTTL": 300}
        assert endpoints[f"_tenantry-owner.{host(slug)}"]["recordType"] == "TXT"
        # Deleted with Retain: the namespace stays, the published name does not.
        partner.delete(slug)
        gone = cluster.kubectl("get", "dnsendpoints.externaldns.k8s.io", "tenantry-dns", "-n", f"tenant-{slug}",
                               check=False)
        assert gone.returncode != 0 and "NotFound" in gone.stderr
    finally:
        operator.restart_with(dns_env(bind))


def test_an_unknown_provider_is_refused_at_start(bind: Bind, operator: OperatorProcess, tmp_path: Path) -> None:
    log = tmp_path / "refused.log"
    refused = OperatorProcess(operator.kubeconfig, log, extra_env={**dns_env(bind), "TENANTRY_DNS_PROVIDER": "route53"})
    # Exit code 2: a setting that does not parse (Settings.from_env, before anything starts).
    with pytest.raises(AssertionError, match="operator exited with 2"):
        refused.start()  # waits for it to lead; it exits first
    assert "TENANTRY_DNS_PROVIDER='route53': use none, rfc2136, externaldns" in log.read_text()


def test_verified_claim_is_kept_and_a_pending_one_expires(partner: Partner, bind: Bind, cluster: ClusterHandle,
                                                          operator: OperatorProcess) -> None:
    def claim(domain: str) -> dict | None:
        result = cluster.kubectl("get", "secret", dns.claim_name(domain), "-n", "tenantry-system", "-o", "json",
                                 check=False)
        return json.loads(result.stdout) if result.returncode == 0 else None

    slug, proven, idle = partner.slug("ttl"), "app.kunde-beispiel.de", "idle.kunde-beispiel.de"
    operator.restart_with({**dns_env(bind), "TENANTRY_DOMAIN_CLAIM_TTL_SECONDS": "15"})
    try:
        partner.apply(partner.tenant(slug, domains=[proven, idle]))
        _prove(bind, partner, slug, proven)
        kept = wait_for(lambda: (claim(proven) or {}).get("metadata", {}).get("annotations", {})
                        .get("tenantry.dev/verified-at") and claim(proven), timeout=60, what="the verified mark")
        wait_for(lambda: claim(idle) is None, timeout=90, what="the idle claim to expire")
        assert _entry(partner, slug, idle).get("expiredAt") or \
            wait_for(lambda: _entry(partner, slug, idle).get("expiredAt"), what="the expiry in the status")
        assert (claim(proven) or {})["metadata"]["uid"] == kept["metadata"]["uid"]
        assert _entry(partner, slug, proven)["verified"] is True
        assert _routes(cluster, slug)[0] == [proven]
    finally:
        _unprove(bind, proven)
        operator.restart_with(dns_env(bind))
