"""The partner portal's identity, scope and pages over real HTTP on loopback (no cluster).

The portal runs as in production (aiohttp's test server, its own Gate, Cluster caches and templates)
with the API server's answers played by fakes, named as such, for what a unit test cannot run: a
FakeReviewer answers TokenReviews and SubjectAccessReviews, a FakeEventList the customer's Events,
a FakePrometheus the portal's own history queries. tests/e2e/test_portal.py runs the same paths
against the real API server, Prometheus and Chromium.

Tested here:
- identity (portal/identity.py): a token the API server accepts is the user it names, one that it
  does not is nobody; a token of characters no bearer token has is never sent for review; answers
  are remembered by token (one review for many requests); the SubjectAccessReview asks `get
  tenants` in the namespace with the user's groups, uid and extra; a review that fails is no access
  and is not remembered (fail closed); a platform admin sees every partner, others those RBAC allows
- paths (portal/server.py): no token is 401 on every page with a Bearer challenge; a token the API
  server refuses is 401; a tenant admin (or anyone without a partner) is 403; a partner one may not
  see answers exactly as one that does not exist; the login cookie is HttpOnly, SameSite=Strict,
  Secure and __Host- (no tenant site of the platform domain can set it), and sent twice it is nobody's
- an authenticating proxy's headers are used only when the settings say so, never for `system:`
  users or groups, and never when sent twice (401, and no review asked for them); a
  SubjectAccessReview failure is 403
- the customers page: the support-level column (the tier set, the first tier when none is set, a
  tier the platform does not have marked as such); the seats-soon, inactive, low-adoption and churn
  signals from the partner's history, on the page and in the JSON
- the customer page: the seat forecast (with and without a trend), custom domains with the exact
  DNS records and the verification state of each, conditions, and recent events (newest first, at
  most 20, escaped)
- the onboarding form: a slug a customer has is refused next to the field; a valid form downloads
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import re
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from html.parser import HTMLParser
from http.cookies import SimpleCookie
from types import SimpleNamespace
from typing import Any, TypeVar

import pytest
from aiohttp.test_utils import TestClient, TestServer
from multidict import CIMultiDict

from tenantry.adapters.http import ApiFailure
from tenantry.portal import gather, model, server
from tenantry.portal.gather import Cluster, history_queries
from tenantry.portal.identity import Busy, Gate, Identity
from tenantry.portal.settings import PortalSettings

PLATFORM = "tenantry-system"
T = TypeVar("T")

# token -> (user, groups)
TOKENS = {
    "acme-token": ("system:serviceaccount:partner-acme:gitops", ("system:serviceaccounts",)),
    "beta-token": ("system:serviceaccount:partner-beta:gitops", ("system:serviceaccounts",)),
    "admin-token": ("system:serviceaccount:tenant-mustermann:admin", ("system:serviceaccounts",)),
    "platform-token": ("carol", ("platform-team",)),
}
# (user or group, namespace) allowed to get tenants; "" is every namespace (a ClusterRoleBinding).
RIGHTS = {("system:serviceaccount:partner-acme:gitops", "partner-acme"),
          ("system:serviceaccount:partner-beta:gitops", "partner-beta"),
          ("platform-team", ""), ("proxy-staff", "partner-acme")}


class FakeReviewer:
    """Stands in for the API server's TokenReview and SubjectAccessReview endpoints: the tokens it
    accepts and the rights RBAC would grant. Records every review asked for."""

    def __init__(self, tokens: Mapping[str, tuple[str, tuple[str, ...]]] = TOKENS,
                 rights: set[tuple[str, str]] = RIGHTS) -> None:
        self.tokens, self.rights = tokens, rights
        self.reviews: list[tuple[str, dict[str, Any]]] = []
        self.failing = False  # SubjectAccessReviews answered with an error (an overloaded API server)

    async def request(self, method: str, path: str, body: Any = None, params: Any = None) -> dict[str, Any]:
        kind, spec = body["kind"], body["spec"]
        assert method == "POST"
        self.reviews.append((kind, spec))
        if kind == "TokenReview":
            assert path == "/apis/authentication.k8s.io/v1/tokenreviews"
            found = self.tokens.get(spec["token"])
            if found is None:
                return {"status": {"authenticated": False, "error": "invalid bearer token"}}
            user, groups = found
            return {"status": {"authenticated": True, "user": {
                "username": user, "uid": f"uid-{user}", "groups": list(groups),
                "extra": {"authentication.kubernetes.io/pod-name": ["p"]}}}}
        assert (kind, path) == ("SubjectAccessReview", "/apis/authorization.k8s.io/v1/subjectaccessreviews")
        if self.failing:
            raise ApiFailure(429, "TooManyRequests", "the API server is overloaded")
        attributes = spec["resourceAttributes"]
        assert (attributes["group"], attributes["resource"], attributes["verb"]) == ("tenantry.dev", "tenants", "get")
        namespace = attributes["namespace"]
        subjects = {spec["user"], *spec.get("groups", ())}
        allowed = any((s, "") in self.rights or (namespace and (s, namespace) in self.rights) for s in subjects)
        return {"status": {"allowed": allowed}}

    def asked_about(self, kind: str) -> list[dict[str, Any]]:
        return [spec for k, spec in self.reviews if k == kind]


class FakeEventList:
    """Stands in for the API server's list of Events (the only request a page makes)."""

    def __init__(self, events: Mapping[tuple[str, str], list[dict[str, Any]]]) -> None:
        self.events = events

    async def request(self, method: str, path: str, body: Any = None,
                      params: Mapping[str, str] | None = None) -> dict[str, Any]:
        found = re.fullmatch(r"/api/v1/namespaces/([^/]+)/events", path)
        assert method == "GET" and found and params is not None
        selector = dict(part.split("=", 1) for part in params["fieldSelector"].split(","))
        assert selector["involvedObject.kind"] == "Tenant"
        return {"items": list(self.events.get((found.group(1), selector["involvedObject.name"]), []))}


class HeldEventList(FakeEventList):
    """A FakeEventList that answers once `release` is set (a slow API server), counting the lists."""

    def __init__(self, events: Mapping[tuple[str, str], list[dict[str, Any]]]) -> None:
        super().__init__(events)
        self.release, self.asked = asyncio.Event(), 0

    async def request(self, method: str, path: str, body: Any = None,
                      params: Mapping[str, str] | None = None) -> dict[str, Any]:
        self.asked += 1
        await self.release.wait()
        return await super().request(method, path, body, params)


class FakePrometheus:
    """Stands in for Prometheus: answers the portal's own history queries of one partner (and
    fails the test on any other query)."""

    selector = ""

    def __init__(self, partner: str, answers: Mapping[str, Mapping[str, float]]) -> None:
        self.names = {expr: name for name, expr in history_queries(partner).items()}
        self.answers = answers

    async def query(self, expr: str) -> list[tuple[dict[str, str], float]]:
        name = self.names[expr]  # a query the portal did not build for this partner: KeyError
        label = "currency" if name == "partner_mrr_30d_ago" else "tenant"
        return [({label: key}, value) for key, value in self.answers.get(name, {}).items()]

    async def close(self) -> None:
        pass


def namespace(name: str, partner: str | None, **annotations: str) -> dict[str, Any]:
    labels = {"tenantry.dev/partner": partner} if partner else {}
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "labels": labels, "annotations": annotations, "resourceVersion": "1"}}


def tenant(ns: str, slug: str, company: str, seats: int, active: int, mrr: float, status: dict[str, Any] | None = None,
           **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "tenantry.dev/v1alpha1", "kind": "Tenant",
            "metadata": {"name": slug, "namespace": ns, "resourceVersion": "1"},
            "spec": {"company": company, "contact": {"name": "C", "email": f"c@{slug}.example"},
                     "plan": {"featureSet": "business", "seats": seats, "price": {"monthly": mrr, "currency": "EUR"}},
                     **spec},
            "status": {"namespace": f"tenant-{slug}", "usage": {"activeUsers": active, "requests": {"chat": 100}},
                       **(status or {})}}


MUSTERMANN_STATUS = {
    "domains": [
        {"name": "ki.mustermann.de", "verified": True, "records": [
            {"type": "CNAME", "name": "ki.mustermann.de.", "value": "mustermann.platform.test."},
            {"type": "TXT", "name": "_tenantry-challenge.ki.mustermann.de.", "value": "tenantry-verify=abc123"}]},
        {"name": "chat.mustermann.de", "verified": False, "message": "no TXT record found yet", "records": [
            {"type": "CNAME", "name": "chat.mustermann.de.", "value": "mustermann.platform.test."},
            {"type": "TXT", "name": "_tenantry-challenge.chat.mustermann.de.", "value": "tenantry-verify=def456"}]},
    ],
    "conditions": [
        {"type": "Ready", "status": "True", "reason": "Reconciled", "message": "all set",
         "lastTransitionTime": "2026-11-30T10:00:00Z"},
        {"type": "DomainsVerified", "status": "False", "reason": "DomainNotVerified",
         "message": "chat.mustermann.de: no TXT record found yet", "lastTransitionTime": "2026-11-30T11:00:00Z"},
    ],
}
# 25 events of mustermann's, oldest first; one with markup in its message.
EVENTS = {("partner-acme", "mustermann"): [
    {"lastTimestamp": f"2026-11-30T10:{minute:02d}:00Z", "type": "Normal", "reason": f"Step{minute}",
     "message": "<b>bold</b>" if minute == 24 else f"step {minute}"} for minute in range(25)]}


def world(*, trust_proxy_headers: bool = False, prometheus: FakePrometheus | None = None,
          secure_cookie: bool = False) -> tuple[server.Portal, FakeReviewer]:
    """Two partners (acme: five customers; beta: one), a tenant namespace, the platform's."""
    cluster = Cluster(FakeEventList(EVENTS), PLATFORM, 0.2)  # type: ignore[arg-type]
    for ns in (namespace("partner-acme", "acme", **{"tenantry.dev/commission-rate": "0.25"}),
               namespace("partner-beta", "beta"), namespace(PLATFORM, None),
               namespace("tenant-mustermann", "acme")):
        if ns["metadata"]["name"] == "tenant-mustermann":
            ns["metadata"]["labels"]["tenantry.dev/tenant"] = "mustermann"
        cluster.namespaces.observe("ADDED", ns)
    for body in (
        tenant("partner-acme", "mustermann", "Mustermann GmbH", 100, 60, 1000.0, MUSTERMANN_STATUS,
               supportLevel="Premium", domains=["ki.mustermann.de", "chat.mustermann.de"]),
        tenant("partner-acme", "klein", "Klein KG", 20, 12, 200.0, supportLevel="Gold"),
        tenant("partner-acme", "idle", "Idle AG", 50, 30, 500.0),
        tenant("partner-acme", "lowly", "Lowly OHG", 100, 10, 300.0),
        tenant("partner-acme", "paused", "Paused SE", 10, 0, 100.0, state="Suspended"),
        tenant("partner-beta", "geheim", "Beta Geheim Holding", 77, 61, 7777.77),
    ):
        cluster.kinds["Tenant"].observe("ADDED", body)
    cluster.kinds["FeatureSet"].observe("ADDED", {
        "apiVersion": "tenantry.dev/v1alpha1", "kind": "FeatureSet",
        "metadata": {"name": "business", "namespace": PLATFORM, "resourceVersion": "1"},
        "spec": {"features": {"chat": {"enabled": True}}}})
    cluster.kinds["Branding"].observe("ADDED", {
        "apiVersion": "tenantry.dev/v1alpha1", "kind": "Branding",
        "metadata": {"name": "default", "namespace": PLATFORM, "resourceVersion": "1"},
        "spec": {"colours": {"primary": "#112233"}}})
    settings = PortalSettings(platform_namespace=PLATFORM, platform_domain="platform.test",
                              secure_cookie=secure_cookie, trust_proxy_headers=trust_proxy_headers)
    reviewer = FakeReviewer()
    portal = server.Portal(settings=settings, gate=Gate(reviewer), cluster=cluster,  # type: ignore[arg-type]
                           prometheus=prometheus, templates=server._templates())  # type: ignore[arg-type]
    return portal, reviewer


@pytest.fixture(autouse=True)
def _no_remembered_history(monkeypatch: pytest.MonkeyPatch) -> None:
    """A partner's history is remembered per Prometheus object for a minute: not across tests."""
    monkeypatch.setattr(gather, "_remembered", {})


def serve(portal: server.Portal, scenario: Callable[[TestClient], Awaitable[T]]) -> T:
    """Runs `scenario` against the portal's application on a loopback port."""
    async def run() -> T:
        async with TestClient(TestServer(server.application(portal))) as client:
            return await scenario(client)
    return asyncio.run(run())


async def fetch(client: TestClient, path: str, token: str | None = None, headers: Mapping[str, str] | None = None,
                method: str = "GET", data: Any = None) -> tuple[int, str, Mapping[str, str]]:
    sent = dict(headers or {})
    if token:
        sent["Authorization"] = f"Bearer {token}"
    async with client.request(method, path, headers=sent, data=data, allow_redirects=False) as response:
        return response.status, await response.text(), response.headers


class Tables(HTMLParser):
    """The rows of every table with an id (each row's attributes and the text of its cells), and
    the text of every element with an id; text with its whitespace collapsed."""

    VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"})

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tables: dict[str, list[tuple[dict[str, str], list[str]]]] = {}
        self._texts: dict[str, list[str]] = {}
        self._table: str | None = None
        self._cell: list[str] | None = None
        self._open: list[tuple[str, str]] = []  # (tag, id) of the elements open now
        self.feed(html)
        self.close()
        self.texts = {key: " ".join(" ".join(parts).split()) for key, parts in self._texts.items()}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {k: v or "" for k, v in attrs}
        if tag == "table" and attributes.get("id"):
            self._table = attributes["id"]
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self.tables[self._table].append((attributes, []))
        elif tag in ("td", "th") and self._table is not None:
            self._cell = []
        if tag not in self.VOID:
            self._open.append((tag, attributes.get("id", "")))
            if attributes.get("id"):
                self._texts[attributes["id"]] = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._table = None
        elif tag in ("td", "th") and self._cell is not None and self._table is not None:
            self.tables[self._table][-1][1].append(" ".join(" ".join(self._cell).split()))
            self._cell = None
        if any(open_tag == tag for open_tag, _ in self._open):  # a self-closed <rect/> was never opened
            while self._open.pop()[0] != tag:
                pass

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        for _, element in self._open:
            if element:
                self._texts[element].append(data)

    def body_rows(self, table: str) -> list[tuple[dict[str, str], list[str]]]:
        """The rows below the table's heading."""
        return self.tables[table][1:]


# --- identity (portal/identity.py) ---------------------------------------------------------------


def test_a_token_is_the_user_the_api_server_names_and_is_reviewed_once() -> None:
    async def scenario() -> None:
        reviewer = FakeReviewer()
        gate = Gate(reviewer, audiences=("portal",))  # type: ignore[arg-type]
        who = await gate.review_token("acme-token")
        assert who == Identity("system:serviceaccount:partner-acme:gitops", ("system:serviceaccounts",),
                               "uid-system:serviceaccount:partner-acme:gitops",
                               {"authentication.kubernetes.io/pod-name": ("p",)})
        assert await gate.review_token("acme-token") == who
        assert await gate.review_token("made-up") is None and await gate.review_token("made-up") is None
        # Characters no bearer token has: not worth a review.
        for odd in ("two words", "<script>", "tök", ""):
            assert await gate.review_token(odd) is None
        asked = reviewer.asked_about("TokenReview")
        assert [spec["token"] for spec in asked] == ["acme-token", "made-up"]  # each remembered once reviewed
        assert all(spec["audiences"] == ["portal"] for spec in asked)
    asyncio.run(scenario())


def test_access_is_what_rbac_allows_and_a_failed_review_is_no_access() -> None:
    async def scenario() -> None:
        reviewer = FakeReviewer()
        gate = Gate(reviewer)  # type: ignore[arg-type]
        acme = await gate.review_token("acme-token")
        assert acme is not None
        assert await gate.may_get_tenants(acme, "partner-acme") is True
        assert await gate.may_get_tenants(acme, "partner-beta") is False
        assert await gate.may_get_tenants(acme, "") is False
        spec = reviewer.asked_about("SubjectAccessReview")[0]
        assert (spec["user"], spec["groups"], spec["uid"], spec["extra"]) == (
            acme.user, list(acme.groups), acme.uid, {"authentication.kubernetes.io/pod-name": ["p"]})
        assert spec["resourceAttributes"]["namespace"] == "partner-acme"
        partners = {"acme": "partner-acme", "beta": "partner-beta"}
        assert await gate.visible(acme, partners) == {"acme": "partner-acme"}
        platform = Identity("carol", ("platform-team",))
        assert await gate.visible(platform, partners) == partners and await gate.may_see(platform, "partner-beta")
        # Failing reviews: no access, and not remembered (the next review, answered, decides).
        reviewer.failing = True
        other = Identity("dave", ("proxy-staff",))
        assert await gate.may_get_tenants(other, "partner-acme") is False
        assert await gate.visible(other, partners) == {}
        reviewer.failing = False
        assert await gate.may_get_tenants(other, "partner-acme") is True
        # Remembered: asked again, no new review.
        before = len(reviewer.reviews)
        assert await gate.may_get_tenants(other, "partner-acme") is True and len(reviewer.reviews) == before
    asyncio.run(scenario())


# --- paths (portal/server.py) --------------------------------------------------------------------

PAGES = ["/", "/p/acme/customers", "/p/acme/customers.json", "/p/acme/customers/mustermann",
         "/p/acme/customers/mustermann/usage.csv", "/p/acme/revenue", "/p/acme/pipeline", "/p/acme/onboard"]


def test_no_token_is_401_a_refused_token_401_and_a_tenant_admin_403() -> None:
    portal, reviewer = world()

    async def scenario(client: TestClient) -> None:
        for path in PAGES:
            status, _, headers = await fetch(client, path)
            assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer"), path
            assert (await fetch(client, path, token="not-accepted"))[0] == 401, path
            assert (await fetch(client, path, token="x" * 8001))[0] == 401, path  # longer than any token
            assert (await fetch(client, path, token="admin-token"))[0] == 403, path
        # The portal's own health check and stylesheet need no token.
        assert (await fetch(client, "/healthz"))[0] == 200 and (await fetch(client, "/static/portal.css"))[0] == 200
        # Nobody without a partner was let through to a page.
        assert all(spec["user"] == TOKENS["admin-token"][0] for spec in reviewer.asked_about("SubjectAccessReview"))
        assert "x" * 8001 not in [spec["token"] for spec in reviewer.asked_about("TokenReview")]
    serve(portal, scenario)


def test_another_partner_answers_exactly_as_one_that_does_not_exist() -> None:
    portal, _ = world()

    async def scenario(client: TestClient) -> None:
        assert (await fetch(client, "/p/acme/customers", token="acme-token"))[0] == 200
        status, body, _ = await fetch(client, "/", token="acme-token")
        assert status == 302  # one partner: straight to its customers
        answers = {(await fetch(client, path, token="acme-token"))[:2]
                   for path in ["/p/beta/customers", "/p/beta/customers/geheim", "/p/beta/customers.json",
                                "/p/beta/revenue", "/p/nobody/customers", "/p/beta/customers/geheim/usage.csv"]}
        assert len(answers) == 1 and next(iter(answers))[0] == 403
        assert "geheim" not in next(iter(answers))[1].lower()
        # A customer of another partner's, under one's own partner: not found there.
        assert (await fetch(client, "/p/acme/customers/geheim", token="acme-token"))[0] == 404
        # A platform admin sees both.
        status, body, _ = await fetch(client, "/", token="platform-token")
        assert status == 200 and "/p/acme/customers" in body and "/p/beta/customers" in body
    serve(portal, scenario)


def test_login_sets_an_httponly_strict_cookie_that_then_identifies() -> None:
    portal, _ = world(secure_cookie=True)

    async def scenario(client: TestClient) -> None:
        status, _, _ = await fetch(client, "/login", method="POST", data={"token": "not-accepted"})
        assert status == 401
        async with client.post("/login", data={"token": "acme-token"}, allow_redirects=False) as response:
            assert response.status == 303
            cookie = response.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" in cookie
        # __Host-: no other host of the platform domain (a tenant's site) can set it for the portal.
        value = re.match(r"__Host-tenantry_portal=([^;]+)", cookie)
        assert value is not None
        status, _, _ = await fetch(client, "/p/acme/customers",
                                   headers={"Cookie": f"__Host-tenantry_portal={value.group(1)}"})
        assert status == 200
        # Sent twice (one set by another site, which aiohttp would take): nobody's.
        for twice in (f"__Host-tenantry_portal={value.group(1)}; __Host-tenantry_portal=beta-token",
                      f"__Host-tenantry_portal=beta-token; __Host-tenantry_portal={value.group(1)}"):
            assert (await fetch(client, "/p/acme/customers", headers={"Cookie": twice}))[0] == 401
        status, _, _ = await fetch(client, "/login", method="POST", data={"token": "acme-token"},
                                   headers={"Origin": "https://evil.example"})
        assert status == 403  # a form posted from another site
    serve(portal, scenario)


@pytest.mark.parametrize("secure", [True, False])
def test_logout_deletes_the_cookie_as_it_was_set(secure: bool) -> None:
    """Browsers ignore a __Host- cookie without Secure, its deletion too: the deletion carries the
    attributes of the login's cookie."""
    portal, _ = world(secure_cookie=secure)

    async def scenario(client: TestClient) -> None:
        async with client.post("/login", data={"token": "acme-token"}, allow_redirects=False) as response:
            login = SimpleCookie(response.headers["Set-Cookie"])[portal.cookie]
        async with client.post("/logout", allow_redirects=False) as response:
            assert response.status == 303 and response.headers["Location"] == "/login"
            assert "Clear-Site-Data" not in response.headers  # (it would clear every tenant site's cookies)
            gone = SimpleCookie(response.headers["Set-Cookie"])[portal.cookie]
        assert gone.value == "" and gone["max-age"] == "0"
        for attribute in ("secure", "httponly", "samesite", "path"):
            assert gone[attribute] == login[attribute], attribute
        assert bool(gone["secure"]) is secure
    serve(portal, scenario)


def _jwt(claims: Mapping[str, Any]) -> str:
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    return f"eyJhbGciOiJSUzI1NiJ9.{payload}.c2lnbmF0dXJl"


def test_the_session_ends_when_its_token_does() -> None:
    now = 1_800_000_000.0
    assert server.session_seconds(_jwt({"exp": now + 3600}), now) == 3600  # a bound token: its hour
    assert server.session_seconds(_jwt({"exp": now + 86400}), now) == server.SESSION_SECONDS  # at most 8 h
    assert server.session_seconds(_jwt({"exp": now - 5}), now) == -5
    # No expiry to read (a legacy ServiceAccount token's JWT without exp, an opaque token, nonsense):
    for token in (_jwt({"sub": "x"}), "opaque-token", "a.b.c", _jwt({"exp": "soon"}), _jwt({"exp": True}),
                  "x." + base64.urlsafe_b64encode(b'{"exp": 1e999}').decode() + ".y",
                  "x." + base64.urlsafe_b64encode(b'{"exp": NaN}').decode() + ".y", _jwt([1, 2])):  # type: ignore[arg-type]
        assert server.session_seconds(token, now) == server.SESSION_SECONDS, token


def test_login_refuses_a_token_no_browser_keeps_or_one_expired(monkeypatch: pytest.MonkeyPatch) -> None:
    portal, reviewer = world(secure_cookie=True)
    long_token = "L" * (server.MAX_COOKIE_TOKEN + 1)
    expired = _jwt({"exp": 1})
    reviewer.tokens = {**reviewer.tokens, long_token: TOKENS["acme-token"], expired: TOKENS["acme-token"]}

    async def scenario(client: TestClient) -> None:
        status, text, _ = await fetch(client, "/login", method="POST", data={"token": long_token})
        assert status == 400 and f"has {len(long_token)} characters; a browser keeps at most" in text
        # Sent as a header it is still the user (no cookie involved).
        assert (await fetch(client, "/p/acme/customers", token=long_token))[0] == 200
        status, text, _ = await fetch(client, "/login", method="POST", data={"token": expired})
        assert status == 401 and "This token has expired." in text
        async with client.post("/login", data={"token": _jwt({"exp": time.time() + 600})},
                               allow_redirects=False) as response:
            assert response.status == 401  # (not a token the cluster accepts)
    serve(portal, scenario)


@pytest.mark.parametrize("secure", [True, False])
def test_a_form_from_another_origin_is_refused(secure: bool) -> None:
    """Same host, other scheme: over https (a Secure cookie) an http page of the host is not the
    portal's own (it is whoever sits on the network path), unless the host is a loopback address
    (a secure context to browsers, as in a local try-out)."""
    portal, _ = world(secure_cookie=secure)

    async def scenario(client: TestClient) -> None:
        for host, loopback in (("portal.example", False), ("portal.example:8443", False),
                               (f"127.0.0.1:{client.port}", True), ("localhost:8080", True)):
            for origin, allowed in ((f"https://{host}", True), (f"http://{host}", not secure or loopback),
                                    ("https://evil.example", False), (f"https://{host}.evil.example", False),
                                    ("http://localhost", host == "localhost"), ("null", False)):
                status, _, headers = await fetch(client, "/login", method="POST", data={"token": "acme-token"},
                                                 headers={"Origin": origin, "Host": host})
                assert (status == 303) is allowed and (status == 403) is not allowed, (host, origin)
                assert ("Strict-Transport-Security" in headers) is secure
    serve(portal, scenario)


def test_proxy_headers_only_when_trusted_and_never_system_names() -> None:
    staff = {"X-Forwarded-User": "dave", "X-Forwarded-Groups": "staff, proxy-staff"}
    untrusted, reviewer = world()

    async def ignored(client: TestClient) -> None:
        assert (await fetch(client, "/p/acme/customers", headers=staff))[0] == 401
    serve(untrusted, ignored)
    assert reviewer.reviews == []

    trusted, reviewer = world(trust_proxy_headers=True)

    async def scenario(client: TestClient) -> None:
        assert (await fetch(client, "/p/acme/customers", headers=staff))[0] == 200
        assert (await fetch(client, "/p/beta/customers", headers=staff))[0] == 403
        assert (await fetch(client, "/", headers={"X-Forwarded-User": "nobody"}))[0] == 403
        for forged in ({"X-Forwarded-User": "eve", "X-Forwarded-Groups": "staff,system:masters"},
                       {"X-Forwarded-User": "system:admin"},
                       {"X-Forwarded-User": "system:serviceaccount:partner-acme:gitops"},
                       {"X-Forwarded-User": "eve", "X-Forwarded-Groups": "system:serviceaccounts:partner-acme"}):
            for path in ("/", "/p/acme/customers"):
                assert (await fetch(client, path, headers=forged))[0] == 401, forged
        # A token wins over the headers.
        assert (await fetch(client, "/p/acme/customers", token="admin-token", headers=staff))[0] == 403
        # A header sent twice (a proxy that adds its own to the client's): whose is unknown, nobody's.
        for name, first, second in (("X-Forwarded-User", "mallory", "dave"),
                                    ("X-Forwarded-Groups", "platform-admins", "staff")):
            doubled = CIMultiDict([*staff.items(), (name, first)])
            doubled.add(name, second)
            async with client.get("/p/acme/customers", headers=doubled, allow_redirects=False) as response:
                assert response.status == 401, name
    serve(trusted, scenario)
    asked = reviewer.asked_about("SubjectAccessReview")
    assert asked and not any(spec["user"].startswith("system:") and spec["user"] != TOKENS["admin-token"][0]
                             for spec in asked)
    assert not any(g.startswith("system:masters") for spec in asked for g in spec["groups"])


def test_proxy_prefixes_keep_chosen_names_apart_from_the_clusters() -> None:
    """A group an identity provider lets its users name (platform-team, which RBAC binds here)
    reaches the access review prefixed, so it grants nothing; bindings name the prefixed group."""
    portal, reviewer = world(trust_proxy_headers=True)
    portal.settings = dataclasses.replace(portal.settings, proxy_user_prefix="sso:", proxy_groups_prefix="sso:")
    chosen = {"X-Forwarded-User": "mallory", "X-Forwarded-Groups": "platform-team"}

    async def scenario(client: TestClient) -> None:
        assert (await fetch(client, "/p/acme/customers", headers=chosen))[0] == 403
        reviewer.rights = {*reviewer.rights, ("sso:platform-team", "")}
        assert (await fetch(client, "/p/acme/customers",
                            headers={**chosen, "X-Forwarded-User": "carol"}))[0] == 200
    serve(portal, scenario)
    asked = reviewer.asked_about("SubjectAccessReview")
    assert {spec["user"] for spec in asked} == {"sso:mallory", "sso:carol"}
    assert {g for spec in asked for g in spec["groups"]} == {"sso:platform-team"}


def test_a_failing_access_review_is_403_and_is_asked_again() -> None:
    portal, reviewer = world()

    async def scenario(client: TestClient) -> None:
        reviewer.failing = True
        for path in ("/", "/p/acme/customers", "/p/acme/customers/mustermann"):
            assert (await fetch(client, path, token="acme-token"))[0] == 403, path
        reviewer.failing = False
        assert (await fetch(client, "/p/acme/customers", token="acme-token"))[0] == 200
    serve(portal, scenario)


# --- pages ---------------------------------------------------------------------------------------

HISTORY = {
    "users_in_90d": {"klein": 20.0, "mustermann": 70.4, "idle": 31.0, "lowly": 11.0},  # klein: 20 seats full
    "max_users_7d": {"idle": 0.0, "klein": 12.0, "mustermann": 64.0, "lowly": 10.0},  # idle: nobody for 7 days
    "mrr_30d_ago": {"mustermann": 1000.0, "klein": 200.0, "idle": 600.0, "lowly": 300.0},  # idle: 500 from 600
    "partner_mrr_30d_ago": {"EUR": 2100.0},
}


def test_customers_page_support_levels_and_signals() -> None:
    portal, _ = world(prometheus=FakePrometheus("acme", HISTORY))

    async def scenario(client: TestClient) -> tuple[str, str]:
        page = await fetch(client, "/p/acme/customers", token="acme-token")
        listing = await fetch(client, "/p/acme/customers.json", token="acme-token")
        assert page[0] == listing[0] == 200
        return page[1], listing[1]
    page, listing = serve(portal, scenario)
    rows = {attrs["data-tenant"]: cells for attrs, cells in Tables(page).body_rows("customers")}
    heading = [cells for _, cells in Tables(page).tables["customers"]][0]
    support, signals = heading.index("Support"), heading.index("Signals")
    # The tier set; the platform's first tier when none is set; one the platform lacks, marked.
    assert {slug: cells[support] for slug, cells in rows.items()} == {
        "mustermann": "Premium", "klein": "Gold (not a platform tier)", "idle": "Standard", "lowly": "Standard",
        "paused": "Standard"}
    # Utilisation of the Active customers 0.6, 0.6, 0.6, 0.1: median 0.6, half of it 0.3.
    assert {slug: cells[signals] for slug, cells in rows.items()} == {
        "mustermann": "", "klein": "seat limit within 90 days", "idle": "inactive for 7 days falling revenue",
        "lowly": "low adoption", "paused": ""}
    found = {row["tenant"]: row["signals"] for row in json.loads(listing)["customers"]}
    assert found == {"mustermann": [], "klein": ["seats-soon"], "idle": ["inactive", "churn"],
                     "lowly": ["low-adoption"], "paused": []}


def test_a_paused_customer_bills_nothing_and_shows_its_list_price_as_such() -> None:
    """The row showed a Suspended customer's list price as its MRR, while the totals, the commission
    and `tenantry report` count it as nothing."""
    portal, _ = world()

    async def scenario(client: TestClient) -> tuple[str, dict[str, Any], str]:
        page = (await fetch(client, "/p/acme/customers", token="acme-token"))[1]
        rows = json.loads((await fetch(client, "/p/acme/customers.json", token="acme-token"))[1])["customers"]
        csv_text = (await fetch(client, "/p/acme/customers/paused/usage.csv", token="acme-token"))[1]
        return page, {r["tenant"]: r for r in rows}, csv_text
    page, rows, csv_text = serve(portal, scenario)
    table = {attributes["data-tenant"]: cells for attributes, cells in Tables(page).body_rows("customers")}
    paused, klein = table["paused"], table["klein"]
    assert "0.00 EUR (list price 100.00, not billed while Suspended)" in paused
    assert "200.00 EUR" in klein and not any("list price" in cell for cell in klein)
    assert (rows["paused"]["mrr"], rows["paused"]["billedMrr"], rows["paused"]["commission"]) == (100.0, 0.0, 0.0)
    assert (rows["klein"]["mrr"], rows["klein"]["billedMrr"]) == (200.0, 200.0)
    header, line = csv_text.splitlines()[:2]
    first = dict(zip(header.split(","), line.split(","), strict=True))
    assert (first["mrr"], first["billed_mrr"]) == ("100.00", "0.00")


def test_signals_need_history_and_an_active_customer() -> None:
    none_yet = gather.History({}, {}, False)
    body = tenant("partner-acme", "lowly", "Lowly OHG", 100, 0, 300.0)
    plans: dict[tuple[str, str], Mapping[str, Any]] = {}
    quiet = gather.customer(body, plans, PLATFORM, none_yet)
    # No history: no forecast, no inactivity, no trend (never guessed from zero).
    assert (quiet.users_in_90d, quiet.max_users_7d, quiet.mrr_trend) == (None, None, None)
    assert model.signals(quiet, 0.5) == ("low-adoption",)
    suspended = gather.customer(tenant("partner-acme", "s", "S", 100, 0, 300.0, state="Suspended"), plans,
                                PLATFORM, none_yet)
    assert model.signals(suspended, 0.5) == ()  # low adoption is an Active customer's signal
    past = gather.History({"users_in_90d": {"lowly": 100.0}, "max_users_7d": {"lowly": 0.0},
                           "mrr_30d_ago": {"lowly": 315.8}}, {}, True)
    judged = gather.customer(body, plans, PLATFORM, past)
    assert model.signals(judged, 0.0) == ("seats-soon", "inactive", "churn")  # -5.0 % is falling
    assert model.signals(gather.customer(body, plans, PLATFORM, gather.History(
        {"mrr_30d_ago": {"lowly": 315.7}}, {}, True)), 0.0) == ()  # -4.97 %


@pytest.mark.parametrize(("predicted", "words"), [
    (None, "no trend yet"), (-3.0, "0 active users in 90 days at the current trend, of 100 licensed seats"),
    (99.6, "100 active users in 90 days at the current trend, of 100 licensed seats"),
    (100.0, "100 active users in 90 days at the current trend: the 100 licensed seats will be used up"),
    (180.2, "180 active users in 90 days at the current trend: the 100 licensed seats will be used up"),
])
def test_seat_forecast(predicted: float | None, words: str) -> None:
    c = model.Customer("a", "A", "Active", "business", 100, 50, 1.0, "EUR", "", users_in_90d=predicted)
    assert model.seat_forecast(c).startswith(words)
    # The forecast and the seats-soon signal agree.
    assert ("will be used up" in model.seat_forecast(c)) is ("seats-soon" in model.signals(c, 0.0))


def test_customer_page_forecast_domains_conditions_and_events() -> None:
    portal, _ = world(prometheus=FakePrometheus("acme", HISTORY))
    plain, _ = world()

    async def scenario(client: TestClient) -> str:
        status, page, _ = await fetch(client, "/p/acme/customers/mustermann", token="acme-token")
        assert status == 200
        return page
    page = serve(portal, scenario)
    without_history = serve(plain, scenario)
    found = Tables(page)
    assert found.texts["forecast"] == "70 active users in 90 days at the current trend, of 100 licensed seats"
    assert Tables(without_history).texts["forecast"].startswith("no trend yet")
    assert found.texts["seats"] == "60 of 100 licensed seats in use (60 %)"
    # Each custom domain: its verification state and the exact records to create.
    domains = re.findall(r'<div class="domain" data-domain="([^"]+)">\s*<h3>[^<]*'
                         r'<span class="(ok|warn)">([^<]+)</span>', page)
    assert domains == [("ki.mustermann.de", "ok", "verified"), ("chat.mustermann.de", "warn", "not verified")]
    assert "no TXT record found yet" in page
    for d in MUSTERMANN_STATUS["domains"]:
        for r in d["records"]:
            assert f'<tr><td>{r["type"]}</td><td><code>{r["name"]}</code></td><td><code>{r["value"]}</code></td></tr>' \
                in page
    # Conditions as the status holds them.
    assert [cells for _, cells in found.body_rows("conditions")] == [
        ["Ready", "True", "Reconciled", "all set", "2026-11-30T10:00:00Z"],
        ["DomainsVerified", "False", "DomainNotVerified", "chat.mustermann.de: no TXT record found yet",
         "2026-11-30T11:00:00Z"]]
    # Recent events: the newest 20, newest first, markup shown as text.
    events = [cells for _, cells in found.body_rows("events")]
    assert len(events) == 20 and [e[2] for e in events[:2]] == ["Step24", "Step23"] and events[-1][2] == "Step5"
    assert events[0][3] == "<b>bold</b>" and "&lt;b&gt;bold&lt;/b&gt;" in page and "<b>bold</b>" not in page


def test_a_partner_reloading_customer_pages_costs_few_event_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every customer page listed Events from the API server, over the connections the logins'
    reviews need: a Tenant's Events are asked for once per EVENTS_SECONDS (the same question under
    way once), and at most EVENTS_PER_PARTNER of one partner at a time (beyond: 503 at once)."""
    clock = [1000.0]
    monkeypatch.setattr(gather, "time", SimpleNamespace(monotonic=lambda: clock[0], time=time.time))
    listing = HeldEventList(EVENTS)
    cluster = Cluster(listing, PLATFORM, 0.2)  # type: ignore[arg-type]

    async def scenario() -> None:
        first = [asyncio.ensure_future(cluster.events("partner-acme", "mustermann")) for _ in range(5)]
        other = asyncio.ensure_future(cluster.events("partner-acme", "klein"))
        for _ in range(100):  # until the tasks have reached the API server (no wall time involved)
            await asyncio.sleep(0)
        assert listing.asked == 2  # five pages of one customer: one list
        with pytest.raises(Busy):
            await cluster.events("partner-acme", "idle")  # a third customer of acme's at once
        beta = asyncio.ensure_future(cluster.events("partner-beta", "geheim"))  # not held up by acme
        for _ in range(100):
            await asyncio.sleep(0)
        assert listing.asked == 3
        listing.release.set()
        answers = await asyncio.gather(*first)
        assert all(a == answers[0] for a in answers) and answers[0]
        await asyncio.gather(other, beta)
        await cluster.events("partner-acme", "mustermann")
        assert listing.asked == 3  # remembered
        clock[0] += gather.EVENTS_SECONDS + 1
        await cluster.events("partner-acme", "mustermann")
        assert listing.asked == 4  # asked again once it is older
    asyncio.run(scenario())


def test_a_customer_without_domains_events_or_conditions() -> None:
    portal, _ = world()

    async def scenario(client: TestClient) -> str:
        return (await fetch(client, "/p/acme/customers/klein", token="acme-token"))[1]
    page = serve(portal, scenario)
    assert "No custom domains." in page and "No recent events." in page
    assert Tables(page).body_rows("conditions") == []


def test_the_form_refuses_a_customers_slug_and_downloads_a_valid_one() -> None:
    portal, _ = world()
    form = {"company": "Neu GmbH", "slug": "mustermann", "contact_name": "Eva", "contact_email": "eva@neu.de",
            "plan": "business", "seats": "5", "domain": "ki.mustermann.de"}

    async def scenario(client: TestClient) -> None:
        status, page, _ = await fetch(client, "/p/acme/onboard", token="acme-token", method="POST", data=form)
        assert status == 400 and 'id="yaml"' not in page
        errors = re.findall(r'<p class="error" data-field="(\w+)">([^<]*)</p>', page)
        assert {field for field, _ in errors} == {"slug", "domain"}
        assert "Mustermann GmbH" in dict(errors)["slug"]
        # Another partner's customer is none of this partner's business: not reported as taken.
        free = {**form, "slug": "geheim", "domain": "ki.neu.de"}
        status, text, headers = await fetch(client, "/p/acme/onboard?download=1", token="acme-token",
                                            method="POST", data=free)
        assert status == 200 and headers["Content-Type"].startswith("application/yaml")
        assert headers["Content-Disposition"] == 'attachment; filename="geheim.yaml"'
        assert "name: geheim" in text and "Beta Geheim" not in text
    serve(portal, scenario)


def test_the_form_reads_the_partners_tenants_off_the_event_loop_within_the_check_limit(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Decoding a partner's Tenants (some 10,000) on every POST: in the worker thread that runs the
    check, and only two at a time, so a flood of POSTs cannot stall the portal for everyone."""
    portal, _ = world()
    seen: list[tuple[bool, int]] = []
    reduce = server.existing

    def recording(tenants: Any) -> Any:
        try:
            asyncio.get_running_loop()
            on_loop = True
        except RuntimeError:
            on_loop = False
        seen.append((on_loop, portal.checks._value))
        return reduce(tenants)
    monkeypatch.setattr(server, "existing", recording)
    form = {"company": "Neu GmbH", "slug": "mustermann", "contact_name": "Eva", "contact_email": "eva@neu.de",
            "plan": "business", "seats": "5"}

    async def scenario(client: TestClient) -> str:
        status, page, _ = await fetch(client, "/p/acme/onboard", token="acme-token", method="POST", data=form)
        assert status == 400
        return page
    page = serve(portal, scenario)
    assert "Mustermann GmbH" in page  # the partner's Tenants were still read
    assert seen == [(False, 1)]  # in a worker thread, holding one of the two places


def test_one_partners_flood_of_form_checks_holds_up_no_one_else(monkeypatch: pytest.MonkeyPatch) -> None:
    """A partner with a large catalogue posting its form 20 times at once made another partner's
    check wait 10 s behind it: one check per partner under way (a second is 503 at once), and at
    most CHECKS_WAITING partners' checks under way or waiting."""
    portal, _ = world()
    release = threading.Event()
    reduce = server.existing

    def slow_for_acme(tenants: Any) -> Any:
        tenants = list(tenants)
        if any(t["metadata"]["namespace"] == "partner-acme" for t in tenants):
            release.wait(30)
        return reduce(tenants)
    monkeypatch.setattr(server, "existing", slow_for_acme)
    form = {"company": "Neu GmbH", "slug": "neu", "contact_name": "Eva", "contact_email": "eva@neu.de",
            "plan": "business", "seats": "5"}

    async def scenario(client: TestClient) -> None:
        first = asyncio.ensure_future(fetch(client, "/p/acme/onboard", token="acme-token", method="POST", data=form))
        for _ in range(10_000):
            if "partner-acme" in portal._checking:
                break
            await asyncio.sleep(0.001)
        status, _, headers = await fetch(client, "/p/acme/onboard", token="acme-token", method="POST", data=form)
        assert status == 503 and headers["Retry-After"] == "1"
        # Another partner's check is not queued behind acme's.
        assert (await fetch(client, "/p/beta/onboard", token="beta-token", method="POST", data=form))[0] == 200
        portal._checking.update(f"partner-{i}" for i in range(server.CHECKS_WAITING))
        assert (await fetch(client, "/p/beta/onboard", token="beta-token", method="POST", data=form))[0] == 503
        portal._checking.difference_update(f"partner-{i}" for i in range(server.CHECKS_WAITING))
        release.set()
        assert (await first)[0] == 200
        assert portal._checking == set()
    serve(portal, scenario)


def test_tenants_from_thread_leaves_out_one_deleted_meanwhile() -> None:
    portal, _ = world()
    cluster = portal.cluster
    assert [t["metadata"]["name"] for t in cluster.tenants_from_thread("partner-acme")] == \
        [t["metadata"]["name"] for t in cluster.tenants("partner-acme")]
    informer = cluster.kinds["Tenant"]
    get = informer.get
    informer.get = lambda ns, name: None if name == "idle" else get(ns, name)  # type: ignore[method-assign]
    assert "idle" not in [t["metadata"]["name"] for t in cluster.tenants_from_thread("partner-acme")]


def test_a_partners_customers_are_worked_out_off_the_loop_once_per_change(monkeypatch: pytest.MonkeyPatch) -> None:
    """A partner of 10,000 Tenants took a second of the event loop on every page (an attacker's
    review): the customers are worked out in a worker thread, and again only after the partner's
    Tenants (or the plans) changed."""
    portal, _ = world()
    built: list[bool] = []
    original = portal._customers_of

    def recording(*args: Any) -> Any:
        try:
            asyncio.get_running_loop()
            built.append(True)
        except RuntimeError:
            built.append(False)
        return original(*args)
    monkeypatch.setattr(portal, "_customers_of", recording)

    def changed(body: dict[str, Any]) -> dict[str, Any]:
        return {**body, "metadata": {**body["metadata"], "resourceVersion": "2"}}  # a newer version

    async def seats(client: TestClient) -> dict[str, int]:
        status, text, _ = await fetch(client, "/p/acme/customers.json", token="acme-token")
        assert status == 200
        return {row["tenant"]: row["seats"] for row in json.loads(text)["customers"]}

    async def scenario(client: TestClient) -> None:
        for _ in range(3):
            assert (await fetch(client, "/p/acme/customers", token="acme-token"))[0] == 200
        portal.cluster.kinds["Tenant"].observe("MODIFIED", changed(tenant("partner-acme", "klein", "Klein KG", 25, 12,
                                                                          250.0, supportLevel="Gold")))
        assert (await seats(client))["klein"] == 25  # the change is shown at once
        portal.cluster.kinds["Tenant"].observe("MODIFIED", changed(tenant("partner-beta", "geheim", "Beta", 78, 61,
                                                                          1.0)))
        assert (await seats(client))["klein"] == 25
        # Beta editing its own Branding or plans in a loop made every page of acme's a rebuild.
        for version in range(3, 6):
            for kind, spec in (("Branding", {"colours": {"primary": "#000000"}}), ("FeatureSet", {"features": {}})):
                portal.cluster.kinds[kind].observe("MODIFIED", {
                    "apiVersion": "tenantry.dev/v1alpha1", "kind": kind, "spec": spec,
                    "metadata": {"name": "beta-own", "namespace": "partner-beta", "resourceVersion": str(version)}})
            assert (await seats(client))["klein"] == 25
        assert len(built) == 2
        # The platform's plans are every partner's: acme's customers are worked out again.
        portal.cluster.kinds["FeatureSet"].observe("MODIFIED", {
            "apiVersion": "tenantry.dev/v1alpha1", "kind": "FeatureSet", "spec": {"features": {}},
            "metadata": {"name": "business", "namespace": PLATFORM, "resourceVersion": "9"}})
        assert (await seats(client))["klein"] == 25
    serve(portal, scenario)
    # Once, once more after acme's change, once after the platform's plan; beta's changes are not
    # acme's. Never on the loop.
    assert built == [False, False, False]
