"""Claims without proof, and an oracle: slugs and custom domains, as a partner's own ServiceAccount.

The webhook runs as the chart configures it (tests/integration/test_admission.py), the partners
are two chart-made partners acting with their real ServiceAccount tokens.

Attacks covered:
- partner B probes with `kubectl create --dry-run=server` whether partner A holds a slug: the
  answer for A's slug and for a reserved slug (built-in `status`, configured `claims-reserved-*`)
  is byte-identical but for the name, names no holder, and nothing is stored
- the same probe for a custom domain: A's claimed domain and a reserved domain
  (TENANTRY_RESERVED_DOMAINS) get byte-identical answers
- a partner holding a custom domain without ever verifying it: with a short claim TTL the claim
  Secret is released, A's status says the claim expired and how to claim it again, A does not
  silently re-claim it, and partner B can then claim the domain (A re-adding it is refused)
- a partner claiming domains in bulk: over the platform's cap of pending claims (counted across
  its tenants) a domain is not claimed (no Secret), the status says why, and it is claimed once a
  pending one is removed
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import yaml

from tenantry.devtools import localwebhook
from tenantry.domain import dns
from tests.integration.fixtures import PLATFORM_NAMESPACE, ChartPartner, ClusterHandle, OperatorProcess, wait_for
from tests.integration.net import free_port
from tests.integration.test_admission import _configuration

pytestmark = pytest.mark.integration

RESERVED_DOMAIN = "platform-corp-claims.de"


@pytest.fixture(scope="module")
def run_with(cluster: ClusterHandle, operator: OperatorProcess, chart_partners: tuple[ChartPartner, ChartPartner],
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[dict[str, str]], None]]:
    """The operator serving the chart's webhook; call it to restart with more settings."""
    folder = tmp_path_factory.mktemp("claims-tls")
    ca = localwebhook.serving_certificate(folder)
    port = free_port()
    alpha, _ = chart_partners
    base = {"TENANTRY_WEBHOOK_PORT": str(port), "TENANTRY_WEBHOOK_ADDRESS": "127.0.0.1",
            "TENANTRY_WEBHOOK_CERT_DIR": str(folder), "TENANTRY_RESERVED_DOMAINS": RESERVED_DOMAIN,
            "TENANTRY_RESERVED_SLUGS": f"claims-reserved-{alpha.suffix}"}

    def restart(extra: dict[str, str]) -> None:
        operator.restart_with({**base, **extra})

    restart({})
    config = _configuration(f"https://127.0.0.1:{port}", ca, name="tenantry-claims-test")
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(config))
    probe = alpha.tenant("probe-claims", features={"no-such-feature": {"enabled": True}})
    wait_for(lambda: "admission webhook" in alpha.kubectl("create", "--dry-run=server", "-f", "-",
                                                          input=yaml.safe_dump(probe)).stderr,
             timeout=60, what="the webhook to answer")
    yield restart
    cluster.kubectl("delete", localwebhook.KINDS, "tenantry-claims-test", "--ignore-not-found")
    operator.restart_with({})


def _probe(partner: ChartPartner, manifest: dict[str, Any]) -> str:
    """A dry-run create as the partner: the refusal it reads."""
    result = partner.kubectl("create", "--dry-run=server", "-f", "-", input=yaml.safe_dump(manifest))
    assert result.returncode != 0, f"accepted: {result.stdout}"
    assert "denied the request" in result.stderr, result.stderr
    return result.stderr


def _claim(cluster: ClusterHandle, domain: str) -> dict[str, Any] | None:
    result = cluster.kubectl("get", "secret", dns.claim_name(domain), "-n", PLATFORM_NAMESPACE, "-o", "yaml",
                             check=False)
    return yaml.safe_load(result.stdout) if result.returncode == 0 else None


def _entry(partner: ChartPartner, slug: str, domain: str) -> dict[str, Any]:
    status = (partner.get(slug) or {}).get("status") or {}
    return next((d for d in status.get("domains", []) if d["name"] == domain), {})


def test_taken_and_reserved_slugs_get_the_same_answer(run_with: Callable, cluster: ClusterHandle,
                                                      chart_partners: tuple[ChartPartner, ChartPartner]) -> None:
    alpha, bravo = chart_partners
    held = alpha.slug("claims-held")
    assert alpha.apply_as_partner(alpha.tenant(held)).returncode == 0
    alpha.wait_condition(held, "True", "Provisioned")
    answers = {name: _probe(bravo, bravo.tenant(name)).replace(name, "NAME")
               for name in (held, "status", f"claims-reserved-{alpha.suffix}")}
    assert len(set(answers.values())) == 1, answers
    answer = answers[held]
    assert "tenant name 'NAME' is not available on this platform" in answer
    for leak in (alpha.namespace, alpha.namespace.removeprefix("partner-"), "reserved for", "taken", "claimed"):
        assert leak not in answer, answer
    # Nothing stored, nothing of A's touched; a real create of the reserved name is refused too.
    assert bravo.get(held) is None and bravo.get("status") is None
    assert bravo.apply_as_partner(bravo.tenant("status")).returncode != 0
    owner = cluster.kubectl("get", "namespace", f"tenant-{held}", "-o",
                            "jsonpath={.metadata.annotations.tenantry\\.dev/owner}").stdout
    assert owner == f"{alpha.namespace}/{held}"


def test_taken_and_reserved_domains_get_the_same_answer(run_with: Callable, cluster: ClusterHandle,
                                                        chart_partners: tuple[ChartPartner, ChartPartner]) -> None:
    alpha, bravo = chart_partners
    holder, prober = alpha.slug("claims-dom-a"), bravo.slug("claims-dom-b")
    domain = f"ki.{holder}.de"
    assert alpha.apply_as_partner(alpha.tenant(holder, domains=[domain])).returncode == 0
    wait_for(lambda: _claim(cluster, domain), what="A's claim")
    taken = _probe(bravo, bravo.tenant(prober, domains=[domain])).replace(domain, "DOMAIN")
    reserved_name = f"mail.{RESERVED_DOMAIN}"
    reserved = _probe(bravo, bravo.tenant(prober, domains=[reserved_name])).replace(reserved_name, "DOMAIN")
    assert taken == reserved
    assert "spec.domains[0]: custom domain 'DOMAIN' is not available on this platform" in taken
    assert alpha.namespace not in taken and holder not in taken
    assert bravo.get(prober) is None
    assert _claim(cluster, reserved_name) is None
    assert (_claim(cluster, domain) or {})["metadata"]["annotations"]["tenantry.dev/owner"] == \
        f"{alpha.namespace}/{holder}"


def test_unverified_claim_expires_and_the_domain_is_free_again(
        run_with: Callable, cluster: ClusterHandle, chart_partners: tuple[ChartPartner, ChartPartner]) -> None:
    alpha, bravo = chart_partners
    squatter, rightful = alpha.slug("claims-squat"), bravo.slug("claims-right")
    domain = f"shop.{squatter}.de"  # nobody ever creates its records: it can never be verified
    run_with({"TENANTRY_DOMAIN_CLAIM_TTL_SECONDS": "20"})
    try:
        assert alpha.apply_as_partner(alpha.tenant(squatter, domains=[domain])).returncode == 0
        created = wait_for(lambda: _claim(cluster, domain), what="the squatter's claim")
        # While the claim stands, B cannot have the domain.
        _probe(bravo, bravo.tenant(rightful, domains=[domain]))
        wait_for(lambda: _claim(cluster, domain) is None, timeout=120, what="the claim to expire")
        cond = alpha.wait_condition(squatter, "False", "DomainClaimExpired", kind="DomainsVerified", timeout=60)
        entry = _entry(alpha, squatter, domain)
        assert entry["expiredAt"] and entry["verified"] is False and entry["records"] == []
        assert "claim expired" in entry["message"] and "remove it from spec.domains" in entry["message"]
        assert "claim expired" in cond["message"]
        # B claims it now; A's tenant (still listing it) did not re-claim it meanwhile.
        assert bravo.apply_as_partner(bravo.tenant(rightful, domains=[domain])).returncode == 0
        claim = wait_for(lambda: _claim(cluster, domain), what="B's claim")
        assert claim["metadata"]["annotations"]["tenantry.dev/owner"] == f"{bravo.namespace}/{rightful}"
        assert claim["metadata"]["uid"] != created["metadata"]["uid"]
        wait_for(lambda: _entry(bravo, rightful, domain).get("records"), what="B's records to create")
        # A re-adding it (remove, then add) is now refused: B holds it.
        assert alpha.apply_as_partner(alpha.tenant(squatter, domains=[])).returncode == 0
        wait_for(lambda: _entry(alpha, squatter, domain) == {}, what="A's entry to go")
        result = alpha.apply_as_partner(alpha.tenant(squatter, domains=[domain]))
        assert result.returncode != 0 and "is not available on this platform" in result.stderr, result.stderr
        assert _claim(cluster, domain)["metadata"]["uid"] == claim["metadata"]["uid"]
    finally:
        run_with({})


def test_pending_claims_are_capped_per_partner(run_with: Callable, cluster: ClusterHandle,
                                               chart_partners: tuple[ChartPartner, ChartPartner]) -> None:
    _, bravo = chart_partners
    partner_id = bravo.namespace.removeprefix("partner-")
    listed = cluster.kubectl("get", "secrets", "-n", PLATFORM_NAMESPACE, "-l", f"tenantry.dev/partner={partner_id}",
                             "-o", "yaml")
    already = dns.pending_claims(yaml.safe_load(listed.stdout)["items"])
    run_with({"TENANTRY_MAX_PENDING_DOMAINS": str(already + 2)})
    try:
        first, second = bravo.slug("claims-cap-1"), bravo.slug("claims-cap-2")
        one, two, three = (f"d{i}.{first}.de" for i in (1, 2, 3))
        assert bravo.apply_as_partner(bravo.tenant(first, domains=[one, two])).returncode == 0
        wait_for(lambda: _claim(cluster, one) and _claim(cluster, two), what="two claims")
        # A second tenant of the same partner: over the cap, the domain is not claimed.
        assert bravo.apply_as_partner(bravo.tenant(second, domains=[three])).returncode == 0
        cond = bravo.wait_condition(second, "False", "DomainClaimLimit", kind="DomainsVerified")
        assert "over the limit" in cond["message"]
        entry = _entry(bravo, second, three)
        assert entry["verified"] is False and entry["records"] == []
        assert f"already hold {already + 2} unverified custom domain(s)" in entry["message"]
        assert _claim(cluster, three) is None
        # Removing a pending one makes room.
        assert bravo.apply_as_partner(bravo.tenant(first, domains=[one])).returncode == 0
        wait_for(lambda: _claim(cluster, two) is None, what="the removed domain's claim to go")
        wait_for(lambda: _claim(cluster, three), what="the third domain claimed")
        wait_for(lambda: _entry(bravo, second, three).get("records"), what="its records listed")
    finally:
        run_with({})


def test_nothing_was_refused_to_the_operator(run_with: Callable, operator: OperatorProcess) -> None:
    refused = [line for line in operator.log_path.read_text().splitlines() if "denied the request" in line]
    assert refused == []
