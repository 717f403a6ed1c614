"""The partner portal's HTTP server (aiohttp): pages rendered on the server, no JavaScript.

Every request but /healthz, /login and /static passes the gate: no identity is 401, an identity
without a visible partner (a tenant admin, anyone else) is 403, and a partner that the identity
may not see answers exactly like one that does not exist (403), so names cannot be probed.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import jinja2
from aiohttp import web

from tenantry.adapters.http import Api, ApiFailure
from tenantry.api.deal import STAGES
from tenantry.portal import model
from tenantry.portal.charts import FALLBACK_PRIMARY, FALLBACK_TEXT, bar, colour, logo_source, progress
from tenantry.portal.gather import (
    Cluster,
    History,
    PartnerInfo,
    Prometheus,
    customer,
    deals,
    history,
    plan_specs,
    trials,
)
from tenantry.portal.identity import SESSION_SECONDS, Busy, Gate, Identity
from tenantry.portal.onboard import FEATURES, Outcome, check, existing
from tenantry.portal.settings import PortalSettings

logger = logging.getLogger("tenantry.portal")
COOKIE = "tenantry_portal"
# With Secure (the default): the __Host- prefix makes browsers refuse the cookie from any other
# host, so a tenant's site at <slug>.<platform domain> cannot set one for the portal's host.
SECURE_COOKIE = "__Host-tenantry_portal"
MAX_TOKEN = 8000  # bytes; real tokens (OIDC ID tokens included) are a few KiB
# Browsers keep a cookie of at most 4096 bytes, its name included: a longer token would "log in"
# and then be nobody on the next page.
MAX_COOKIE_TOKEN = 4096 - len(SECURE_COOKIE) - 1
_NAME = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_HEADERS = {
    # No script at all, styles only from our own stylesheet, images from us, data: (checked SVG
    # logos) and https (a Branding's logo URL); forms only to ourselves; never framed.
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self' data: https:; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    # Not no-referrer: a same-origin form post must carry its Origin (a null Origin is refused).
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
CHECKS_WAITING = 8  # onboarding form checks under way or waiting, of different partners
SECURE = web.AppKey("secure", bool)  # the portal's cookie is Secure: it is served over https
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Scoped = tuple[Identity, PartnerInfo]
Customers = tuple[list[model.Customer], list[dict[str, Any]], bool]  # the customers, their Tenants, history or not
# ...and the customer asked for, its Tenant, and all of the partner's customers
One = tuple[Identity, PartnerInfo, model.Customer, dict[str, Any], list[model.Customer]]


def _templates() -> jinja2.Environment:
    # Not StrictUndefined: a status written by the usage reporter may lack a field (a condition
    # without a reason); that shows as empty, not as an error page.
    env = jinja2.Environment(loader=jinja2.PackageLoader("tenantry.portal", "templates"), autoescape=True)
    env.filters["money"] = lambda amount: f"{amount:,.2f}"
    env.filters["pct"] = lambda share: f"{share * 100:.0f} %"
    env.filters["signed_pct"] = lambda value: "n/a" if value is None else f"{value:+.1f} %"
    return env


PartnerHandler = Callable[["Portal", web.Request, Identity, PartnerInfo], Awaitable[web.StreamResponse]]


def _for_partner(handler: PartnerHandler) -> Callable[[Portal, web.Request], Awaitable[web.StreamResponse]]:
    """A page of one partner: the handler runs only for an identity that may see it."""
    @functools.wraps(handler)
    async def checked(portal: Portal, request: web.Request) -> web.StreamResponse:
        scoped = await portal.partner(request)
        if isinstance(scoped, web.Response):
            return scoped
        return await handler(portal, request, *scoped)
    return checked


@dataclass
class Portal:
    settings: PortalSettings
    gate: Gate
    cluster: Cluster
    prometheus: Prometheus | None
    templates: jinja2.Environment
    checks: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(2))
    builds: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(2))
    _checking: set[str] = field(default_factory=set)  # partner namespaces whose form is being checked
    # partner namespace -> ((its _version, the History used), what customers() returned)
    _customers: dict[str, tuple[tuple[Any, History], Customers]] = field(default_factory=dict)

    # --- identity --------------------------------------------------------------------------------

    @property
    def cookie(self) -> str:
        return SECURE_COOKIE if self.settings.secure_cookie else COOKIE

    async def identity(self, request: web.Request) -> Identity | None:
        header = request.headers.get("Authorization", "")
        if header.lower().startswith("bearer "):
            token = header[7:].strip()
        elif _sent_more_than_once(request, self.cookie):
            return None  # whose? One may have been set by another site of the domain: nobody's
        else:
            token = request.cookies.get(self.cookie, "")
        if len(token) > MAX_TOKEN:
            return None  # no token is that long: not worth a review
        if token:
            return await self.gate.review_token(token)
        if self.settings.trust_proxy_headers:
            user_header, groups_header = self.settings.proxy_user_header, self.settings.proxy_groups_header
            if len(request.headers.getall(user_header, ())) > 1 or len(request.headers.getall(groups_header, ())) > 1:
                return None  # a proxy that adds its header to the client's own: which is whose is unknown
            user = request.headers.get(user_header, "").strip()
            groups = tuple(g.strip() for g in request.headers.get(groups_header, "").split(",") if g.strip())
            # Kubernetes' own names (system:masters, system:serviceaccount:...) never come from a
            # proxy's headers: an identity provider that lets users pick groups must not make admins.
            if user and not user.startswith("system:") and not any(g.startswith("system:") for g in groups):
                return Identity(self.settings.proxy_user_prefix + user,
                                tuple(self.settings.proxy_groups_prefix + g for g in groups))
        return None

    def page(self, template: str, status: int = 200, **values: Any) -> web.Response:
        context = {"title": self.settings.title, "partner": None, "partners": {}, "who": None, **values}
        text = self.templates.get_template(template).render(**context)
        return web.Response(text=text, status=status, content_type="text/html", charset="utf-8")

    def refuse(self, status: int, message: str) -> web.Response:
        response = self.page("refused.html", status=status, status_code=status, message=message)
        if status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="tenantry portal"'
        return response

    async def scope(self, request: web.Request) -> tuple[Identity, dict[str, PartnerInfo]] | web.Response:
        who = await self.identity(request)
        if who is None:
            return self.refuse(401, "Log in with a token the cluster accepts.")
        partners = self.cluster.partners()
        visible = await self.gate.visible(who, {pid: info.namespace for pid, info in partners.items()})
        if not visible:
            return self.refuse(403, "Your account is not allowed to see any partner.")
        return who, {pid: partners[pid] for pid in visible}

    async def partner(self, request: web.Request) -> Scoped | web.Response:
        """The partner of the path, if the identity may see it: one access review (remembered),
        not one per partner."""
        who = await self.identity(request)
        if who is None:
            return self.refuse(401, "Log in with a token the cluster accepts.")
        partner_id = request.match_info["partner"]
        info = self.cluster.partners().get(partner_id)
        # A partner that does not exist is reviewed too (as its would-be namespace) and refused
        # alike: neither the answer nor its timing tells which partners exist.
        allowed = await self.gate.may_see(who, info.namespace if info else f"partner-{partner_id[:63]}")
        if info is None or not allowed:
            return self.refuse(403, "You may not see this partner.")
        return who, info

    # --- data ------------------------------------------------------------------------------------

    async def customers(self, info: PartnerInfo) -> Customers:
        """The partner's customers, worked out again only after its Tenants, the plans or the
        history changed, and then off the event loop (two partners at a time): a partner of
        10,000 Tenants took a second of the loop every other partner's pages wait for."""
        past = await history(self.prometheus, info.id)
        if (known := self._known_customers(info, past)) is not None:
            return known
        async with self.builds:
            if (known := self._known_customers(info, past)) is not None:  # built while this one waited
                return known
            version = self._version(info)
            catalogue = self.cluster.catalogue(info.namespace)
            found = await asyncio.to_thread(self._customers_of, info, catalogue, past)
            self._customers[info.namespace] = ((version, past), found)
            return found

    def _version(self, info: PartnerInfo) -> tuple[Any, ...]:
        # The minute too: a customer's state follows the clock (a trial that ended is Suspended),
        # also while no Tenant changes (the operator lagging or down).
        return *self.cluster.version(info.namespace), int(time.time() // 60)

    def _known_customers(self, info: PartnerInfo, past: History) -> Customers | None:
        known = self._customers.get(info.namespace)
        if known is not None and known[0] == (self._version(info), past):
            return known[1]
        return None

    def _customers_of(self, info: PartnerInfo, catalogue: list[dict[str, Any]], past: History) -> Customers:
        bodies = self.cluster.tenants_from_thread(info.namespace)
        plans = plan_specs(catalogue)
        return [customer(b, plans, self.settings.platform_namespace, past) for b in bodies], bodies, past.available

    # --- pages -----------------------------------------------------------------------------------

    async def index(self, request: web.Request) -> web.StreamResponse:
        scoped = await self.scope(request)
        if isinstance(scoped, web.Response):
            return scoped
        who, visible = scoped
        if len(visible) == 1:
            raise web.HTTPFound(f"/p/{next(iter(visible))}/customers")
        return self.page("index.html", who=who, partners=visible)

    @_for_partner
    async def customers_page(self, request: web.Request, who: Identity, info: PartnerInfo) -> web.StreamResponse:
        found, _, has_history = await self.customers(info)
        return self.page("customers.html", who=who, partner=info, history=has_history,
                         rows=model.rows(found, info.commission_rate),
                         totals=model.totals(found, info.commission_rate), tiers=self.settings.support_tiers,
                         git=self.settings.git_url)

    @_for_partner
    async def customers_json(self, request: web.Request, _: Identity, info: PartnerInfo) -> web.StreamResponse:
        found, _, _ = await self.customers(info)
        return web.json_response({"partner": info.id, "customers": [
            {"tenant": r.customer.slug, "company": r.customer.company, "state": r.customer.state,
             "plan": r.customer.plan, "seats": r.customer.seats, "activeUsers": r.customer.active_users,
             "mrr": r.customer.mrr, "billedMrr": r.customer.billed_mrr, "currency": r.customer.currency,
             "commission": r.commission,
             "mrrTrendPercent": r.customer.mrr_trend, "requests": r.customer.requests_total,
             "signals": list(r.signals)} for r in model.rows(found, info.commission_rate)]},
            headers=_HEADERS)

    async def _one(self, request: web.Request) -> One | web.Response:
        scoped = await self.partner(request)
        if isinstance(scoped, web.Response):
            return scoped
        who, info = scoped
        slug = request.match_info["slug"]
        found, bodies, _ = await self.customers(info)
        if not _NAME.fullmatch(slug) or slug not in {c.slug for c in found}:
            return self.refuse(404, "No such customer of this partner.")
        body = next(b for b in bodies if b["metadata"]["name"] == slug)
        return who, info, next(c for c in found if c.slug == slug), body, found

    async def customer_page(self, request: web.Request) -> web.StreamResponse:
        one = await self._one(request)
        if isinstance(one, web.Response):
            return one
        who, info, this, body, everyone = one
        status = body.get("status") or {}
        medians = model.feature_medians(everyone)
        uses = model.feature_use(this, medians)
        branding = self.cluster.branding(info.namespace, status.get("branding"))
        events = await self.cluster.events(info.namespace, this.slug)
        look = (branding or {}).get("spec") or {}
        colours = look.get("colours") or {}
        preview = {"name": look.get("displayName") or this.company, "assistant": look.get("assistantName") or "",
                   "welcome": next(iter((look.get("welcome") or {}).values()), ""),
                   "primary": colour(colours.get("primary"), FALLBACK_PRIMARY),
                   "secondary": colour(colours.get("secondary"), colour(colours.get("primary"), FALLBACK_PRIMARY)),
                   "text": colour(colours.get("text"), FALLBACK_TEXT), "logo": logo_source(look.get("logo"))}
        return self.page("customer.html", who=who, partner=info, c=this,
                         uses=[(u, bar(u.requests, u.limit or 0, u.median)) for u in uses],
                         forecast=model.seat_forecast(this), seats=bar(this.active_users, this.seats),
                         domains=status.get("domains") or [], conditions=status.get("conditions") or [],
                         checklist=status.get("onboarding") or [], events=events, preview=preview,
                         url=_https(status.get("url")), git=self.settings.git_url)

    async def usage_csv(self, request: web.Request) -> web.StreamResponse:
        one = await self._one(request)
        if isinstance(one, web.Response):
            return one
        _, info, this, body, _ = one
        period = ((body.get("status") or {}).get("usage") or {}).get("reportedAt") or ""
        return web.Response(text=model.usage_csv(this, info.id, str(period)), content_type="text/csv",
                            charset="utf-8", headers={**_HEADERS, "Content-Disposition":
                                                      f'attachment; filename="{info.id}-{this.slug}-usage.csv"'})

    @_for_partner
    async def pipeline_page(self, request: web.Request, who: Identity, info: PartnerInfo) -> web.StreamResponse:
        stages = model.pipeline(deals(self.cluster, info.namespace), info.commission_rate, STAGES)
        accounts = model.trial_accounts(trials(self.cluster, info.namespace), time.time())
        total, total_commission = model.pipeline_totals(stages)
        return self.page("pipeline.html", who=who, partner=info, stages=stages, trials=accounts, total=total,
                         total_commission=total_commission)

    @_for_partner
    async def revenue_page(self, request: web.Request, who: Identity, info: PartnerInfo) -> web.StreamResponse:
        found, _, _ = await self.customers(info)
        past = await history(self.prometheus, info.id)
        figures = model.revenue(found, info.commission_rate, past.partner_mrr_30d_ago, info.quarterly_target,
                                self.settings.partner_levels, self.settings.partner_level_currency)
        return self.page("revenue.html", who=who, partner=info, r=figures, history=past.available,
                         level_bar=progress(figures.level_progress),
                         target_bars={c: progress(s) for c, s in figures.target_progress.items()})

    @_for_partner
    async def onboard_page(self, request: web.Request, who: Identity, info: PartnerInfo) -> web.StreamResponse:
        catalogue = self.cluster.catalogue(info.namespace)
        names = sorted({name for (_, name) in plan_specs(catalogue)})
        form: dict[str, str] = {}
        chosen: list[str] = []
        outcome = None
        if request.method == "POST":
            posted = await request.post()
            form = {k: str(v)[:2000] for k, v in posted.items() if k in _FORM_FIELDS}
            chosen = [str(v) for v in posted.getall("feature", [])]

            def checked() -> Outcome:
                # The partner's Tenants (taken slugs and domains; some 10,000 to decode) are read here
                # too: a flood of POSTs must not stall the event loop for every other partner.
                customers = existing(self.cluster.tenants_from_thread(info.namespace))
                return check(form, chosen, info.id, info.namespace, self.settings.platform_namespace,
                             self.settings.platform_domain, catalogue, customers)
            # validate reads and writes files: off the event loop, and two at a time at most; one
            # per partner, and a few waiting, so that one partner's flood holds up no one else's.
            if info.namespace in self._checking or len(self._checking) >= CHECKS_WAITING:
                raise Busy(f"a check of partner {info.id}'s form is under way" if info.namespace in self._checking
                           else "too many form checks under way")
            self._checking.add(info.namespace)
            try:
                async with self.checks:
                    outcome = await asyncio.to_thread(checked)
            finally:
                self._checking.discard(info.namespace)
            if outcome.yaml and request.query.get("download") == "1":
                return web.Response(text=outcome.yaml, content_type="application/yaml", charset="utf-8",
                                    headers={**_HEADERS, "Content-Disposition":
                                             f'attachment; filename="{outcome.path.rsplit("/", 1)[-1]}"'})
        return self.page("onboard.html", status=400 if outcome and outcome.errors else 200, who=who, partner=info,
                         plans=names, features=FEATURES, form=form, chosen=chosen,
                         outcome=outcome)

    # --- login -----------------------------------------------------------------------------------

    async def login_page(self, request: web.Request) -> web.StreamResponse:
        if request.method == "GET":
            return self.page("login.html", partner=None, error="")
        posted = await request.post()
        token = str(posted.get("token", "")).strip()
        if len(token) > MAX_COOKIE_TOKEN:
            return self.page("login.html", status=400, partner=None,
                             error=f"This token has {len(token)} characters; a browser keeps at most "
                                   f"{MAX_COOKIE_TOKEN}. Log in with a shorter one (kubectl create token), or "
                                   "send it in an Authorization header.")
        if not token or await self.gate.review_token(token) is None:
            return self.page("login.html", status=401, partner=None, error="The cluster does not accept this token.")
        lifetime = session_seconds(token, time.time())
        if lifetime <= 0:
            return self.page("login.html", status=401, partner=None, error="This token has expired.")
        response = web.HTTPSeeOther("/")
        response.set_cookie(self.cookie, token, httponly=True, samesite="Strict", path="/",
                            secure=self.settings.secure_cookie, max_age=lifetime)
        raise response

    async def logout(self, request: web.Request) -> web.StreamResponse:
        response = web.HTTPSeeOther("/login")
        # With the attributes it was set with: browsers ignore a __Host- cookie without Secure, so a
        # plain deletion left the user logged in. (Not Clear-Site-Data: it clears the cookies of the
        # whole registrable domain, every tenant site's and the identity provider's too.)
        response.del_cookie(self.cookie, path="/", secure=self.settings.secure_cookie, httponly=True,
                            samesite="Strict")
        raise response


def session_seconds(token: str, now: float) -> int:
    """How long the browser keeps the session cookie: SESSION_SECONDS, or less when the token is a
    JWT that expires sooner (its `exp`, read without checking the signature: the TokenReview has
    judged the token, this only shortens the cookie)."""
    parts = token.split(".")
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))) if len(parts) == 3 else {}
        expires = claims.get("exp") if isinstance(claims, dict) else None
        if isinstance(expires, (int, float)) and not isinstance(expires, bool):
            return min(SESSION_SECONDS, int(expires - now))
    except (ValueError, UnicodeDecodeError, OverflowError):  # not a JWT's JSON, or an exp of nan or 1e999
        pass
    return SESSION_SECONDS


def _sent_more_than_once(request: web.Request, cookie: str) -> bool:
    """Whether the request carries the cookie twice (aiohttp would keep the last)."""
    sent = ";".join(request.headers.getall("Cookie", ()))
    return sum(1 for part in sent.split(";") if part.partition("=")[0].strip() == cookie) > 1


def _https(url: object) -> str:
    """A link target from a status (the usage reporter may write status too): plain https only."""
    return url if isinstance(url, str) and _HTTPS.fullmatch(url) else ""


_LOOPBACK = frozenset({"localhost", "127.0.0.1", "[::1]"})
_HTTPS = re.compile(r"https://[^\s\"'<>\\]+")
_FORM_FIELDS = frozenset({"slug", "company", "contact_name", "contact_email", "phone", "industry", "employees",
                          "plan", "seats", "price", "currency", "domain", "primary", "secondary", "logo_url",
                          "assistant_name", "welcome"})


@web.middleware
async def _security(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    try:
        # A form posted from another site (login CSRF, a forged logout) is refused: browsers send
        # Origin with every POST. (The session cookie is SameSite=Strict as well.)
        # With a Secure cookie the portal is served over https (behind a proxy that ends TLS it is
        # itself spoken to in http): only an https page of this host is its own, not one served over
        # plain http by whoever sits on the network path.
        # (A loopback address is a secure context to browsers: no network path to sit on.)
        origin = request.headers.get("Origin")
        own = {f"https://{request.host}"}
        if not request.app[SECURE] or request.host.rpartition(":")[0] in _LOOPBACK:
            own.add(f"http://{request.host}")
        if request.method == "POST" and origin is not None and origin not in own:
            raise web.HTTPForbidden(text="cross-site form refused\n")
        response = await handler(request)
    except web.HTTPException as exception:
        response = exception
    except Busy as busy:  # a flood of logins, or one user's of access reviews: not queued
        logger.warning("%s %s: %s", request.method, request.path, busy)
        response = web.Response(status=503, text="the portal is busy, try again in a moment\n",
                                headers={"Retry-After": "1"})
    except ApiFailure as error:  # the API server refused or is overloaded (a review, events)
        logger.warning("%s %s: the API server answered %s", request.method, request.path, error)
        response = web.Response(status=503, text="the cluster is not answering, try again in a moment\n")
    except Exception:  # noqa: BLE001  (a bug: an error page with the same headers, never a traceback)
        logger.exception("%s %s failed", request.method, request.path)
        response = web.Response(status=500, text="something went wrong on our side\n")
    for name, value in _HEADERS.items():
        response.headers.setdefault(name, value)
    if request.app[SECURE]:  # served over https (the Secure cookie says so): browsers keep to it
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.1f}"
    if isinstance(response, web.HTTPException):
        raise response
    return response


async def _healthz(_: web.Request) -> web.Response:
    return web.Response(text="ok\n")


async def _stylesheet(_: web.Request) -> web.Response:
    css = resources.files("tenantry.portal").joinpath("static/portal.css").read_text()
    return web.Response(text=css, content_type="text/css", headers={"Cache-Control": "max-age=3600"})


def application(portal: Portal) -> web.Application:
    app = web.Application(middlewares=[_security], client_max_size=64 * 1024)
    app[SECURE] = portal.settings.secure_cookie
    app.add_routes([
        web.get("/healthz", _healthz), web.get("/static/portal.css", _stylesheet),
        web.get("/login", portal.login_page), web.post("/login", portal.login_page), web.post("/logout", portal.logout),
        web.get("/", portal.index),
        web.get("/p/{partner}/customers", portal.customers_page),
        web.get("/p/{partner}/customers.json", portal.customers_json),
        web.get("/p/{partner}/customers/{slug}", portal.customer_page),
        web.get("/p/{partner}/customers/{slug}/usage.csv", portal.usage_csv),
        web.get("/p/{partner}/revenue", portal.revenue_page),
        web.get("/p/{partner}/pipeline", portal.pipeline_page),
        web.get("/p/{partner}/onboard", portal.onboard_page), web.post("/p/{partner}/onboard", portal.onboard_page),
    ])
    return app


def build(settings: PortalSettings, api: Api) -> Portal:
    return Portal(settings=settings, gate=Gate(api, settings.audiences),
                  cluster=Cluster(api, settings.platform_namespace, settings.commission_rate),
                  prometheus=Prometheus(settings.prometheus_url, selector=settings.prometheus_selector)
                  if settings.prometheus_url else None,
                  templates=_templates())
