"""The welcome e-mail's decisions and the message itself, without a cluster or a relay.

Tested here:
- when it is due: the first time a tenant is Ready and Active (not for a trial, Suspended, Cancelled,
  without SMTP, or for a tenant that was already serving before: an upgrade mails nobody), and again
  for a new resend annotation, after the cool-down
- the Message-ID: the same for every attempt of one sending, new for a resend
- retries: back-off that grows and is capped, refused recipients kept and only they retried, a
  refused recipient taken out of the spec no longer waited for
- the checklist: each step with the time it was first done, kept across passes
- a partner's appointment with markup, a line break or a URL with user@ is refused by the model and
  by the CRD's own pattern (the webhook down); a new record replaces the old one in a merge patch
- the message: recipients, subject and both parts, the branding, hostile names escaped in HTML and
  kept to one line in headers, colours and logo re-checked, the .ics parsed back with icalendar,
  no password or token anywhere
- prepare (called at the operator's start when SMTP is configured) compiles both templates, so the
  first welcome does not hold the event loop for it
"""

from __future__ import annotations

import datetime
import email
import email.policy
import re
from pathlib import Path

import icalendar
import pytest
import yaml

from tenantry.api.branding import BrandingSpec
from tenantry.api.tenant import TenantSpec
from tenantry.domain import welcome, welcomemail
from tenantry.domain.status import DNS_READY, NAMESPACE_READY, READY, Verdict

NOW = datetime.datetime(2027, 1, 10, 9, 0, tzinfo=datetime.UTC)
READY_ACTIVE = Verdict(READY, "True", "Provisioned", "serving")


def _decide(record=None, *, now_serving=True, before=False, state="Active", configured=True, token="", now=NOW):
    return welcome.decide(record, serving_now=now_serving, serving_before=before, state=state,
                          configured=configured, token=token, uid="uid-1", domain="platform.example", now=now)


def test_due_the_first_time_a_tenant_serves_and_recorded_as_due() -> None:
    decision = _decide()
    assert decision.due and decision.verdict.reason == "Sending" and decision.verdict.status == "False"
    assert decision.record == {"messageId": welcome.message_id("uid-1", "", "platform.example"),
                               "dueSince": "2027-01-10T09:00:00Z"}  # no "" in a status: 1.20 stores it as null


@pytest.mark.parametrize(("state", "reason"), [("Trial", "NotServing"), ("Suspended", "NotServing"),
                                               ("Cancelled", "NotServing")])
def test_not_sent_for_trials_suspended_or_cancelled_tenants(state: str, reason: str) -> None:
    decision = _decide(now_serving=False, state=state)
    assert not decision.due and decision.verdict.reason == reason and state in decision.verdict.message
    assert decision.record is None


def test_not_sent_without_smtp_and_the_condition_says_so() -> None:
    decision = _decide(configured=False)
    assert not decision.due and decision.verdict.reason == "SmtpNotConfigured" and decision.record is None


def test_a_tenant_serving_before_gets_none_unless_asked_even_after_a_ready_flap() -> None:
    decision = _decide(before=True)
    assert not decision.due and decision.verdict.reason == "NotSent"
    assert welcome.RESEND_ANNOTATION in decision.verdict.message
    assert decision.record["skipped"] == welcome.SERVED_BEFORE  # recorded: an upgrade mails nobody, ever
    flapped = _decide(decision.record, before=False)  # DNS went down and came back: Ready again
    assert not flapped.due and flapped.verdict.reason == "NotSent"
    assert _decide(before=True, configured=False).record is None  # without a relay: no write at all
    asked = _decide(decision.record, token=welcome.resend_token({welcome.RESEND_ANNOTATION: "1"}))
    assert asked.due and "skipped" not in asked.record


def test_serving_means_ready_provisioned_and_active() -> None:
    assert welcome.serving(READY_ACTIVE, "Active")
    assert not welcome.serving(READY_ACTIVE, "Trial")
    assert not welcome.serving(Verdict(READY, "True", "Suspended"), "Suspended")
    assert not welcome.serving(Verdict(READY, "False", "DNSFailed"), "Active")
    assert welcome.serving({"status": "True", "reason": "Provisioned"}, None)  # a status from before status.state


def _sent(token: str = "", at: str = "2027-01-10T09:00:05Z") -> dict:
    return {"messageId": welcome.message_id("uid-1", token, "platform.example"),
            **({"resendToken": token} if token else {}),
            "dueSince": "2027-01-10T09:00:00Z", "sentAt": at, "to": ["max@mustermann.de"], "attempts": 0}


def test_once_sent_it_stays_sent_whatever_happens_next() -> None:
    for kwargs in ({}, {"before": True}, {"now_serving": False, "state": "Suspended"}, {"configured": False}):
        decision = _decide(_sent(), **kwargs)
        assert not decision.due and decision.verdict.ok and decision.verdict.reason == "Sent", kwargs


def test_a_resend_gets_a_new_message_id_after_the_cool_down() -> None:
    token = welcome.resend_token({welcome.RESEND_ANNOTATION: "2027-01-10"})
    early = _decide(_sent(), token=token, now=NOW + datetime.timedelta(minutes=1))
    assert not early.due and early.verdict.reason == "ResendCoolingDown"
    assert early.wake_at == datetime.datetime(2027, 1, 10, 9, 10, 5, tzinfo=datetime.UTC)
    later = _decide(_sent(), token=token, now=NOW + datetime.timedelta(minutes=11))
    assert later.due and later.record["resendToken"] == token
    assert later.record["messageId"] != _sent()["messageId"]
    assert _decide(_sent(token), token=token).verdict.reason == "Sent"  # answered: nothing more


def test_failures_back_off_and_wait_for_their_time() -> None:
    record = _decide().record
    failed = welcome.after_attempt(record, [], {}, ("RelayUnavailable", "the relay is down"), NOW)
    assert failed["attempts"] == 1 and failed["nextAttemptAt"] == "2027-01-10T09:00:30Z"
    waiting = _decide(failed)
    assert not waiting.due and waiting.verdict.reason == "RelayUnavailable" and waiting.wake_at is not None
    assert _decide(failed, now=NOW + datetime.timedelta(seconds=31)).due
    again = welcome.after_attempt(failed, [], {}, ("RelayUnavailable", "down"), NOW)
    assert again["attempts"] == 2 and again["nextAttemptAt"] == "2027-01-10T09:01:00Z"
    assert welcome.retry_delay(30) == welcome.MAX_RETRY_SECONDS
    sent = welcome.after_attempt(again, ["max@mustermann.de"], {}, None, NOW)
    assert welcome.complete(sent) and "reason" not in sent and "nextAttemptAt" not in sent


def test_a_refused_recipient_is_retried_alone_until_fixed_in_the_spec() -> None:
    record = _decide().record
    partly = welcome.after_attempt(record, ["max@mustermann.de"], {"typo@mustermann.de": "550 5.1.1 unknown"},
                                   None, NOW)
    assert not welcome.complete(partly) and partly["reason"] == "RecipientRefused"
    assert "typo@mustermann.de (550 5.1.1 unknown)" in partly["message"]
    wanted = ["max@mustermann.de", "typo@mustermann.de"]
    assert welcome.pending_recipients(partly, wanted) == ["typo@mustermann.de"]
    fixed = welcome.without_unlisted_refusals(partly, ["max@mustermann.de"])
    assert welcome.complete(fixed) and _decide(fixed).verdict.reason == "Sent"


def test_a_failure_after_a_refusal_keeps_the_refused_recipient_waiting() -> None:
    partly = welcome.after_attempt(_decide().record, ["alice@m.de"], {"bob@m.de": "450 4.2.0 greylisted"}, None, NOW)
    down = welcome.after_attempt(partly, [], {}, ("RelayUnavailable", "down"), NOW)
    assert down["refused"] == partly["refused"] and not welcome.complete(down)
    assert _decide(down, now=NOW + datetime.timedelta(hours=2)).due


def test_a_resend_does_not_skip_a_back_off_under_way() -> None:
    failing = welcome.after_attempt(_decide().record, [], {}, ("AuthenticationFailed", "refused"), NOW)
    asked = _decide(failing, token=welcome.resend_token({welcome.RESEND_ANNOTATION: "now"}))
    assert not asked.due and asked.verdict.reason == "ResendCoolingDown"
    assert asked.wake_at == welcome._time(failing["nextAttemptAt"])


def test_recipients_are_the_contact_and_the_admins_each_once() -> None:
    spec = TenantSpec.model_validate({"company": "M", "contact": {"name": "Max", "email": "Max@m.de"},
                                      "plan": {"featureSet": "business", "seats": 5},
                                      "admins": ["max@m.de", "eva@m.de"]})
    assert welcome.recipients(spec) == ["Max@m.de", "eva@m.de"]


def test_the_checklist_keeps_the_first_time_each_step_was_done() -> None:
    verdicts = [Verdict(NAMESPACE_READY, "True", "Provisioned"), Verdict(DNS_READY, "False", "DNSFailed", "bind down")]
    sending = Verdict("WelcomeSent", "False", "Sending", "due")
    domains = [{"name": "ki.m.de", "verified": False, "message": "create the TXT record"}]
    first = welcome.checklist(verdicts, domains, sending, None, None, [], "2027-01-10T09:00:00Z")
    by_name = {item["name"]: item for item in first}
    assert by_name["NamespaceReady"] == {"name": "NamespaceReady", "done": True, "at": "2027-01-10T09:00:00Z"}
    assert by_name["PlatformDNSPublished"]["message"] == "bind down" and not by_name["PlatformDNSPublished"]["done"]
    assert by_name["DomainVerified:ki.m.de"]["message"] == "create the TXT record"
    assert [i["name"] for i in first][-2:] == ["WelcomeSent", "FirstUsageReported"]
    later = welcome.checklist(verdicts, domains, Verdict("WelcomeSent", "True", "Sent"), _sent(),
                              {"reportedAt": "2027-01-11T00:00:00Z"}, first, "2027-01-12T00:00:00Z")
    by_name = {item["name"]: item for item in later}
    assert by_name["NamespaceReady"]["at"] == "2027-01-10T09:00:00Z"  # kept
    assert by_name["WelcomeSent"]["at"] == "2027-01-10T09:00:05Z"
    assert by_name["FirstUsageReported"]["at"] == "2027-01-11T00:00:00Z"
    again = welcome.checklist(verdicts, domains, Verdict("WelcomeSent", "True", "Sent"), _sent(),
                              {"reportedAt": "2027-02-01T00:00:00Z"}, later, "2027-02-01T00:00:00Z")
    assert again == later  # the first report's time stays: a steady pass writes nothing


HOSTILE = 'Evil <script>alert(1)</script> & "Co"\r\nBcc: victim@example.com \u202egnp.exe'


def _letter(**overrides) -> welcomemail.Letter:
    branding = BrandingSpec.model_validate({
        "displayName": "Acme AI", "colours": {"primary": "#112233", "text": "#FFFFFF"},
        "logo": {"url": "https://cdn.acme.example/logo.png"}, "assistantName": "Aria",
        "welcome": {"de": "Willkommen bei Acme!", "en": "Welcome to Acme!"},
        "support": {"email": "help@acme.example", "phone": "+49 521 1234567"}})
    base = {"uid": "uid-1", "company": HOSTILE, "contact_name": "Max <b>Mustermann</b>",
            "url": "https://mustermann.platform.example", "product": "Acme AI", "language": "de",
            "branding": branding,
            "pending_domains": [{"name": "ki.m.de", "records": [{"type": "CNAME", "name": "ki.m.de",
                                                                 "value": "mustermann.platform.example"}]}],
            "appointment": TenantSpec.model_validate({
                "company": "M", "contact": {"name": "M", "email": "m@m.de"}, "plan": {"featureSet": "b", "seats": 1},
                "onboarding": {"appointment": {"start": "2027-01-14T10:00:00+01:00", "durationMinutes": 90,
                                               "location": "Raum 3; Bielefeld, DE",
                                               "url": "https://meet.acme.example/x"}}}).onboarding.appointment}
    return welcomemail.Letter(**{**base, **overrides})


def _compose(letter: welcomemail.Letter) -> email.message.EmailMessage:
    raw = welcomemail.compose(letter, "welcome@platform.example", ["max@m.de", "eva@m.de"], "<welcome.x@p.example>",
                              "platform.example", NOW).as_bytes()
    return email.message_from_bytes(raw, policy=email.policy.default)


def test_the_message_has_both_parts_the_branding_and_the_invitation() -> None:
    message = _compose(_letter())
    assert message["To"] == "max@m.de, eva@m.de" and message["Message-ID"] == "<welcome.x@p.example>"
    assert message["From"].addresses[0].display_name == "Acme AI" and message["Content-Language"] == "de"
    assert message["Subject"].startswith("Acme AI: Der Arbeitsbereich von Evil")
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    for part in (text, html):
        assert "https://mustermann.platform.example" in part and "Willkommen bei Acme!" in part
        assert "Aria" in part and "help@acme.example" in part and "+49 521 1234567" in part
        assert "mustermann.platform.example" in part and "ki.m.de" in part
        assert "2027-01-14 10:00 (UTC+01:00)" in part
    assert "background:#112233" in html and 'src="https://cdn.acme.example/logo.png"' in html
    invitation = next(p for p in message.iter_attachments() if p.get_content_type() == "text/calendar")
    assert invitation.get_param("method") == "REQUEST" and invitation.get_filename() == "onboarding.ics"
    calendar = icalendar.Calendar.from_ical(invitation.get_content())
    event = next(iter(calendar.walk("VEVENT")))
    assert event.decoded("dtstart") == datetime.datetime(2027, 1, 14, 9, 0, tzinfo=datetime.UTC)
    assert event.decoded("dtend") - event.decoded("dtstart") == datetime.timedelta(minutes=90)
    assert str(event["location"]) == "Raum 3; Bielefeld, DE"
    assert str(event["uid"]) == "onboarding.uid-1@platform.example"
    assert sorted(str(a) for a in event["attendee"]) == ["mailto:eva@m.de", "mailto:max@m.de"]
    assert str(calendar["method"]) == "REQUEST"


def test_hostile_names_are_escaped_in_html_and_cannot_add_headers() -> None:
    message = _compose(_letter())
    html = message.get_body(("html",)).get_content()
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<b>Mustermann</b>" not in html and "&lt;b&gt;Mustermann&lt;/b&gt;" in html
    assert message["Bcc"] is None and "\n" not in message["Subject"] and "\u202e" not in message["Subject"]
    assert "Bcc: victim@example.com" in message["Subject"]  # kept as words of the subject, not a header


def test_colours_and_logo_are_checked_again_for_a_branding_stored_without_the_webhook() -> None:
    forged = BrandingSpec.model_construct(colours=type("C", (), {"primary": "red;background:url(//evil)",
                                                                  "text": "#FFF"})(),
                                          logo=type("L", (), {"url": "javascript:alert(1)"})(),
                                          display_name=None, assistant_name=None, welcome={}, support=None,
                                          email_from=None)
    html = _compose(_letter(branding=forged)).get_body(("html",)).get_content()
    assert "evil" not in html and "javascript:" not in html
    assert f"background:{welcomemail.DEFAULT_COLOUR}" in html


def test_the_from_address_is_the_brandings_only_within_the_domains_granted_to_its_owner() -> None:
    own = BrandingSpec.model_validate({"colours": {"primary": "#112233"}, "emailFrom": "hello@acme.example"})
    platform = "welcome@platform.example"
    # A partner's Branding: only the domains the platform granted that partner (its namespace's annotation).
    granted = welcomemail.partner_from_domains({welcomemail.EMAIL_FROM_DOMAINS_ANNOTATION: "Acme.example, x.example"})
    assert welcomemail.sender(own, False, platform, [], granted) == "hello@acme.example"
    # Partner B, with the platform's list naming acme.example, still cannot send as acme.example.
    assert welcomemail.sender(own, False, platform, ["acme.example"], ["b.example"]) == platform
    # The platform's own Branding: the platform's list.
    assert welcomemail.sender(own, True, platform, ["acme.example"], []) == "hello@acme.example"
    assert welcomemail.sender(own, True, platform, [], ["acme.example"]) == platform
    assert welcomemail.sender(None, False, platform, [], []) == platform


def test_the_language_is_the_platforms_when_the_branding_has_it_else_the_brandings_own() -> None:
    both = BrandingSpec.model_validate({"colours": {"primary": "#112233"}, "welcome": {"de": "Hallo", "en": "Hi"}})
    french = BrandingSpec.model_validate({"colours": {"primary": "#112233"}, "welcome": {"fr": "Bonjour"}})
    assert welcomemail.language(both, "en") == "en" and welcomemail.language(french, "en") == "fr"
    assert welcomemail.language(None, "de") == "de"
    words = _compose(_letter(language="fr", branding=french)).get_body(("plain",)).get_content()
    assert "Bonjour" in words and "Sign in with your company account" in words  # English around a French text


def test_no_secret_reaches_the_message() -> None:
    raw = welcomemail.compose(_letter(), "welcome@platform.example", ["max@m.de"], "<w@p>", "platform.example",
                              NOW).as_string()
    assert "password" not in raw.lower().replace("no password", "").replace("kein passwort", "")
    assert "token" not in raw.lower()


def test_a_new_record_replaces_the_old_one_in_a_merge_patch() -> None:
    old = welcome.after_attempt(_decide().record, [], {}, ("RelayUnavailable", "down"), NOW)
    patch = welcome.replacing(old, _sent())
    assert patch["reason"] is None and patch["nextAttemptAt"] is None  # null removes them
    assert patch["sentAt"] == _sent()["sentAt"] and welcome.replacing(None, _sent()) == _sent()


@pytest.mark.parametrize(("field", "value"), [
    ("location", "Raum 3\x85Bcc"), ("location", "<b>hall</b>"), ("location", "line\nbreak"),
    ("url", "https://bank.example@evil.example/"), ("url", "javascript:alert(1)"), ("url", "https://x/\"><script>"),
    ("start", "2027-02-30T10:00:00Z")])
def test_a_partners_appointment_cannot_carry_markup_breaks_or_foreign_urls(field: str, value: str) -> None:
    """What reaches the e-mail's HTML, its text and the .ics: the model refuses it (the webhook and
    the operator's own parse), and the CRD's pattern refuses the same with the webhook down."""
    appointment = {"start": "2027-01-14T10:00:00+01:00", field: value}
    with pytest.raises(ValueError):
        TenantSpec.model_validate({"company": "M", "contact": {"name": "M", "email": "m@m.de"},
                                   "plan": {"featureSet": "b", "seats": 1}, "onboarding": {"appointment": appointment}})
    crd = yaml.safe_load((Path(__file__).resolve().parents[2] / "crds" / "tenantry.dev_tenants.yaml").read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    prop = schema["onboarding"]["properties"]["appointment"]["properties"][field]
    pattern = prop.get("pattern")
    if pattern and field != "start":
        assert not re.search(pattern, value), f"the API server would store {value!r}"


def test_prepare_compiles_both_templates_before_the_first_welcome() -> None:
    welcomemail._templates.cache_clear()
    assert len(welcomemail._templates().cache) == 0
    welcomemail.prepare()
    assert len(welcomemail._templates().cache) == 2
