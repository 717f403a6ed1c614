"""The mailer: sends the welcome e-mails that reconcile passes recorded as due, and records the outcome.

Its own queue and two workers, so that a slow or unreachable relay never holds a reconcile worker.
For each tenant: read the Tenant fresh (the pass's decision may be seconds old, and a second sending
must not start from a stale copy), check that the sending is still due, compose it, send it to the
recipients who do not have it yet, and write status.welcome (accepted, refused, or the failure with
its next attempt). Then the tenant gets a pass, which updates WelcomeSent and the checklist. Each
partner may have at most `partner_hourly_limit` delivered per hour (kept in memory: a restart forgets
it), so that nobody can turn the platform's relay into a mass mailer (admins and the resend
annotation are theirs to write).
"""

from __future__ import annotations

import datetime
import logging
import time
from collections import defaultdict, deque
from collections.abc import Mapping
from typing import Any

import kopf

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

logger = logging.getLogger("tenantry")
TenantKey = tuple[str, str]
HOUR = 3600.0


class Mailer:
    """The welcome e-mails due, two at a time."""

    def __init__(self, memo: kopf.Memo, settings: SmtpSettings, relay: SmtpRelay | None = None) -> None:
        self.memo, self.settings = memo, settings
        self.relay = relay or SmtpRelay(settings)
        self.queue: WorkQueue[TenantKey] = WorkQueue(self._deliver, workers=2, admit=lambda key: owns(memo, key[0]))
        self._sent: dict[str, deque[float]] = defaultdict(deque)  # partner namespace -> sending times

    def add(self, key: TenantKey) -> None:
        self.queue.add(key)

    async def stop(self) -> None:
        await self.queue.stop()

    def _within_limit(self, partner_namespace: str) -> bool:
        times, now = self._sent[partner_namespace], time.monotonic()
        while times and times[0] < now - HOUR:
            times.popleft()
        return len(times) < self.settings.partner_hourly_limit

    async def _deliver(self, key: TenantKey) -> None:
        try:
            with acting(self.memo, key):
                ensure_leading(self.memo)
                await self._deliver_held(key)
        except ShardLost as lost:
            logger.debug("welcome of tenant %s/%s left alone: %s", *key, lost)
            return
        self.memo.queue.add(key)  # WelcomeSent and the checklist follow the record

    async def _deliver_held(self, key: TenantKey) -> None:
        ref = ObjectRef(API_VERSION, "Tenant", key[1], key[0])
        body = await self.memo.kube.read(ref)
        record = ((body or {}).get("status") or {}).get("welcome")
        if body is None or body["metadata"].get("deletionTimestamp") or not record or welcome.complete(record):
            return  # gone, or sent meanwhile
        upcoming = record.get("nextAttemptAt")
        now = datetime.datetime.now(datetime.UTC)
        if upcoming and now < lifecycle.timestamp(upcoming):
            return  # not yet: the pass set a timer for it
        spec = lifecycle.parse_tenant_spec(body.get("spec"))
        if not isinstance(spec, TenantSpec) or (body.get("status") or {}).get("state") != "Active":
            return  # the pass says why (NotServing, InvalidSpec)
        to = welcome.pending_recipients(record, welcome.recipients(spec))
        if not to:
            return
        if not self._within_limit(key[0]):
            WELCOME_EMAILS.labels("limited").inc()
            await self._record(ref, record, welcome.after_attempt(record, [], {}, (
                "PartnerLimitReached", f"this partner sent {self.settings.partner_hourly_limit} welcome e-mails "
                "within the last hour (smtp.partnerHourlyLimit)"), now, self.settings.first_retry_seconds))
            return
        message = self._compose(body, spec, record, to, now)
        try:
            delivery = await self.relay.send(message, str(message["From"].addresses[0].addr_spec), to)
        except SmtpFailure as failure:
            WELCOME_EMAILS.labels("failed").inc()
            logger.warning("tenant %s/%s: welcome e-mail not sent: %s", *key, failure.message)
            await self._record(ref, record, welcome.after_attempt(record, [], {}, (failure.reason, failure.message),
                                                                  now, self.settings.first_retry_seconds))
            return
        if delivery.accepted:  # what reached someone counts against the limit; failures reach nobody
            self._sent[key[0]].append(time.monotonic())
        WELCOME_EMAILS.labels("partly" if delivery.refused else "sent").inc()
        logger.info("tenant %s/%s: welcome e-mail %s sent to %s%s", *key, record["messageId"],
                    ", ".join(delivery.accepted) or "nobody",
                    f"; refused: {', '.join(delivery.refused)}" if delivery.refused else "")
        await self._record(ref, record, welcome.after_attempt(record, delivery.accepted, delivery.refused, None, now,
                                                              self.settings.first_retry_seconds))

    def _compose(self, body: Mapping[str, Any], spec: TenantSpec, record: Mapping[str, Any], to: list[str],
                 now: datetime.datetime) -> Any:
        config, status = self.memo.config, body.get("status") or {}
        branding = resolve_branding(spec.branding, self.memo.catalogue.branding(), body["metadata"]["namespace"],
                                    config.platform_namespace)
        look = branding.spec if isinstance(branding, ResolvedBranding) else None
        letter = welcomemail.Letter(
            uid=body["metadata"].get("uid", ""), company=spec.company, contact_name=spec.contact.name,
            url=status.get("url") or "", product=(look.display_name if look and look.display_name
                                                  else config.platform_domain),
            language=welcomemail.language(look, self.settings.language), branding=look,
            pending_domains=[d for d in status.get("domains", []) if not d.get("verified")],
            appointment=spec.onboarding.appointment if spec.onboarding else None)
        sender = welcomemail.sender(look, self.settings.sender, self.settings.allowed_from_domains)
        return welcomemail.compose(letter, sender, to, record["messageId"], config.platform_domain, now)

    async def _record(self, ref: ObjectRef, old: Mapping[str, Any], new: Mapping[str, Any]) -> None:
        # A merge patch merges objects: keys the new record lacks go as nulls.
        await self.memo.kube.patch_status(ref, {"welcome": {**dict.fromkeys(old), **new}})
