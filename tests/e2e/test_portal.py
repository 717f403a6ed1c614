"""The partner portal against the real control plane, a real Prometheus and headless Chromium.

Two partners made by the chart (each with its own ServiceAccount token), tenants with usage
reported, the operator scraped by a Prometheus that also holds 35 days of sample history
(backfilled with promtool, labelled source="sample-history"), and the portal process running as
the chart's portal ServiceAccount.

Tested here:
- no token: 401 on every page, CSV and JSON; a token the cluster does not accept: 401
- a form posted from another site (or with a null Origin) is refused; an oversized token is 401
  without a review; the session cookie is HttpOnly and SameSite=Strict; no script may run (CSP)
- a tenant admin's token (a ServiceAccount bound to the tenant-admin role in its tenant
  namespace): 403; partner A asking for partner B, or for a partner that does not exist: the same 403
- a platform admin (through a trusted proxy's headers, group system:masters) sees both partners
- in partner A's session no response (every page, CSV, JSON, the form: valid, with errors, and its
  ?download=1 answers) and no page source in the browser holds B's names or numbers: companies,
  slugs, MRR, commission, totals, users and seats, deals; B's slug typed into A's form is answered as
  any unused name is
- the figures equal what the API server and Prometheus hold: users, MRR, commission (rate from
  the partner namespace's annotation), the 30-day MRR trend, totals, growth, level, target
- hostile company names and branding values are inert in the DOM of a real browser
- the onboarding form shows errors next to the fields; its output, written into a scratch GitOps
  folder next to the examples' partner and plan files, passes the installed `tenantry validate`
  (exit 0) and the API server (a server-side dry run with partner A's own token); a hostile branding
  value is refused next to its field, and `tenantry validate` refuses the same value in that field
- TENANTRY_PORTAL_SCREENSHOTS=<folder> saves a screenshot of each page (docs/portal/ in the repo)
"""

from __future__ import annotations

import csv
import datetime
import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from tenantry.devtools import chart
from tenantry.devtools.samplehistory import SampleTenant, write_blocks
from tests.e2e.prometheus import Prometheus
from tests.integration.fixtures import PLATFORM_NAMESPACE, ChartPartner, ClusterHandle, OperatorProcess, wait_for
from tests.integration.net import free_port

pytestmark = pytest.mark.integration

HOSTILE = '<img src=x onerror="document.title=\'pwned\'">Evil & Co "GmbH"'
# The API refuses < and > in branding texts; an entity must still show as typed, not decoded.
HOSTILE_WELCOME = "&lt;script&gt;document.title=1&lt;/script&gt; \"quoted\" & 'single'"
RATE_A = 0.25  # partner A's own commission rate (namespace annotation); the platform default is 0.20
REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "tenants"


class _Stay(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None  # a redirect is an answer to look at (status, Location, Set-Cookie), not to follow


_NO_REDIRECTS = urllib.request.build_opener(_Stay)


@dataclass
class PortalProcess:
    kubeconfig: Path
    log: Path
    prometheus_url: str
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None
    secure_cookie: bool = False  # True: as in production (browsers take a Secure cookie from localhost)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig), "TENANTRY_PORTAL_PORT": str(self.port),
               "TENANTRY_PORTAL_ADDRESS": "127.0.0.1", "TENANTRY_PLATFORM_NAMESPACE": PLATFORM_NAMESPACE,
               "TENANTRY_PLATFORM_DOMAIN": "platform.test", "TENANTRY_PORTAL_PROMETHEUS_URL": self.prometheus_url,
               "TENANTRY_PORTAL_SECURE_COOKIE": str(self.secure_cookie).lower(),
               "TENANTRY_PORTAL_TRUST_PROXY_HEADERS": "true",
               "TENANTRY_PORTAL_GIT_URL": "https://git.example/org/tenants/blob/main"}
        self.process = subprocess.Popen([sys.executable, "-m", "tenantry.portal"], env=env,
                                        stdout=self.log.open("ab"), stderr=subprocess.STDOUT)
        wait_for(self._up, timeout=60, what="the portal's /healthz")

    def _up(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError("portal exited: " + self.log.read_text()[-3000:])
        try:
            return urllib.request.urlopen(self.url + "/healthz", timeout=2).status == 200
        except OSError:
            return False

    def get(self, path: str, token: str | None = None, headers: dict[str, str] | None = None,
            data: bytes | None = None) -> tuple[int, str, dict[str, str]]:
        request = urllib.request.Request(self.url + path, data=data, headers=dict(headers or {}))
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with _NO_REDIRECTS.open(request, timeout=30) as response:
                return response.status, response.read().decode(), dict(response.headers)
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode(), dict(error.headers)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(20)


def _token(kubeconfig: Path) -> str:
    return yaml.safe_load(kubeconfig.read_text())["users"][0]["user"]["token"]


def _gitops_folder(root: Path, partner_id: str, namespace: str) -> Path:
    """A scratch tenants repository as `tenantry validate` needs it: the examples' platform plans
    and partner files, and a partner file for `partner_id` (the platform team's, as in the examples)."""
    for folder in ("platform", "partners"):
        shutil.copytree(EXAMPLES / folder, root / folder)
    partner = yaml.safe_load((EXAMPLES / "partners" / "acme-it.yaml").read_text())
    partner["metadata"]["name"] = namespace
    partner["metadata"]["labels"]["tenantry.dev/partner"] = partner_id
    (root / "partners" / f"{partner_id}.yaml").write_text(yaml.safe_dump(partner))
    return root


def _tenantry_validate(root: Path) -> subprocess.CompletedProcess:
    """The installed `tenantry` command (this virtual environment's console script), as a pull
    request check runs it."""
    command = Path(sys.executable).with_name("tenantry")
    assert command.exists(), f"{command}: the tenantry command is not installed"
    return subprocess.run([str(command), "validate", "--platform-namespace", PLATFORM_NAMESPACE,
                           "--platform-domain", "platform.test", str(root)],
                          capture_output=True, text=True, timeout=120)


@dataclass
class World:
    a: ChartPartner
    b: ChartPartner
    a_id: str
    b_id: str
    a_token: str
    b_token: str
    admin_token: str  # a tenant admin of one of A's tenants
    a_slugs: list[str]
    b_slugs: list[str]
    b_companies: list[str]
    history_mrr: dict[str, float]  # A's tenants: MRR 30 days ago in the sample history
    trial: str  # A's tenant on trial
    trial_ends: str
    portal: PortalProcess
    prometheus: Prometheus


def _usage(cluster: ClusterHandle, namespace: str, slug: str, usage: dict) -> None:
    cluster.kubectl("patch", "tenant", slug, "-n", namespace, "--subresource=status", "--type=merge",
                    "-p", json.dumps({"status": {"usage": usage}}))


@pytest.fixture(scope="module")
def world(cluster: ClusterHandle, operator: OperatorProcess, chart_partners: tuple[ChartPartner, ChartPartner],
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    a, b = chart_partners
    a_id, b_id = a.namespace.removeprefix("partner-"), b.namespace.removeprefix("partner-")
    cluster.kubectl("annotate", "namespace", a.namespace, f"tenantry.dev/commission-rate={RATE_A}",
                    "tenantry.dev/quarterly-target=20000", "--overwrite")
    # A: four customers (one hostile, one Suspended); B: two, with names and prices found nowhere in A.
    specs_a = [
        # Included chat requests (its `requests` limit) on top of the plan; tables: 50 counts tables.
        (a.slug("alpha-one"), {"company": "Alpha Eins AG", "plan": {"featureSet": "business", "seats": 100,
                               "price": {"monthly": 3000, "currency": "EUR"}}, "supportLevel": "Premium",
                               "features": {"chat": {"limits": {"requests": 45000}}}},
         {"activeUsers": 95, "requests": {"chat": 40000, "tables": 45}}),
        (a.slug("alpha-two"), {"company": HOSTILE, "plan": {"featureSet": "business", "seats": 40,
                               "price": {"monthly": 800, "currency": "EUR"}}, "branding": "hostile"},
         {"activeUsers": 10, "requests": {"chat": 900, "tables": 3}}),
        (a.slug("alpha-three"), {"company": "Alpha Drei GmbH", "plan": {"featureSet": "starter", "seats": 20,
                                 "price": {"monthly": 400, "currency": "EUR"}}},
         {"activeUsers": 12, "requests": {"chat": 5000}}),
        (a.slug("alpha-four"), {"company": "Alpha Vier KG", "state": "Suspended",
                                "plan": {"featureSet": "starter", "seats": 10,
                                         "price": {"monthly": 150, "currency": "EUR"}}},
         {"activeUsers": 0}),
    ]
    specs_b = [
        (b.slug("bravo-one"), {"company": "Bravo Geheim Holding", "plan": {"featureSet": "business", "seats": 77,
                               "price": {"monthly": 7777.77, "currency": "EUR"}}}, {"activeUsers": 61}),
        (b.slug("bravo-two"), {"company": "Bravo Verborgen SE", "plan": {"featureSet": "starter", "seats": 33,
                               "price": {"monthly": 3333.33, "currency": "EUR"}}}, {"activeUsers": 29}),
    ]
    a.apply({"apiVersion": "tenantry.dev/v1alpha1", "kind": "Branding", "metadata": {"name": "hostile",
             "namespace": a.namespace}, "spec": {"colours": {"primary": "#AA0000"}, "assistantName": "Ava",
                                                 "displayName": "Evil Brand", "welcome": {"en": HOSTILE_WELCOME}}})
    for partner, specs in ((a, specs_a), (b, specs_b)):
        for slug, spec, _ in specs:
            partner.apply(partner.tenant(slug, **spec))
    trial_slug = a.slug("alpha-trial")
    trial_ends = (datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    a.apply(a.tenant(trial_slug, company="Alpha Probe GmbH", state="Trial", trial={"ends": trial_ends}))

    def deal(namespace: str, name: str, company: str, stage: str, monthly: float, **extra: str) -> dict:
        return {"apiVersion": "tenantry.dev/v1alpha1", "kind": "Deal",
                "metadata": {"name": name, "namespace": namespace},
                "spec": {"company": company, "stage": stage, "expected": {"monthly": monthly}, **extra}}
    a.apply(deal(a.namespace, "d-one", "Prospect One", "Demo", 450.0, trial=trial_slug))
    a.apply(deal(a.namespace, "d-two", "Prospect Two", "Demo", 550.0))
    a.apply(deal(a.namespace, "d-three", "Prospect Three", "Negotiation", 2000.0))
    b.apply(deal(b.namespace, "secret-deal", "Bravo Geheimprojekt", "Proposal", 8888.88))
    for partner, specs in ((a, specs_a), (b, specs_b)):
        for slug, _, usage in specs:
            partner.wait_condition(slug, timeout=120)
            _usage(cluster, partner.namespace, slug, usage)
    # A tenant admin: a ServiceAccount in alpha-one's namespace, bound to the chart's tenant-admin role there.
    tenant_ns = f"tenant-{specs_a[0][0]}"
    cluster.kubectl("create", "serviceaccount", "admin", "-n", tenant_ns)
    cluster.kubectl("create", "rolebinding", "sa-admin", "-n", tenant_ns, "--clusterrole=tenantry-tenant-admin",
                    f"--serviceaccount={tenant_ns}:admin")
    folder = tmp_path_factory.mktemp("portal")
    admin_kubeconfig = chart.service_account_kubeconfig(cluster.kubeconfig, tenant_ns, "admin",
                                                        folder / "admin.kubeconfig")
    # 35 days of history for A's tenants (and B's, so a leak of B's history would show).
    now = time.time()
    history_mrr = {}
    samples = []
    for partner_id, specs in ((a_id, specs_a), (b_id, specs_b)):
        for slug, spec, _ in specs:
            mrr = spec["plan"]["price"]["monthly"]
            samples.append(SampleTenant(partner_id, slug, spec["company"], spec["plan"]["featureSet"],
                                        spec.get("state", "Active"), "EUR", mrr * 0.8, mrr * 1.1, 5, 30))
    # What `offset 30d` finds: the history is linear from 35 days ago to an hour ago.
    share = (5 * 86400 + 3600) / (35 * 86400)
    for sample in samples:
        history_mrr[sample.tenant] = sample.mrr_then + (sample.mrr_now - sample.mrr_then) * share
    write_blocks(samples, folder / "prometheus" / "data", now)
    prometheus = Prometheus(folder / "prometheus", operator.metrics_port)
    live = f'tenantry_tenant_active_users{{partner="{a_id}",source!="sample-history"}}'
    wait_for(lambda: prometheus.query(f"count({live})")["data"]["result"], timeout=90, what="the operator scraped")
    wait_for(lambda: prometheus.query(f"sum({live})")["data"]["result"][0]["value"][1] == "117", timeout=90,
             what="usage scraped")
    portal_kubeconfig = chart.service_account_kubeconfig(cluster.kubeconfig, PLATFORM_NAMESPACE, "tenantry-portal",
                                                         folder / "portal.kubeconfig")
    portal = PortalProcess(portal_kubeconfig, folder / "portal.log", f"http://127.0.0.1:{prometheus.port}")
    portal.start()
    yield World(a, b, a_id, b_id, _token(a.kubeconfig), _token(b.kubeconfig), _token(admin_kubeconfig),
                [s for s, _, _ in specs_a], [s for s, _, _ in specs_b], [spec["company"] for _, spec, _ in specs_b],
                history_mrr, trial_slug, trial_ends, portal, prometheus)
    portal.stop()
    prometheus.stop()


def _b_secrets(w: World) -> list[str]:
    """What partner B's customers, totals and deals would show as, in any response or page: names,
    slugs, MRR, commission (B's rate is the platform default 0.20), totals, users of seats."""
    money = [7777.77, 3333.33, 7777.77 * 0.2, 3333.33 * 0.2,  # MRR and commission per customer
             11111.10, 11111.10 * 0.2, 11111.10 * 0.2 * 12,  # totals: MRR, commission, annual projection
             8888.88, 8888.88 * 0.2]  # the deal, and its expected commission
    return [*w.b_slugs, *w.b_companies, w.b_id, "Bravo", "secret-deal",
            *(f"{amount:,.2f}" for amount in money), *(f"{amount:.2f}" for amount in money),
            "61 of 77", "29 of 33", "90 of 110"]  # active users of licensed seats, each and in total


def _no_b(w: World, text: str, where: str) -> None:
    for secret in _b_secrets(w):
        assert secret not in text, f"{where} shows {secret!r}"


def _pages(w: World, partner_id: str, slugs: list[str]) -> list[str]:
    paths = ["/", f"/p/{partner_id}/customers", f"/p/{partner_id}/customers.json", f"/p/{partner_id}/revenue",
             f"/p/{partner_id}/onboard", f"/p/{partner_id}/pipeline"]
    for slug in slugs:
        paths += [f"/p/{partner_id}/customers/{slug}", f"/p/{partner_id}/customers/{slug}/usage.csv"]
    return paths


def test_no_token_is_401_and_a_tenant_admin_is_403(world: World) -> None:
    for path in _pages(world, world.a_id, world.a_slugs[:1]):
        status, _, headers = world.portal.get(path)
        assert status == 401, path
        assert headers.get("WWW-Authenticate", "").startswith("Bearer"), path
        assert world.portal.get(path, token="not-a-token")[0] == 401, path
        assert world.portal.get(path, token=world.admin_token)[0] == 403, path


def test_cross_site_posts_and_oversized_tokens_are_refused(world: World) -> None:
    form = f"token={world.a_token}".encode()
    for origin in ("https://evil.example", "null"):
        status, _, headers = world.portal.get("/login", headers={"Origin": origin}, data=form)
        assert status == 403 and "Set-Cookie" not in headers, origin
    status, _, headers = world.portal.get("/login", headers={"Origin": world.portal.url}, data=form)
    assert status == 303 and "HttpOnly" in headers["Set-Cookie"] and "SameSite=Strict" in headers["Set-Cookie"]
    assert world.portal.get(f"/p/{world.a_id}/customers", token="x" * 8100)[0] == 401
    # Longer than a browser keeps in a cookie: refused at login with its length, never reviewed.
    status, body, headers = world.portal.get("/login", headers={"Origin": world.portal.url},
                                             data=b"token=" + b"x" * 9000)
    assert status == 400 and "has 9000 characters; a browser keeps at most" in body and "Set-Cookie" not in headers
    status, _, headers = world.portal.get(f"/p/{world.a_id}/customers", token=world.a_token)
    assert "script-src" not in headers["Content-Security-Policy"] and "default-src 'none'" in \
        headers["Content-Security-Policy"]


def test_a_partner_never_sees_another_partners_customers(world: World) -> None:
    # B's figures are what the API server holds: the secrets looked for are really B's.
    b_tenants = [world.b.get(slug) or {} for slug in world.b_slugs]
    assert sorted(t["spec"]["plan"]["price"]["monthly"] for t in b_tenants) == [3333.33, 7777.77]
    assert sorted((t["status"]["usage"]["activeUsers"], t["spec"]["plan"]["seats"]) for t in b_tenants) == \
        [(29, 33), (61, 77)]
    status, body, _ = world.portal.get(f"/p/{world.b_id}/customers", token=world.b_token)
    assert status == 200 and "11,111.10 EUR" in body and "2,222.22 EUR" in body and "90 of 110" in body
    checked = 0
    for path in _pages(world, world.a_id, world.a_slugs):
        status, body, headers = world.portal.get(path, token=world.a_token)
        if path == "/":  # one partner: straight to its customers
            assert (status, headers["Location"]) == (302, f"/p/{world.a_id}/customers")
        else:
            assert status == 200, (path, body[:500])
        _no_b(world, body, path)
        checked += 1
    # The form: valid, with errors, and downloaded (?download=1), each answer checked.
    onboard = f"/p/{world.a_id}/onboard"
    valid = "company=Neu+GmbH&slug={slug}&contact_name=E&contact_email=e%40x.de&plan=business&seats=5"
    fresh = world.a.slug("leakcheck")
    status, body, _ = world.portal.get(onboard, token=world.a_token, data=valid.format(slug=fresh).encode())
    assert status == 200 and 'id="yaml"' in body
    _no_b(world, body, "the form's YAML")
    status, body, headers = world.portal.get(onboard + "?download=1", token=world.a_token,
                                             data=valid.format(slug=fresh).encode())
    assert status == 200 and headers["Content-Type"].startswith("application/yaml"), body[:500]
    assert yaml.safe_load(body)["metadata"]["name"] == fresh
    _no_b(world, body, "the form's download")
    broken = valid.format(slug=fresh).replace("e%40x.de", "not-an-address").encode() + b"&seats=many&primary=red"
    for path in (onboard, onboard + "?download=1"):
        status, body, _ = world.portal.get(path, token=world.a_token, data=broken)
        assert status == 400 and 'data-field="contact_email"' in body and 'id="yaml"' not in body, path
        _no_b(world, body, f"{path} with errors")
    # B's slug typed into A's form is answered as an unused name is: nothing says it is taken.
    typed = valid.format(slug=world.b_slugs[0]).replace("e%40x.de", "not-an-address").encode()
    _, with_b, _ = world.portal.get(onboard, token=world.a_token, data=typed)
    _, with_fresh, _ = world.portal.get(onboard, token=world.a_token, data=typed.replace(
        world.b_slugs[0].encode(), fresh.encode()))
    assert with_b.replace(world.b_slugs[0], fresh) == with_fresh
    # B's pages, asked for with A's token, and a partner that does not exist: the same refusal.
    refusals = {world.portal.get(path, token=world.a_token)[1]
                for path in [f"/p/{world.b_id}/customers", f"/p/{world.b_id}/customers/{world.b_slugs[0]}",
                             f"/p/{world.b_id}/customers/{world.b_slugs[0]}/usage.csv", f"/p/{world.b_id}/revenue",
                             f"/p/{world.b_id}/customers.json", "/p/no-such-partner/customers"]}
    assert len(refusals) == 1 and "403" in next(iter(refusals))
    # A's customer asked for under B's name, with B's token: not found there.
    assert world.portal.get(f"/p/{world.b_id}/customers/{world.a_slugs[0]}", token=world.b_token)[0] == 404
    assert checked == len(_pages(world, world.a_id, world.a_slugs))


def test_a_platform_admin_behind_the_proxy_sees_every_partner(world: World, cluster: ClusterHandle) -> None:
    # A platform team's group, allowed to read Tenants everywhere by real RBAC.
    cluster.kubectl("create", "clusterrole", "portal-test-tenant-reader", "--verb=get,list",
                    "--resource=tenants.tenantry.dev", check=False)
    cluster.kubectl("create", "clusterrolebinding", "portal-test-platform-team", "--group=portal-test-platform-team",
                    "--clusterrole=portal-test-tenant-reader", check=False)
    headers = {"X-Forwarded-User": "alice", "X-Forwarded-Groups": "staff, portal-test-platform-team"}
    status, body, _ = world.portal.get("/", headers=headers)
    assert status == 200 and world.a_id in body and world.b_id in body
    assert world.portal.get(f"/p/{world.b_id}/customers", headers=headers)[0] == 200
    # A user of the proxy without rights: 403. Kubernetes' own names never come from headers.
    assert world.portal.get("/", headers={"X-Forwarded-User": "nobody"})[0] == 403
    for forged in ({"X-Forwarded-User": "eve", "X-Forwarded-Groups": "system:masters"},
                   {"X-Forwarded-User": "system:admin"}):
        assert world.portal.get("/", headers=forged)[0] == 401, forged


def test_figures_equal_what_the_api_and_prometheus_hold(world: World) -> None:
    status, body, _ = world.portal.get(f"/p/{world.a_id}/customers.json", token=world.a_token)
    assert status == 200
    rows = {row["tenant"]: row for row in json.loads(body)["customers"]}
    assert set(rows) == set(world.a_slugs) | {world.trial}
    for slug in world.a_slugs:
        tenant = world.a.get(slug) or {}
        spec, usage = tenant["spec"], tenant["status"]["usage"]
        row = rows[slug]
        assert row["seats"] == spec["plan"]["seats"] and row["activeUsers"] == usage["activeUsers"]
        assert row["mrr"] == spec["plan"]["price"]["monthly"]
        assert row["commission"] == pytest.approx(row["mrr"] * RATE_A if spec.get("state", "Active") == "Active" else 0)
        assert row["requests"] == sum((usage.get("requests") or {}).values())
        then = world.prometheus.query(f'max by (tenant) (tenantry_tenant_mrr{{tenant="{slug}"}} offset 30d)')
        then_value = float(then["data"]["result"][0]["value"][1])
        assert then_value == pytest.approx(world.history_mrr[slug], rel=0.01)
        # (the portal asked a moment later than this test: the history moves by cents a minute)
        assert row["mrrTrendPercent"] == pytest.approx((row["mrr"] - then_value) / then_value * 100, rel=1e-3)
    # 95 of 100 seats; 40,000 of 45,000 included chat requests. 45 table requests are not compared
    # with the plan's 50 tables (a number of tables, not of requests).
    assert rows[world.a_slugs[0]]["signals"] == ["licences", "upsell:chat"]
    active = [slug for slug in world.a_slugs if (world.a.get(slug) or {})["spec"].get("state", "Active") == "Active"]
    mrr = sum(rows[slug]["mrr"] for slug in active)
    status, page, _ = world.portal.get(f"/p/{world.a_id}/customers", token=world.a_token)
    assert f"{mrr:,.2f} EUR" in page and f"{mrr * RATE_A:,.2f} EUR" in page and f"{mrr * RATE_A * 12:,.2f} EUR" in page
    status, page, _ = world.portal.get(f"/p/{world.a_id}/revenue", token=world.a_token)
    then = sum(world.history_mrr[slug] for slug in active)
    growth = re.search(r'id="growth">([-+][0-9.]+) % \(EUR\)', page)
    assert growth and float(growth.group(1)) == pytest.approx((mrr - then) / then * 100, abs=0.2)
    assert f"{mrr / 20000 * 100:.0f} % reached" in page
    assert "Bronze" in page and "of the way to Silver" in page
    status, csv_text, headers = world.portal.get(f"/p/{world.a_id}/customers/{world.a_slugs[1]}/usage.csv",
                                                 token=world.a_token)
    assert headers["Content-Type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(csv_text)))
    assert {row["company"] for row in table} == {HOSTILE}
    assert {row["feature"]: row["requests"] for row in table}["chat"] == "900"


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1400,1000"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"),
                              options=options)
    yield driver
    driver.quit()


def _shot(driver: object, name: str) -> None:
    folder = os.environ.get("TENANTRY_PORTAL_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(folder) / f"{name}.png"))  # type: ignore[attr-defined]


def test_logging_out_in_a_real_browser_ends_the_session(world: World, browser: object, tmp_path: Path) -> None:
    """With the production cookie (Secure, __Host-): its deletion without Secure was ignored by the
    browser, and the next person at the browser was the partner."""
    from selenium.webdriver.common.by import By

    portal = PortalProcess(world.portal.kubeconfig, tmp_path / "portal.log", world.portal.prometheus_url,
                           secure_cookie=True)
    portal.start()
    try:
        driver = browser
        base = f"http://localhost:{portal.port}"  # a secure context, as https is
        driver.get(base + "/login")  # type: ignore[attr-defined]
        driver.find_element(By.ID, "token").send_keys(world.a_token)  # type: ignore[attr-defined]
        driver.find_element(By.CSS_SELECTOR, "form button").click()  # type: ignore[attr-defined]
        wait_for(lambda: "/customers" in driver.current_url, timeout=20, what="the customers page")  # type: ignore[attr-defined]
        assert [c["name"] for c in driver.get_cookies()] == ["__Host-tenantry_portal"]  # type: ignore[attr-defined]
        driver.find_element(By.CSS_SELECTOR, "form.logout button").click()  # type: ignore[attr-defined]
        wait_for(lambda: driver.current_url.endswith("/login"), timeout=20, what="the login page")  # type: ignore[attr-defined]
        assert driver.get_cookies() == []  # type: ignore[attr-defined]
        driver.get(base + "/")  # type: ignore[attr-defined]
        assert "Log in with a token the cluster accepts." in driver.page_source  # type: ignore[attr-defined]
    finally:
        portal.stop()


def test_pages_in_a_real_browser(world: World, browser: object, tmp_path: Path) -> None:
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By

    driver = browser
    driver.get(world.portal.url + "/login")  # type: ignore[attr-defined]
    _shot(driver, "login")
    driver.find_element(By.ID, "token").send_keys(world.a_token)  # type: ignore[attr-defined]
    driver.find_element(By.CSS_SELECTOR, "form button").click()  # type: ignore[attr-defined]
    wait_for(lambda: "/customers" in driver.current_url, timeout=20, what="the customers page")  # type: ignore[attr-defined]
    _no_b(world, driver.page_source, "the customers page in the browser")  # type: ignore[attr-defined]
    rows = driver.find_elements(By.CSS_SELECTOR, "#customers tbody tr")  # type: ignore[attr-defined]
    assert len(rows) == len(world.a_slugs) + 1  # and the trial
    companies = [row.find_element(By.CSS_SELECTOR, "td.company").text for row in rows]
    assert HOSTILE in companies  # shown as text, exactly
    assert driver.find_elements(By.CSS_SELECTOR, "img[src=x], script") == []  # type: ignore[attr-defined]
    assert driver.title != "pwned"  # type: ignore[attr-defined]  (what the onerror would set)
    _shot(driver, "customers")
    hostile_slug = world.a_slugs[1]
    driver.get(f"{world.portal.url}/p/{world.a_id}/customers/{hostile_slug}")  # type: ignore[attr-defined]
    assert driver.find_element(By.ID, "company").text == HOSTILE  # type: ignore[attr-defined]
    _no_b(world, driver.page_source, "a customer page in the browser")  # type: ignore[attr-defined]
    welcome = driver.find_element(By.CSS_SELECTOR, "#preview .preview-welcome").text  # type: ignore[attr-defined]
    assert welcome == HOSTILE_WELCOME[:80]
    assert driver.find_elements(By.CSS_SELECTOR, "script, img[src=x]") == []  # type: ignore[attr-defined]
    assert driver.title != "pwned"  # type: ignore[attr-defined]  (what the onerror would set)
    try:
        driver.switch_to.alert  # type: ignore[attr-defined]  # noqa: B018
        raise AssertionError("an alert opened")
    except NoAlertPresentException:
        pass
    _shot(driver, "customer")
    driver.get(f"{world.portal.url}/p/{world.a_id}/customers/{world.a_slugs[0]}")  # type: ignore[attr-defined]
    _no_b(world, driver.page_source, "a customer page in the browser")  # type: ignore[attr-defined]
    usage = {row.get_attribute("data-feature"): row  # type: ignore[attr-defined]
             for row in driver.find_elements(By.CSS_SELECTOR, "#usage tbody tr")}  # type: ignore[attr-defined]
    assert set(usage) >= {"chat", "tables"}
    # chat against its included requests (a limit bar); tables against the partner's median only.
    assert usage["chat"].find_element(By.CSS_SELECTOR, ".limit").text == "45000"
    assert len(usage["chat"].find_elements(By.CSS_SELECTOR, "rect.track")) == 1
    assert usage["tables"].find_element(By.CSS_SELECTOR, ".limit").text == "—"
    assert usage["tables"].find_elements(By.CSS_SELECTOR, "rect.track") == []
    # The go-live checklist, step by step as in the Tenant's status.onboarding.
    steps = [row.find_elements(By.TAG_NAME, "td")[1].text  # type: ignore[attr-defined]
             for row in driver.find_elements(By.CSS_SELECTOR, "#checklist tbody tr")]  # type: ignore[attr-defined]
    assert steps[:4] == ["NamespaceReady", "PlanResolved", "BrandingResolved", "PlatformDNSPublished"]
    assert steps[-2:] == ["WelcomeSent", "FirstUsageReported"]
    _shot(driver, "customer-usage")
    driver.get(f"{world.portal.url}/p/{world.a_id}/pipeline")  # type: ignore[attr-defined]
    stages = {row.get_attribute("data-stage"): (row.find_element(By.CSS_SELECTOR, ".count").text,
                                                 row.find_element(By.CSS_SELECTOR, ".mrr").text,
                                                 row.find_element(By.CSS_SELECTOR, ".commission").text)
              for row in driver.find_elements(By.CSS_SELECTOR, "#stages tbody tr")}  # type: ignore[attr-defined]
    assert stages == {"Discovery": ("0", "0.00", "0.00"), "Demo": ("2", "1,000.00 EUR", f"{1000 * RATE_A:,.2f} EUR"),
                      "Proposal": ("0", "0.00", "0.00"),
                      "Negotiation": ("1", "2,000.00 EUR", f"{2000 * RATE_A:,.2f} EUR")}
    trials = driver.find_elements(By.CSS_SELECTOR, "#trials tbody tr")  # type: ignore[attr-defined]
    assert [t.get_attribute("data-tenant") for t in trials] == [world.trial]
    assert world.trial_ends in trials[0].text and "Active" in trials[0].text
    _no_b(world, driver.page_source, "the pipeline in the browser")  # type: ignore[attr-defined]
    _shot(driver, "pipeline")
    driver.get(f"{world.portal.url}/p/{world.a_id}/revenue")  # type: ignore[attr-defined]
    assert "Bronze" in driver.find_element(By.ID, "level").text  # type: ignore[attr-defined]
    _no_b(world, driver.page_source, "the revenue page in the browser")  # type: ignore[attr-defined]
    _shot(driver, "revenue")
    # The onboarding form: a bad e-mail shows next to its field; fixed, the YAML is offered.
    driver.get(f"{world.portal.url}/p/{world.a_id}/onboard")  # type: ignore[attr-defined]
    slug = world.a.slug("formmade")
    for name, value in {"company": "Formular GmbH", "slug": slug, "contact_name": "Eva Form",
                        "contact_email": "eva@", "seats": "25", "primary": "#123456", "assistant_name": "Fio",
                        "welcome": "Willkommen", "domain": f"ki.{slug}.de"}.items():
        driver.find_element(By.ID, f"f-{name}").send_keys(value)  # type: ignore[attr-defined]
    driver.execute_script("document.getElementById('onboard').noValidate = true")  # type: ignore[attr-defined]
    driver.find_element(By.CSS_SELECTOR, "#onboard button[type=submit]").click()  # type: ignore[attr-defined]
    errors = wait_for(lambda: driver.find_elements(By.CSS_SELECTOR,  # type: ignore[attr-defined]
                                                   "p.error[data-field=contact_email]"),
                      timeout=20, what="the form's error next to the e-mail field")
    assert errors and "is not an e-mail address" in errors[0].text
    _no_b(world, driver.page_source, "the form with errors in the browser")  # type: ignore[attr-defined]
    _shot(driver, "onboard-errors")
    field_ = driver.find_element(By.ID, "f-contact_email")  # type: ignore[attr-defined]
    field_.clear()
    field_.send_keys("eva@formular.example")
    driver.find_element(By.CSS_SELECTOR, "#onboard button[type=submit]").click()  # type: ignore[attr-defined]
    shown = wait_for(lambda: driver.find_elements(By.ID, "yaml"), timeout=20,  # type: ignore[attr-defined]
                     what="the YAML of the filled-in form")
    text = shown[0].text
    _no_b(world, driver.page_source, "the form's YAML in the browser")  # type: ignore[attr-defined]
    _shot(driver, "onboard")
    documents = list(yaml.safe_load_all(text))
    assert [d["kind"] for d in documents] == ["Tenant", "Branding"]
    assert driver.find_element(By.ID, "path").text == f"tenants/{world.a_id}/{slug}.yaml"  # type: ignore[attr-defined]
    # `tenantry validate` accepts it where the form says it goes, as a pull request check would.
    repo = _gitops_folder(tmp_path / "gitops", world.a_id, world.a.namespace)
    (repo / f"tenants/{world.a_id}").mkdir(parents=True)
    (repo / driver.find_element(By.ID, "path").text).write_text(text + "\n")  # type: ignore[attr-defined]
    checked = _tenantry_validate(repo)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # The API server accepts it from partner A's own account (a dry run: the form never writes).
    result = world.a.kubectl("apply", "--dry-run=server", "-f", "-", input=text)
    assert result.returncode == 0, result.stderr
    assert world.a.get(slug) is None
    # A hostile welcome message: refused next to its field, no YAML offered, nothing of it runs.
    hostile = "<script>document.title='pwned'</script>"
    field_ = driver.find_element(By.ID, "f-welcome")  # type: ignore[attr-defined]
    field_.clear()
    field_.send_keys(hostile)
    driver.find_element(By.CSS_SELECTOR, "#onboard button[type=submit]").click()  # type: ignore[attr-defined]
    errors = wait_for(lambda: driver.find_elements(By.CSS_SELECTOR,  # type: ignore[attr-defined]
                                                   "p.error[data-field=welcome]"),
                      timeout=20, what="the form's error next to the welcome message")
    assert "does not match" in errors[0].text
    assert [e.get_attribute("data-field") for e in  # type: ignore[attr-defined]
            driver.find_elements(By.CSS_SELECTOR, "p.error")] == ["welcome"]  # type: ignore[attr-defined]
    assert driver.find_elements(By.ID, "yaml") == [] and driver.find_elements(By.TAG_NAME, "script") == []  # type: ignore[attr-defined]
    assert driver.find_element(By.ID, "f-welcome").get_attribute("value") == hostile  # type: ignore[attr-defined]
    assert driver.title != "pwned"  # type: ignore[attr-defined]
    # ...and `tenantry validate` refuses that value in the same field of the committed file.
    tenant, branding = documents
    branding["spec"]["welcome"] = {"en": hostile}
    (repo / f"tenants/{world.a_id}/{slug}.yaml").write_text(yaml.safe_dump_all([tenant, branding]))
    checked = _tenantry_validate(repo)
    assert checked.returncode == 1, checked.stdout + checked.stderr
    assert [line.split(": ")[1] for line in checked.stdout.splitlines()] == ["spec.welcome.en"], checked.stdout
