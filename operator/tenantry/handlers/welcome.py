"""The mailer: sends the welcome e-mails that reconcile passes recorded as due, and records the outcome.

Its own queue and two workers, so that a slow or unreachable relay never holds a reconcile worker.
For each tenant, under the tenant's lock (so that no pass writes the status meanwhile): read the
Tenant fresh (the pass's decision may be seconds old, and a second sending must not start from a
stale copy) and check that the sending is still due; then, without the lock, send it to the
recipients who do not have it yet; then, under the lock again, write status.welcome (accepted,
refused, or the failure with its next attempt), and queue a pass, which updates WelcomeSent and the
checklist. Recipients the relay accepted are also remembered here until that write succeeds, so a
failing status write never sends the message to them again.

Each partner may have at most `partner_hourly_limit` recipients per hour (kept in memory: a restart
forgets it), so that nobody can turn the platform's relay into a mass mailer (admins and the resend
annotation are theirs to write).
"""

from __future__ import annotations

import datetime
import logging
import time
from collections import defaultdict, deque
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any

from tenantry.adapters.smtp import SmtpFailure, SmtpRelay
from tenantry.api.common import API_VERSION
from tenantry.api.tenant import TenantSpec
from tenantry.domain import lifecycle, welcome, welcomemail
from tenantry.domain.branding import ResolvedBranding, resolve_branding
from tenantry.domain.children import ObjectRef
from tenantry.domain.settings import SmtpSettings
from tenantry.handlers.leadership import ShardLost, acting, ensure_leading, owns
from tenantry.handlers.workqueue import WorkQueue
from tenantry.metrics.operator import WELCOME_EMAILS

if TYPE_CHECKING:  # runtime imports this module: the type only
    from tenantry.handlers.runtime import Runtime

logger = logging.getLogger("tenantry")
TenantKey = tuple[str, str]
HOUR = 3600.0


class Mailer:
    """The welcome e-mails due, two at a time."""

    def __init__(self, memo: Runtime, settings: SmtpSettings,
                 lock: Callable[[TenantKey], AbstractAsyncContextManager[None]],
                 relay: SmtpRelay | None = None) -> None:
        self.memo, self.settings, self.lock = memo, settings, lock
        self.relay = relay or SmtpRelay(settings)
        self.queue: WorkQueue[TenantKey] = WorkQueue(self._deliver, workers=2, admit=lambda key: owns(memo, key[0]),
                                                     name="welcome")
        self._sent: dict[str, deque[tuple[float, int]]] = defaultdict(deque)  # partner -> (time, recipients)
        self._accepted: dict[str, list[str]] = {}  # Message-ID -> accepted, until recorded

    def add(self, key: TenantKey) -> None:
        self.queue.add(key)

    async def stop(self) -> None:
        await self.queue.stop()

    def _room(self, partner_namespace: str) -> int:
        """Recipients this partner may still have this hour."""
        times, now = self._sent[partner_namespace], time.monotonic()
        while times and times[0][0] < now - HOUR:
            times.popleft()
        return self.settings.partner_hourly_limit - sum(count for _, count in times)

    async def _deliver(self, key: TenantKey) -> None:
        try:
            with acting(self.memo, key):
                ensure_leading(self.memo)
                wrote = await self._deliver_held(key)
        except ShardLost as lost:
            logger.debug("welcome of tenant %s/%s left alone: %s", *key, lost)
            return
        if wrote:
            self.memo.queue.add(key)  # WelcomeSent and the checklist follow the record

    async def _due(self, key: TenantKey) -> tuple[Mapping[str, Any], Mapping[str, Any], TenantSpec] | None:
        """(the fresh Tenant, its welcome record, its spec) while a sending is due now, else None."""
        body = await self.memo.kube.read(ObjectRef(API_VERSION, "Tenant", key[1], key[0]))
        if body is None:
            return None
        self.memo.tenants.put(body)  # what passes read from now on
        status = body.get("status") or {}
        record = status.get("welcome")
        unwanted = not record or record.get("skipped") or status.get("state") != "Active"
        if body["metadata"].get("deletionTimestamp") or unwanted or welcome.complete(record):
            return None  # gone, sent meanwhile, or not wanted (the pass says why)
        upcoming = record.get("nextAttemptAt")
        if upcoming and datetime.datetime.now(datetime.UTC) < lifecycle.timestamp(upcoming):
            return None  # not yet: the pass set a timer for it
        spec = lifecycle.parse_tenant_spec(body.get("spec"))
        return (body, record, spec) if isinstance(spec, TenantSpec) else None

    async def _deliver_held(self, key: TenantKey) -> bool:
        """Whether the record was written."""
        async with self.lock(key):
            due = await self._due(key)
        if due is None:
            return False
        body, record, spec = due
        now = datetime.datetime.now(datetime.UTC)
        earlier = self._accepted.get(record["messageId"], [])
        to = [r for r in welcome.pending_recipients(record, welcome.recipients(spec)) if r not in earlier]
        accepted: list[str] = list(earlier)
        refused: dict[str, str] = {}
        failure: tuple[str, str] | None = None
        if to and self._room(key[0]) < len(to):
            WELCOME_EMAILS.labels("limited").inc()
            failure = ("PartnerLimitReached", "this partner's welcome e-mails reached "
                       f"{self.settings.partner_hourly_limit} recipients within the last hour "
                       "(smtp.partnerHourlyLimit)")
        elif to:
            # The shard (or the leadership) may have moved while the Tenant was read: a replica
            # that lost it must not send what the new owner will send too. (A DNS zone's write
            # checks the same way: no write to the API server comes in between.)
            self.memo.kube.fence()
            try:
                delivery = await self.relay.send(self._compose(body, spec, record, to, now),
                                                 self._sender(body, spec), to)
            except SmtpFailure as error:
                WELCOME_EMAILS.labels("failed").inc()
                logger.warning("tenant %s/%s: welcome e-mail not sent: %s (%s)", *key, error.message, error.__cause__)
                failure = (error.reason, error.message)
            else:
                self._sent[key[0]].append((time.monotonic(), len(delivery.accepted)))
                self._accepted[record["messageId"]] = accepted = [*earlier, *delivery.accepted]
                refused = delivery.refused
                WELCOME_EMAILS.labels("partly" if refused else "sent").inc()
                logger.info("tenant %s/%s: welcome e-mail %s sent to %s%s", *key, record["messageId"],
                            ", ".join(delivery.accepted) or "nobody", f"; refused: {', '.join(refused)}" if refused
                            else "")
        async with self.lock(key):
            fresh = await self._due(key)
            if fresh is None or fresh[1]["messageId"] != record["messageId"]:
                return False  # a newer sending (a resend) took its place meanwhile; its own record stands
            await self._record(key, fresh[1], welcome.after_attempt(
                fresh[1], [a for a in accepted if a not in fresh[1].get("to", [])], refused, failure, now,
                self.settings.first_retry_seconds))
        self._accepted.pop(record["messageId"], None)
        return True

    def _branding(self, body: Mapping[str, Any], spec: TenantSpec) -> ResolvedBranding | None:
        found = resolve_branding(spec.branding, self.memo.catalogue.branding(), body["metadata"]["namespace"],
                                 self.memo.config.platform_namespace)
        return found if isinstance(found, ResolvedBranding) else None

    def _sender(self, body: Mapping[str, Any], spec: TenantSpec) -> str:
        branding, partner_namespace = self._branding(body, spec), body["metadata"]["namespace"]
        namespace = self.memo.namespaces.get(None, partner_namespace) or {}
        platform = self.memo.config.platform_namespace
        from_platform = branding is not None and branding.source.startswith(f"{platform}/")
        granted = welcomemail.partner_from_domains((namespace.get("metadata") or {}).get("annotations"))
        return welcomemail.sender(branding.spec if branding else None, from_platform, self.settings.sender,
                                  self.settings.allowed_from_domains, granted)

    def _compose(self, body: Mapping[str, Any], spec: TenantSpec, record: Mapping[str, Any], to: list[str],
                 now: datetime.datetime) -> EmailMessage:
        config, status = self.memo.config, body.get("status") or {}
        branding = self._branding(body, spec)
        look = branding.spec if branding else None
        letter = welcomemail.Letter(
            uid=body["metadata"].get("uid", ""), company=spec.company, contact_name=spec.contact.name,
            url=status.get("url") or "", product=(look.display_name if look and look.display_name
                                                  else config.platform_domain),
            language=welcomemail.language(look, self.settings.language), branding=look,
            pending_domains=[d for d in status.get("domains", []) if not d.get("verified")],
            appointment=spec.onboarding.appointment if spec.onboarding else None)
        return welcomemail.compose(letter, self._sender(body, spec), to, record["messageId"], config.platform_domain,
                                   now)

    async def _record(self, key: TenantKey, old: Mapping[str, Any], new: Mapping[str, Any]) -> None:
        await self.memo.kube.patch_status(ObjectRef(API_VERSION, "Tenant", key[1], key[0]),
                                          {"welcome": welcome.replacing(old, new)})
