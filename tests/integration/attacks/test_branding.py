"""Attacks through a Branding on the front ends that show it, against the real API server and operator.

A partner acts with its own ServiceAccount token (chart_partners); the admission webhook is not
running, so what is refused here is refused by the CRD schema or by the operator's reconcile alone.

Attacks covered:
- markup in displayName (`<img src=x onerror=alert(1)>`) and assistantName (`</style><script>`),
  a logo.url, favicon or support.url with a quote, space or parenthesis that would break out of
  url("...") or an HTML attribute, markup in a welcome text: each refused by the API server, naming
  the field, and nothing stored
- an inline SVG the schema cannot judge (a <set> that turns a link into javascript:, a CDATA
  section that an HTML parser turns into <img onerror>): stored (the schema cannot refuse it), but
  the operator's reconcile refuses it: the tenant using it gets BrandingReady=False InvalidBranding
  naming the element, and no branding ConfigMap (no logo.svg) is written into the tenant namespace
- a logo of 60,000 spaces in its <style>, whose check took days on the operator's event loop (one
  partner stopping every tenant): refused in one pass, and another partner's tenant is served
- a Branding every field of which is valid but that renders to a ConfigMap over the API server's
  1 MiB (an SVG text of `>` and fifty welcome texts of `&`, six bytes each once escaped for HTML):
  before, the branding ConfigMap's write failed on every pass and the pass ended before the quotas,
  so the tenant's admins had a namespace without any quota. Now the operator refuses the Branding
  (InvalidBranding, with its size) and the namespace has its quotas
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from tenantry.api.svg import SVG_MAX_BYTES
from tenantry.devtools import localwebhook
from tests.integration.fixtures import ChartPartner, ClusterHandle

pytestmark = pytest.mark.integration

HOSTILE_FIELDS = [
    ("display-name-img", {"displayName": "<img src=x onerror=alert(1)>"}, "spec.displayName"),
    ("assistant-name-style-breakout", {"assistantName": "</style><script>alert(1)</script>"}, "spec.assistantName"),
    ("logo-url-quote", {"logo": {"url": 'https://x.example/a.png"); background: url("https://evil.example/p'}},
     "spec.logo.url"),
    ("favicon-parenthesis", {"favicon": "https://x.example/a.png)"}, "spec.favicon"),
    ("support-url-space-quote", {"support": {"url": "https://x.example/ \"onmouseover=alert(1)"}}, "spec.support.url"),
    ("welcome-script", {"welcome": {"de": "<script>alert(1)</script>"}}, "spec.welcome"),
]


def _branding(name: str, namespace: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "tenantry.dev/v1alpha1", "kind": "Branding",
            "metadata": {"name": name, "namespace": namespace}, "spec": {"colours": {"primary": "#1F4E79"}, **spec}}


def _stored(cluster: ClusterHandle, name: str, namespace: str) -> dict[str, Any] | None:
    result = cluster.kubectl("get", "branding", name, "-n", namespace, "-o", "json", check=False)
    return json.loads(result.stdout) if result.returncode == 0 else None


def _no_webhook(cluster: ClusterHandle) -> None:
    found = cluster.kubectl("get", localwebhook.KINDS, "-o", "json").stdout
    assert not any("tenantry" in json.dumps(hook) for hook in json.loads(found)["items"]), "a webhook is registered"


@pytest.mark.parametrize(("spec", "field"), [(h[1], h[2]) for h in HOSTILE_FIELDS], ids=[h[0] for h in HOSTILE_FIELDS])
def test_markup_and_breakout_values_are_refused_by_the_api_server(
        cluster: ClusterHandle, chart_partners: tuple[ChartPartner, ChartPartner], spec: dict[str, Any],
        field: str) -> None:
    alpha, _ = chart_partners
    _no_webhook(cluster)
    name = "xss-" + field.rsplit(".", 1)[-1].lower()
    result: subprocess.CompletedProcess = alpha.apply_as_partner(_branding(name, alpha.namespace, **spec))
    assert result.returncode != 0, result.stdout
    assert "Invalid value" in result.stderr and field in result.stderr, result.stderr
    assert "forbidden" not in result.stderr.lower(), "refused by RBAC, not by the schema"
    assert _stored(cluster, name, alpha.namespace) is None
    # The same partner may store an ordinary Branding of that name: the refusal was about the value.
    fine = alpha.apply_as_partner(_branding(name, alpha.namespace, displayName="Süd Cloud KI (Beta) 日本 🤖",
                                            assistantName="O'Brien", logo={"url": "https://x.example/a.png?v=2&w=3"}))
    assert fine.returncode == 0, fine.stderr
    alpha.kubectl("delete", "branding", name, "-n", alpha.namespace)


@pytest.mark.parametrize("svg", [
    '<svg xmlns="http://www.w3.org/2000/svg"><a href="#x"><set attributeName="href" to="java&#9;script:alert(1)"/>'
    "<text>x</text></a></svg>",
    '<svg xmlns="http://www.w3.org/2000/svg"><style><![CDATA[</style><img src=x onerror=alert(1)>]]></style></svg>',
], ids=["set-href-javascript", "cdata-style-breakout"])
def test_hostile_svg_is_refused_by_the_reconcile_without_the_webhook(
        cluster: ClusterHandle, chart_partners: tuple[ChartPartner, ChartPartner], svg: str) -> None:
    alpha, _ = chart_partners
    _no_webhook(cluster)
    name = "evil-" + ("set" if "<set" in svg else "cdata")
    stored = alpha.apply_as_partner(_branding(name, alpha.namespace, logo={"svg": svg}))
    assert stored.returncode == 0, stored.stderr  # the schema cannot judge an SVG; the operator must
    slug = alpha.slug(name)
    created = alpha.apply_as_partner(alpha.tenant(slug, branding=name))
    assert created.returncode == 0, created.stderr
    cond = alpha.wait_condition(slug, status="False", reason="InvalidBranding", kind="BrandingReady")
    assert "spec.logo.svg" in cond["message"] and ("<set>" in cond["message"] or "CDATA" in cond["message"]), cond
    assert "remove it" in cond["message"]
    # The tenant was reconciled (its namespace exists), but no branding reached it.
    assert cluster.kubectl("get", "namespace", f"tenant-{slug}", check=False).returncode == 0
    found = cluster.kubectl("get", "configmap", "tenantry-branding", "-n", f"tenant-{slug}", "-o", "json", check=False)
    assert found.returncode != 0 and "NotFound" in found.stderr, found.stdout
    for config_map in json.loads(cluster.kubectl("get", "configmaps", "-n", f"tenant-{slug}", "-o", "json").stdout)[
            "items"]:
        assert "alert(1)" not in json.dumps(config_map.get("data", {})), config_map["metadata"]["name"]


def test_a_logo_that_took_days_to_judge_is_refused_and_holds_up_no_one(
        cluster: ClusterHandle, chart_partners: tuple[ChartPartner, ChartPartner]) -> None:
    """60,000 spaces in a logo's <style>: the check's search took cubic time (2,000 spaces: 10 s;
    this: days) on the operator's event loop, so one partner's Branding stopped every tenant of
    every partner. Now it is judged in one pass, refused, and the other partner's new tenant is
    served meanwhile."""
    alpha, beta = chart_partners
    _no_webhook(cluster)
    svg = '<svg xmlns="http://www.w3.org/2000/svg"><style>' + " " * 60_000 + "x</style></svg>"
    stored = alpha.apply_as_partner(_branding("slow", alpha.namespace, logo={"svg": svg}))
    assert stored.returncode == 0, stored.stderr  # the schema cannot judge an SVG
    slug = alpha.slug("slow")
    assert alpha.apply_as_partner(alpha.tenant(slug, branding="slow")).returncode == 0
    cond = alpha.wait_condition(slug, status="False", reason="InvalidBranding", kind="BrandingReady")
    assert "not a plain rule" in cond["message"], cond
    other = beta.slug("after-slow")
    assert beta.apply_as_partner(beta.tenant(other)).returncode == 0
    beta.wait_condition(other, "True", kind="NamespaceReady")
    for partner, name in ((alpha, slug), (beta, other)):
        partner.kubectl("delete", "tenant", name, "-n", partner.namespace)
    alpha.kubectl("delete", "branding", "slow", "-n", alpha.namespace)


def test_a_branding_too_big_for_its_configmap_is_refused_and_the_quotas_are_written(
        cluster: ClusterHandle, chart_partners: tuple[ChartPartner, ChartPartner]) -> None:
    alpha, _ = chart_partners
    _no_webhook(cluster)
    head, tail = '<svg xmlns="http://www.w3.org/2000/svg"><text>', "</text></svg>"
    svg = head + ">" * (SVG_MAX_BYTES - len(head) - len(tail)) + tail
    welcome = {f"{a}{b}": "&" * 2000 for a in "abcdefghij" for b in "abcde"}
    # (created, not applied: kubectl apply's copy in an annotation would be over that one's limit)
    stored = alpha.kubectl("create", "-f", "-",
                           input=json.dumps(_branding("huge", alpha.namespace, logo={"svg": svg}, welcome=welcome)))
    assert stored.returncode == 0, stored.stderr  # every field is valid: the schema cannot tell
    slug = alpha.slug("huge")
    assert alpha.apply_as_partner(alpha.tenant(slug, branding="huge")).returncode == 0
    cond = alpha.wait_condition(slug, status="False", reason="InvalidBranding", kind="BrandingReady")
    assert "renders to 1,05" in cond["message"] and "at most 524,288 fit" in cond["message"], cond
    alpha.wait_condition(slug, "True", "Provisioned", kind="NamespaceReady")
    quota = json.loads(cluster.kubectl("get", "resourcequota", "tenantry-quota", "-n", f"tenant-{slug}",
                                       "-o", "json").stdout)
    assert quota["spec"]["hard"]["pods"] == "20", quota["spec"]
    alpha.kubectl("delete", "tenant", slug, "-n", alpha.namespace)
    alpha.kubectl("delete", "branding", "huge", "-n", alpha.namespace)
