"""The welcome e-mail and the go-live checklist: when to send, to whom, and what the status says.

Sent once, when a tenant first becomes Ready and Active: the pass that sees that transition records
the sending as due (status.welcome) in the same status write, so an operator that dies right after
still sends it. The mailer (handlers/welcome) sends what is due and records the outcome.

Delivery is at-least-once: a crash between the relay's "accepted" and the status write sends it again
on the next run, with the same Message-ID (derived from the Tenant's uid and the resend annotation),
so a relay or a mail client can drop the duplicate. At-most-once would lose the welcome instead.

Not sent: for Suspended, Cancelled and Trial tenants (a trial gets it when it converts to Active);
when no SMTP relay is configured; and to tenants that were already Ready and Active before (an
operator upgrade or an SMTP relay configured later must not mail every existing customer). The
annotation tenantry.dev/resend-welcome=<anything new> sends it (again) on purpose, at most once per
cool-down (10 minutes by default).
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tenantry.api.tenant import TenantSpec
from tenantry.domain.status import (
    BRANDING_READY,
    DNS_READY,
    FEATURES_READY,
    NAMESPACE_READY,
    WELCOME_SENT,
    Verdict,
)

RESEND_ANNOTATION = "tenantry.dev/resend-welcome"
RESEND_COOLDOWN_SECONDS = 600.0
FIRST_RETRY_SECONDS = 30.0
MAX_RETRY_SECONDS = 3600.0


def _time(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _text(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def recipients(spec: TenantSpec) -> list[str]:
    """The contact, then every admin; each address once (compared without case)."""
    seen: dict[str, str] = {}
    for address in (spec.contact.email, *spec.admins):
        seen.setdefault(address.casefold(), address)
    return list(seen.values())


def resend_token(annotations: Mapping[str, str] | None) -> str:
    """A short digest of the resend annotation's value ("" without one): what the status keeps."""
    value = (annotations or {}).get(RESEND_ANNOTATION)
    return hashlib.sha256(value.encode()).hexdigest()[:16] if value else ""


def message_id(uid: str, token: str, domain: str) -> str:
    """The same for every attempt of one sending (so duplicates can be dropped), new for a resend."""
    digest = hashlib.sha256(f"{uid}/{token}".encode()).hexdigest()[:32]
    return f"<welcome.{digest}@{domain}>"


def serving(ready: Mapping[str, Any] | Verdict | None, state: str | None) -> bool:
    """Ready and Active (a running trial is served, but is not Active)."""
    if isinstance(ready, Verdict):
        status, reason = ready.status, ready.reason
    else:
        status, reason = (ready or {}).get("status"), (ready or {}).get("reason")
    return status == "True" and reason == "Provisioned" and state in (None, "Active")


def complete(record: Mapping[str, Any] | None) -> bool:
    """Every recipient has it: sent, nobody refused, and no attempt left to make."""
    return bool(record and record.get("sentAt") and not record.get("refused") and not record.get("reason"))


SERVED_BEFORE = "ServedBefore"  # status.welcome.skipped: the tenant served before welcomes were sent


@dataclass(frozen=True)
class Decision:
    """What a pass decides about the welcome: the verdict, the record to write, whether to send now,
    and when to look again."""

    verdict: Verdict
    record: Mapping[str, Any] | None  # status.welcome as it should be (None: none)
    due: bool = False
    wake_at: datetime.datetime | None = None


def _due(uid: str, token: str, domain: str, now: datetime.datetime) -> dict[str, Any]:
    # No empty strings in a status: the API server (1.20) stores "" sent in a merge patch as null, and
    # then refuses the object as not a string.
    return {"messageId": message_id(uid, token, domain), **({"resendToken": token} if token else {}),
            "dueSince": _text(now)}


def _sending(record: Mapping[str, Any]) -> Verdict:
    return Verdict(WELCOME_SENT, "False", "Sending", f"the welcome e-mail is due since {record['dueSince']}")


def decide(record: Mapping[str, Any] | None, *, serving_now: bool, serving_before: bool, state: str,
           configured: bool, token: str, uid: str, domain: str, now: datetime.datetime,
           cooldown: float = RESEND_COOLDOWN_SECONDS) -> Decision:
    """The welcome's verdict and record for this pass (see the module's docstring)."""
    if record is None and serving_before and configured:
        # Recorded, so that a later Ready flap (DNS down and back) never counts as the first time.
        # (Without a relay nothing is recorded: a steady pass writes nothing.)
        record = {"messageId": message_id(uid, "", domain), "dueSince": _text(now), "skipped": SERVED_BEFORE}
    if complete(record) and (not token or record.get("resendToken") == token):  # type: ignore[union-attr]
        assert record is not None
        return Decision(Verdict(WELCOME_SENT, "True", "Sent", f"sent {record['sentAt']} to "
                                f"{', '.join(record.get('to', []))} (Message-ID {record['messageId']})"), record)
    if not configured:
        return Decision(Verdict(WELCOME_SENT, "False", "SmtpNotConfigured",
                                "no SMTP relay is configured (chart smtp.host, TENANTRY_SMTP_HOST): no welcome "
                                "e-mail is sent"), record)
    if not serving_now:
        why = ("the tenant is on Trial: the welcome e-mail goes out when it converts to Active" if state == "Trial"
               else f"the tenant is {state}: nothing is sent" if state in ("Suspended", "Cancelled")
               else "waiting for the tenant to be Ready")
        return Decision(Verdict(WELCOME_SENT, "False", "NotServing", why), record)
    if token and (record is None or record.get("resendToken") != token):
        sent = record.get("sentAt") if record else None
        upcoming = record.get("nextAttemptAt") if record else None
        # Not sooner than the cool-down after the last sending, nor than a back-off under way.
        until = max(_time(sent) + datetime.timedelta(seconds=cooldown) if sent else now,
                    _time(upcoming) if upcoming else now)
        if now < until:
            return Decision(Verdict(WELCOME_SENT, "False", "ResendCoolingDown",
                                    f"asked to resend; the last one went out at {sent or 'no time yet'}: "
                                    f"it will be resent at {_text(until)}"), record, wake_at=until)
        fresh = _due(uid, token, domain, now)
        return Decision(_sending(fresh), fresh, due=True)
    if record is None:
        fresh = _due(uid, token, domain, now)
        return Decision(_sending(fresh), fresh, due=True)
    if record.get("skipped"):
        return Decision(Verdict(WELCOME_SENT, "False", "NotSent",
                                "the tenant was Ready and Active before welcome e-mails were sent: annotate it "
                                f"with {RESEND_ANNOTATION}=<anything new> to send one"), record)
    upcoming = record.get("nextAttemptAt")
    if upcoming and now < _time(upcoming):
        return Decision(Verdict(WELCOME_SENT, "False", record.get("reason") or "Retrying",
                                f"{record.get('message') or 'the last attempt failed'}; next attempt at {upcoming}"),
                        record, wake_at=_time(upcoming))
    return Decision(_sending(record) if not record.get("reason") else
                    Verdict(WELCOME_SENT, "False", record["reason"], f"{record.get('message')}; retrying now"),
                    record, due=True)


def replacing(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> dict[str, Any]:
    """status.welcome as a merge patch that replaces the old record: a merge patch merges objects,
    so each key of the old record that the new one lacks goes as null (which removes it)."""
    return {**dict.fromkeys(old or {}), **new}


def pending_recipients(record: Mapping[str, Any], wanted: Sequence[str]) -> list[str]:
    """Who still has to get this sending: every listed recipient the relay has not accepted yet."""
    accepted = {address.casefold() for address in record.get("to", [])}
    return [address for address in wanted if address.casefold() not in accepted]


def retry_delay(attempts: int, first: float = FIRST_RETRY_SECONDS) -> float:
    return min(MAX_RETRY_SECONDS, first * 2 ** max(0, attempts - 1))


def after_attempt(record: Mapping[str, Any], accepted: Sequence[str], refused: Mapping[str, str],
                  failure: tuple[str, str] | None, now: datetime.datetime,
                  first_retry: float = FIRST_RETRY_SECONDS) -> dict[str, Any]:
    """The record once an attempt is over: accepted recipients added, the refused ones (with the
    relay's reply) or the failure (reason, message) kept for a retry with back-off."""
    # A failure (relay down) keeps the refused recipients of an earlier attempt: they still wait.
    dropped = ("reason", "message", "nextAttemptAt") if failure else ("refused", "reason", "message", "nextAttemptAt")
    updated = {k: v for k, v in record.items() if k not in dropped}
    if accepted:
        updated["to"] = [*record.get("to", []), *accepted]
        updated["sentAt"] = record.get("sentAt") or _text(now)
    if refused or failure:
        attempts = int(record.get("attempts", 0)) + 1
        updated["attempts"] = attempts
        updated["nextAttemptAt"] = _text(now + datetime.timedelta(seconds=retry_delay(attempts, first_retry)))
        if failure:
            updated["reason"], updated["message"] = failure
        else:
            updated["refused"] = [{"address": a, "reply": r} for a, r in refused.items()]
            updated["reason"] = "RecipientRefused"
            updated["message"] = "the relay refused " + "; ".join(f"{a} ({r})" for a, r in refused.items()) + \
                ": correct the address in spec.contact or spec.admins"
    else:
        updated["attempts"] = 0
    return updated


def without_unlisted_refusals(record: Mapping[str, Any], wanted: Sequence[str]) -> Mapping[str, Any]:
    """A refused recipient taken out of the spec is no longer waited for."""
    listed = {address.casefold() for address in wanted}
    refused = [r for r in record.get("refused", []) if r.get("address", "").casefold() in listed]
    if len(refused) == len(record.get("refused", [])):
        return record
    trimmed = {**record, "refused": refused}
    if not refused:
        trimmed = {k: v for k, v in trimmed.items() if k not in ("refused", "reason", "message", "nextAttemptAt")}
    return trimmed


# The go-live steps, in order: (name, the condition that says it is done).
_STEPS = (("NamespaceReady", NAMESPACE_READY), ("PlanResolved", FEATURES_READY),
          ("BrandingResolved", BRANDING_READY), ("PlatformDNSPublished", DNS_READY))


def checklist(verdicts: Sequence[Verdict], domains: Sequence[Mapping[str, Any]], welcome: Verdict,
              welcome_record: Mapping[str, Any] | None, usage: Mapping[str, Any] | None,
              previous: Sequence[Mapping[str, Any]], now: str) -> list[dict[str, Any]]:
    """Each go-live step: done or not, since when (the first time it was done is kept), and what it
    waits for."""
    by_type = {v.type: v for v in verdicts}
    steps: list[tuple[str, bool, str | None, str]] = []
    for name, condition in _STEPS:
        verdict = by_type.get(condition)
        steps.append((name, bool(verdict and verdict.ok), None, verdict.message if verdict else "not judged yet"))
    for domain in domains:
        steps.append((f"DomainVerified:{domain.get('name')}", bool(domain.get("verified")), domain.get("verifiedAt"),
                      domain.get("message") or "waiting for the customer's DNS records"))
    # Done once a sending reached everyone (a resend under way does not undo it).
    steps.append(("WelcomeSent", welcome.ok or complete(welcome_record), (welcome_record or {}).get("sentAt"),
                  welcome.message))
    # Any report counts (a reporter may leave out reportedAt); its time, when it gives one.
    steps.append(("FirstUsageReported", bool(usage), (usage or {}).get("reportedAt"),
                  "no usage reported by the platform yet"))
    before = {item.get("name"): item for item in previous}
    items = []
    for name, done, at, waiting in steps:
        old = before.get(name) or {}
        if done:
            items.append({"name": name, "done": True, "at": old.get("at") if old.get("done") else (at or now)})
        else:
            items.append({"name": name, "done": False, "message": waiting})
    return items
