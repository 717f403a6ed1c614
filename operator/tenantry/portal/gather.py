"""What the portal reads: the present from the Kubernetes API (its own ServiceAccount, read-only),
the past from Prometheus (queries built here, the partner fixed as an escaped label value; no
PromQL ever comes from a user)."""

from __future__ import annotations

import asyncio
import datetime
import functools
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from pydantic import ValidationError

from tenantry.adapters import kube
from tenantry.adapters.http import Api, collection_path
from tenantry.adapters.informer import Informer, Scope
from tenantry.api.common import API_VERSION
from tenantry.api.tenant import TenantSpec
from tenantry.domain.features import Unresolved, effective_features, resolve_plan
from tenantry.domain.lifecycle import effective_state, trial_clock_of, trial_end
from tenantry.domain.naming import PARTNER_LABEL, TENANT_LABEL, is_managed
from tenantry.domain.usage import commission_rate as partner_commission_rate
from tenantry.portal.identity import Busy
from tenantry.portal.model import REQUESTS_LIMIT, Customer, Deal

logger = logging.getLogger("tenantry.portal")
KINDS = (kube.Tenant, kube.FeatureSet, kube.Branding, kube.Deal)  # imported for their URLs: collection_path knows them
TARGET_ANNOTATION = "tenantry.dev/quarterly-target"
DAY = 86_400


@dataclass(frozen=True)
class PartnerInfo:
    id: str
    namespace: str
    commission_rate: float
    quarterly_target: float | None


def _amount(text: str | None) -> float | None:
    try:
        value = float(text) if text is not None else None
    except ValueError:
        return None
    return value if value is not None and value > 0 else None


def label_value(text: str) -> str:
    """A PromQL string literal's content: backslash, double quote and line breaks escaped."""
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")


class Prometheus:
    """Instant queries against Prometheus's HTTP API."""

    def __init__(self, url: str, timeout: float = 10.0, selector: str = "") -> None:
        self._url = url.rstrip("/")
        self.selector = selector  # label matchers every query adds (the operator's own series)
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def query(self, expr: str) -> list[tuple[dict[str, str], float]]:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        async with self._session.post(f"{self._url}/api/v1/query", data={"query": expr}) as response:
            answer = await response.json(content_type=None)
        if answer.get("status") != "success":
            raise RuntimeError(f"Prometheus refused a portal query: {answer.get('error')}")
        return [(item["metric"], float(item["value"][1])) for item in answer["data"]["result"]]

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def history_queries(partner: str, selector: str = "") -> dict[str, str]:
    """The partner's history, one query per figure (every selector fixed to the partner, and to
    `selector`: the operator's own series, see PortalSettings.prometheus_selector)."""
    p = f'partner="{label_value(partner)}"' + (f",{selector}" if selector else "")
    return {
        "mrr_30d_ago": f"max by (tenant) (tenantry_tenant_mrr{{{p}}} offset 30d)",
        "users_in_90d": f"max by (tenant) (predict_linear(tenantry_tenant_active_users{{{p}}}[30d], {90 * DAY}))",
        "max_users_7d": f"max by (tenant) (max_over_time(tenantry_tenant_active_users{{{p}}}[7d]))",
        "partner_mrr_30d_ago": (
            f"sum by (currency) (max by (tenant, currency) (tenantry_tenant_mrr{{{p}}} offset 30d)"
            f" * on (tenant) group_left () max by (tenant) (tenantry_tenant_info{{{p},state=\"Active\"}} offset 30d))"),
    }


@dataclass(frozen=True)
class History:
    per_tenant: Mapping[str, Mapping[str, float]]  # figure -> tenant -> value
    partner_mrr_30d_ago: Mapping[str, float]  # currency -> MRR
    available: bool  # False: no Prometheus configured, or it did not answer


HISTORY_SECONDS = 60.0  # a partner's history is asked for at most this often (it moves by the hour)
_remembered: dict[tuple[int, str], tuple[float, History]] = {}


async def history(prometheus: Prometheus | None, partner: str) -> History:
    if prometheus is None:
        return History({}, {}, False)
    key = (id(prometheus), partner)
    known = _remembered.get(key)
    if known is not None and known[0] > time.monotonic():
        return known[1]
    found = await _ask(prometheus, partner)
    if found.available:
        if len(_remembered) > 10_000:
            _remembered.clear()
        _remembered[key] = (time.monotonic() + HISTORY_SECONDS, found)
    return found


async def _ask(prometheus: Prometheus, partner: str) -> History:
    queries = history_queries(partner, prometheus.selector)
    try:
        answers = await asyncio.gather(*(prometheus.query(expr) for expr in queries.values()))
    except (TimeoutError, aiohttp.ClientError, RuntimeError, ValueError, KeyError) as error:
        logger.warning("Prometheus did not answer the portal (%s): pages show no history", error)
        return History({}, {}, False)
    found = dict(zip(queries, answers, strict=True))
    per_tenant = {name: {labels.get("tenant", ""): value for labels, value in found[name]}
                  for name in ("mrr_30d_ago", "users_in_90d", "max_users_7d")}
    partner_mrr = {labels.get("currency", ""): value for labels, value in found["partner_mrr_30d_ago"]}
    return History(per_tenant, partner_mrr, True)


EVENTS_SECONDS = 10.0  # a Tenant's Events are asked for at most this often
EVENTS_PER_PARTNER = 2  # event lists of one partner under way at once
EVENTS_REMEMBERED = 10_000
_EVENT_FIELDS = ("lastTimestamp", "eventTime", "type", "reason", "message")
EVENT_TEXT = 1024  # characters of each field kept


class Cluster:
    """What the pages read, from watch-fed caches (the operator's informers) of partner namespaces,
    Tenants, FeatureSets and Brandings: a page costs no API request, only Events are asked for.
    Through the portal's ServiceAccount: read only, never a write."""

    def __init__(self, api: Api, platform_namespace: str, commission_rate: float) -> None:
        self.api, self.platform_namespace, self.commission_rate = api, platform_namespace, commission_rate
        # Partners are found among every namespace (tenants' too): worked out again only after a
        # namespace changed, not on each page.
        self._partners: dict[str, PartnerInfo] | None = None
        self.namespaces = Informer(api, Scope("v1", "Namespace"), on_change=lambda *_: self._forget_partners(),
                                   report_listing=True)
        # How often the Tenants and the plans (FeatureSets) of each namespace have changed: what
        # the pages worked out from a partner's is kept until its own or the platform's change (see
        # version). Brandings are no part of it; nor is another partner's edit.
        self._changes: dict[tuple[str, str], int] = {}
        # (By the informer's kind: a LIST's items carry none.)
        self.kinds = {"Tenant": Informer(api, Scope(API_VERSION, "Tenant"),
                                         on_change=functools.partial(self._changed, "Tenant")),
                      "FeatureSet": Informer(api, Scope(API_VERSION, "FeatureSet"),
                                             on_change=functools.partial(self._changed, "FeatureSet")),
                      "Branding": Informer(api, Scope(API_VERSION, "Branding")),
                      "Deal": Informer(api, Scope(API_VERSION, "Deal"))}

        self._events: dict[tuple[str, str], tuple[float, list[dict[str, Any]]]] = {}  # (until, events)
        self._events_asked: dict[tuple[str, str], asyncio.Future[list[dict[str, Any]]]] = {}
        self._events_of: dict[str, int] = {}  # event lists under way per partner namespace

    def run(self) -> list[asyncio.Task[None]]:
        """The informers' tasks (LIST, then WATCH for as long as the portal runs)."""
        return [asyncio.create_task(i.run()) for i in (self.namespaces, *self.kinds.values())]

    async def synced(self) -> None:
        """What every page needs is listed (Deals are not waited for: a cluster without their CRD
        yet shows an empty pipeline, not a portal that never starts)."""
        needed = [i for kind, i in self.kinds.items() if kind != "Deal"]
        await asyncio.gather(*(i.synced.wait() for i in (self.namespaces, *needed)))

    def _forget_partners(self) -> None:
        self._partners = None

    def _changed(self, kind: str, _: str, body: Mapping[str, Any]) -> None:
        key = (kind, (body.get("metadata") or {}).get("namespace") or "")
        self._changes[key] = self._changes.get(key, 0) + 1

    def version(self, namespace: str) -> tuple[int, int, int]:
        """Changes so far to the partner's Tenants and plans and to the platform's plans: equal
        versions, equal customers."""
        return (self._changes.get(("Tenant", namespace), 0), self._changes.get(("FeatureSet", namespace), 0),
                self._changes.get(("FeatureSet", self.platform_namespace), 0))

    def partners(self) -> dict[str, PartnerInfo]:
        if self._partners is None:
            self._partners = self._find_partners()
        return self._partners

    def _find_partners(self) -> dict[str, PartnerInfo]:
        """Partner id -> its namespace. Tenant namespaces carry the partner label too and are not
        partners; an id that two namespaces claim is nobody's (refused, and logged), never the
        first one's."""
        found: dict[str, PartnerInfo] = {}
        claimed_twice: set[str] = set()
        for _, name in self.namespaces.keys():
            meta = (self.namespaces.get(None, name) or {}).get("metadata") or {}
            labels = meta.get("labels") or {}
            partner = labels.get(PARTNER_LABEL)
            if not partner or TENANT_LABEL in labels or is_managed(labels):
                continue
            if partner in found:
                claimed_twice.add(partner)
                continue
            notes = meta.get("annotations") or {}
            found[partner] = PartnerInfo(partner, meta["name"],
                                         partner_commission_rate(notes, self.commission_rate),
                                         _amount(notes.get(TARGET_ANNOTATION)))
        for partner in claimed_twice:
            logger.warning("partner %r is claimed by more than one namespace: shown to nobody until one is left",
                           partner)
            found.pop(partner, None)
        return dict(sorted(found.items()))

    def tenants(self, namespace: str) -> list[dict[str, Any]]:
        return self.kinds["Tenant"].list(namespace, {})

    def tenants_from_thread(self, namespace: str) -> list[dict[str, Any]]:
        """The partner's Tenants, read from a worker thread while the watch changes the informer on
        the event loop: by key (a copy of the keys, then one lookup each), so a Tenant deleted
        meanwhile is left out instead of failing the read."""
        informer = self.kinds["Tenant"]
        names = sorted(informer.names(namespace))
        return [body for name in names if (body := informer.get(namespace, name)) is not None]

    def catalogue(self, namespace: str) -> list[dict[str, Any]]:
        """The FeatureSets and Brandings a tenant of this partner may name: its own and the platform's."""
        return [{"apiVersion": API_VERSION, "kind": kind,
                 "metadata": {"name": o["metadata"]["name"], "namespace": o["metadata"]["namespace"]},
                 "spec": o.get("spec") or {}}
                for kind in ("FeatureSet", "Branding") for ns in (namespace, self.platform_namespace)
                for o in self.kinds[kind].list(ns, {})]

    def branding(self, partner_namespace: str, reference: str | None) -> dict[str, Any] | None:
        """The Branding the operator resolved (status.branding, namespace/name), if it is the
        partner's own or the platform's; None otherwise."""
        namespace, _, name = (reference or "").partition("/")
        if not name or namespace not in (partner_namespace, self.platform_namespace):
            return None
        return self.kinds["Branding"].get(namespace, name)

    async def events(self, namespace: str, slug: str) -> list[dict[str, Any]]:
        """A Tenant's latest Events: asked for at most every EVENTS_SECONDS per Tenant (a page
        reloaded in a loop asks once), the same question under way asked once, and at most
        EVENTS_PER_PARTNER questions of one partner under way (beyond: Busy), so that one partner
        cannot spend the portal's requests to the API server that everyone's logins need."""
        key = (namespace, slug)
        known = self._events.get(key)
        if known is not None and known[0] > time.monotonic():
            return known[1]
        if key in self._events_asked:
            return await asyncio.shield(self._events_asked[key])
        if self._events_of.get(namespace, 0) >= EVENTS_PER_PARTNER:
            raise Busy(f"too many event lists of partner namespace {namespace} under way")
        self._events_of[namespace] = self._events_of.get(namespace, 0) + 1
        self._events_asked[key] = asked = asyncio.ensure_future(self._list_events(namespace, slug))
        try:
            found = await asyncio.shield(asked)
        finally:
            del self._events_asked[key]
            self._events_of[namespace] -= 1
            if not self._events_of[namespace]:
                del self._events_of[namespace]
        if len(self._events) >= EVENTS_REMEMBERED:
            now = time.monotonic()
            self._events = {k: v for k, v in self._events.items() if v[0] > now}
        if len(self._events) < EVENTS_REMEMBERED:
            self._events[key] = (time.monotonic() + EVENTS_SECONDS, found)
        return found

    async def _list_events(self, namespace: str, slug: str) -> list[dict[str, Any]]:
        selector = f"involvedObject.kind=Tenant,involvedObject.name={slug}"
        answer = await self.api.request("GET", collection_path("v1", "Event", namespace),
                                        params={"fieldSelector": selector})
        items = (answer or {}).get("items") or []
        latest = sorted(items, key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "", reverse=True)[:20]
        # What the page shows, no more: 10,000 remembered lists must not hold whole Events.
        return [{name: str(event.get(name) or "")[:EVENT_TEXT] for name in _EVENT_FIELDS} for event in latest]


def plan_specs(catalogue: list[dict[str, Any]]) -> dict[tuple[str, str], Mapping[str, Any]]:
    """The FeatureSets' specs by (namespace, name)."""
    return {(o["metadata"]["namespace"], o["metadata"]["name"]): o["spec"]
            for o in catalogue if o["kind"] == "FeatureSet"}


def _features(body: Mapping[str, Any], plans: Mapping[tuple[str, str], Mapping[str, Any]],
              platform_namespace: str) -> tuple[frozenset[str], dict[str, int]]:
    """The tenant's enabled features (as the operator resolves them), and each one's included
    requests per period: its `requests` limit where the plan or the tenant sets one. A feature's
    other limits count objects (tables, documents) and are not compared with requests."""
    namespace = body["metadata"]["namespace"]
    try:
        spec = TenantSpec.model_validate(body.get("spec") or {})
    except ValidationError:
        return frozenset(), {}
    plan = resolve_plan(spec.plan.feature_set, lambda ns, name: plans.get((ns, name)), namespace, platform_namespace)
    if isinstance(plan, Unresolved):
        return frozenset(), {}
    enabled = {feature: effective for feature, effective in effective_features(plan, spec).items()
               if effective.enabled}
    return frozenset(enabled), {feature: effective.limits[REQUESTS_LIMIT] for feature, effective in enabled.items()
                                if REQUESTS_LIMIT in effective.limits}


def customer(body: Mapping[str, Any], plans: Mapping[tuple[str, str], Mapping[str, Any]], platform_namespace: str,
             past: History, now: datetime.datetime | None = None) -> Customer:
    """One customer's row. Its state is the one in effect at `now` (default: this moment), as the
    operator, the CLI and the metrics show it: an ended trial is Suspended, whatever git says."""
    spec, status = body.get("spec") or {}, body.get("status") or {}
    state = effective_state(spec, now or datetime.datetime.now(datetime.UTC), trial_clock_of(body))
    plan = spec.get("plan") or {}
    price = plan.get("price") or {}
    usage = status.get("usage") or {}
    slug = body["metadata"]["name"]
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
    requests = {k: int(v) for k, v in (usage.get("requests") or {}).items() if isinstance(v, int) and v >= 0}
    active = usage.get("activeUsers", 0)

    def past_value(figure: str) -> float | None:
        return past.per_tenant.get(figure, {}).get(slug)

    features, included = _features(body, plans, platform_namespace)

    return Customer(
        slug=slug, company=str(spec.get("company", "")), state=state,
        plan=str(plan.get("featureSet", "")), seats=int(plan.get("seats", 0) or 0),
        active_users=active if isinstance(active, int) and active >= 0 else 0,
        # Not provisioned (refused, or waiting for a place): no revenue yet, as in the metrics.
        mrr=float(price.get("monthly", 0.0) or 0.0) if status.get("namespace") else 0.0,
        currency=str(status.get("currency") or price.get("currency") or "EUR"),
        support=str(spec.get("supportLevel") or ""), requests=requests,
        limits=included, features=features, ready=ready,
        mrr_30d_ago=past_value("mrr_30d_ago"), users_in_90d=past_value("users_in_90d"),
        max_users_7d=past_value("max_users_7d"))


def deals(cluster: Cluster, namespace: str) -> list[Deal]:
    """The partner's Deals (their specs as the API server accepted them)."""
    found = []
    for body in cluster.kinds["Deal"].list(namespace, {}):
        spec = body.get("spec") or {}
        expected = spec.get("expected") or {}
        found.append(Deal(body["metadata"]["name"], str(spec.get("company", "")), str(spec.get("stage", "")),
                          float(expected.get("monthly", 0.0) or 0.0), str(expected.get("currency") or "EUR"),
                          str(spec.get("expectedClose") or ""), str(spec.get("trial") or "")))
    return found


def trials(cluster: Cluster, namespace: str) -> list[tuple[str, str, str, str]]:
    """(slug, company, trial end, its epoch seconds) of the partner's Tenants in state Trial."""
    found = []
    for body in cluster.tenants(namespace):
        spec = body.get("spec") or {}
        ends = (spec.get("trial") or {}).get("ends")
        if spec.get("state") == "Trial" and isinstance(ends, str):
            try:
                end = trial_end(ends, trial_clock_of(body))
            except ValueError:
                end = None  # counts as ended, as the operator treats it
            # The end in effect (the operator's), not only what git says.
            found.append((body["metadata"]["name"], str(spec.get("company", "")),
                          end.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if end is not None
                          else f"{ends} (not a real date)",
                          str(end.timestamp() if end is not None else 0.0)))
    return found
