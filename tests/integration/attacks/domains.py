"""A tenant with a verified custom domain, verified through a real BIND (as in tests/integration/test_dns.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.integration.bind import Bind
from tests.integration.fixtures import ClusterHandle, OperatorProcess, Partner, wait_for
from tests.integration.test_dns import EXTRA_CRDS, ZONE, dns_env

CUSTOMER_ZONE = "kunde-angriff.de"


# Imported by the test modules under these function names; tests ask for `dns_bind` (pytest's name).
@pytest.fixture(scope="module", name="attack_bind")
def bind_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bind]:
    server = Bind(Path(tmp_path_factory.mktemp("bind")), (ZONE, CUSTOMER_ZONE))
    server.start()
    yield server
    server.stop()


@pytest.fixture(name="dns_bind")
def dns_bind_fixture(attack_bind: Bind, operator: OperatorProcess, cluster: ClusterHandle) -> Iterator[Bind]:
    """The BIND of the operator, which now runs with DNS (rfc2136 against that BIND), with
    cert-manager's and external-dns's kinds installed."""
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(EXTRA_CRDS))
    cluster.kubectl("wait", "--for=condition=Established", "crd/certificates.cert-manager.io",
                    "crd/dnsendpoints.externaldns.k8s.io", "--timeout=60s")
    operator.restart_with(dns_env(attack_bind))
    yield attack_bind
    operator.restart_with({})


def domain_entry(partner: Partner, slug: str, domain: str) -> dict:
    body = partner.get(slug) or {}
    return next((d for d in (body.get("status") or {}).get("domains", []) if d["name"] == domain), {})


def verify(partner: Partner, bind: Bind, slug: str, domain: str) -> None:
    """Create the customer's CNAME and TXT records for `domain` and wait until it is verified."""
    entry = wait_for(lambda: domain_entry(partner, slug, domain).get("records") and domain_entry(partner, slug, domain),
                     what="the domain's instructions in the status")
    token = next(r["value"] for r in entry["records"] if r["type"] == "TXT")
    bind.update(CUSTOMER_ZONE, domain, "CNAME", f"{slug}.{ZONE}.")
    bind.update(CUSTOMER_ZONE, f"_tenantry-challenge.{domain}", "TXT", f'"{token}"')
    partner.wait_condition(slug, reason="Verified", kind="DomainsVerified", timeout=60)


def unverify(bind: Bind, domain: str) -> None:
    bind.update(CUSTOMER_ZONE, domain, "CNAME")
    bind.update(CUSTOMER_ZONE, f"_tenantry-challenge.{domain}", "TXT")


def get_json(cluster: ClusterHandle, *args: str) -> dict | None:
    """`kubectl get ... -o json` as the cluster admin; None when not found."""
    result = cluster.kubectl("get", *args, "-o", "json", check=False)
    if result.returncode != 0:
        assert "NotFound" in result.stderr, result.stderr
        return None
    return json.loads(result.stdout)
