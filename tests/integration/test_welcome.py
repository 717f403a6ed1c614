"""The welcome e-mail through a real SMTP server on loopback (aiosmtpd), from the real operator.

Tested here (the session's operator runs with an SMTP relay for this module, then without again):
- the first time a tenant is Ready and Active, one message goes to the contact and every admin
  (each once): subject, both parts, the partner's Branding (name, colours, logo, assistant, welcome
  text in the Branding's language, support contact), the tenant's URL, the pending DNS records of its
  custom domain, the .ics appointment parsed back; a hostile company name is escaped in the HTML, and
  one with a line break (a Bcc header of its own) is refused by the API server; a partner's emailFrom
  outside the domains granted to it is not used (not even in a domain the platform allows for its
  own Brandings);
  the status records when, to whom and the Message-ID, and the checklist has WelcomeSent done
- an operator restart and a later pass send nothing more
- a SIGKILL of the operator between "sent" and "recorded" (the relay kills it on receipt, before it
  hears "250"): the next run sends it again with the same Message-ID (at-least-once, dedupable)
- a relay that is down: WelcomeSent=False (RelayUnavailable) with the tenant still Ready, retried
  with back-off, and sent once the relay is back
- a relay that refuses one recipient: the others get it once; the refused one is named in the
  condition and retried; taken out of the spec, the welcome counts as sent
- the resend annotation sends it again, with a new Message-ID
- a Trial tenant gets nothing until it converts to Active; a Suspended one gets nothing
- a partner cannot mail more recipients than its hourly limit: the next tenant waits (PartnerLimitReached)
- without SMTP: WelcomeSent=False (SmtpNotConfigured) and nothing else changes
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator

import icalendar
import markupsafe
import pytest

from tenantry.devtools.mailcatcher import Caught, MailCatcher
from tests.integration.fixtures import ClusterHandle, OperatorProcess, Partner, wait_for
from tests.integration.net import free_port

pytestmark = pytest.mark.integration

SENDER = "welcome@platform.test"
PARTNER_LIMIT = 3  # welcome e-mail recipients per partner and hour; each test has its own partner
HOSTILE_COMPANY = 'Evil <script>alert("x")</script> & Co'
HEADER_INJECTION = HOSTILE_COMPANY + "\r\nBcc: victim@example.com"


@pytest.fixture(scope="module")
def relay(operator: OperatorProcess) -> Iterator[MailCatcher]:
    catcher = MailCatcher(free_port())
    catcher.start()
    before = dict(operator.extra_env)
    operator.restart_with({**before, "TENANTRY_SMTP_HOST": "127.0.0.1", "TENANTRY_SMTP_PORT": str(catcher.port),
                           "TENANTRY_SMTP_TLS": "none", "TENANTRY_SMTP_FROM": SENDER,
                           "TENANTRY_SMTP_ALLOWED_FROM_DOMAINS": "partner-mail.test",
                           "TENANTRY_WELCOME_FIRST_RETRY_SECONDS": "1",
                           "TENANTRY_WELCOME_PARTNER_HOURLY_LIMIT": str(PARTNER_LIMIT),
                           "TENANTRY_WELCOME_RESEND_COOLDOWN_SECONDS": "1"})
    yield catcher
    catcher.on_data = None
    operator.restart_with(before)
    catcher.stop()


def _status(partner: Partner, slug: str) -> dict:
    return (partner.get(slug) or {}).get("status") or {}


def _sent(partner: Partner, slug: str, timeout: float = 90) -> dict:
    partner.wait_condition(slug, "True", "Sent", kind="WelcomeSent", timeout=timeout)
    return _status(partner, slug)["welcome"]


def _branding(partner: Partner, name: str) -> dict:
    return {"apiVersion": "tenantry.dev/v1alpha1", "kind": "Branding",
            "metadata": {"name": name, "namespace": partner.namespace},
            "spec": {"displayName": "Acme KI", "colours": {"primary": "#0A3D62", "text": "#FFFFFF"},
                     "logo": {"url": "https://cdn.acme.test/logo.png"}, "assistantName": "Aria",
                     "welcome": {"de": "Willkommen bei Acme KI!"},
                     "support": {"email": "hilfe@acme.test", "phone": "+49 521 9876543"},
                     "emailFrom": "ceo@bank.test"}}


def test_sent_once_to_the_contact_and_admins_in_the_partners_branding(
        relay: MailCatcher, partner: Partner, operator: OperatorProcess) -> None:
    slug = partner.slug("welcome")
    partner.apply(_branding(partner, "acme-look"))
    # A line break in the company (a header of the e-mail's own) is refused by the API server.
    with pytest.raises(AssertionError, match="spec.company"):
        partner.apply(partner.tenant(slug, company=HEADER_INJECTION))
    partner.apply(partner.tenant(
        slug, company=HOSTILE_COMPANY, branding="acme-look", domains=[f"ki.{slug}.example"],
        admins=["max@mustermann.de", "eva@mustermann.de", "Ops@Mustermann.de"],
        onboarding={"appointment": {"start": "2027-01-14T10:00:00+01:00", "durationMinutes": 90,
                                    "location": "Raum 3, Bielefeld", "url": "https://meet.acme.test/onboarding"}}))
    record = _sent(partner, slug)
    caught = relay.to("max@mustermann.de")
    assert len(caught) == 1, [c.message["Message-ID"] for c in caught]
    mail = caught[0]
    assert sorted(mail.recipients) == ["Ops@Mustermann.de", "eva@mustermann.de", "max@mustermann.de"]
    assert sorted(record["to"]) == sorted(mail.recipients) and record["messageId"] == mail.message["Message-ID"]
    # The platform's From: the Branding's ceo@bank.test is outside the allowed domains.
    assert mail.sender == SENDER and mail.message["From"].addresses[0].addr_spec == SENDER
    assert mail.message["From"].addresses[0].display_name == "Acme KI"
    assert mail.message["Bcc"] is None and "\n" not in mail.message["Subject"]
    assert mail.message["Subject"].startswith("Acme KI: Der Arbeitsbereich von Evil")
    text = mail.message.get_body(("plain",)).get_content()
    page = mail.message.get_body(("html",)).get_content()
    url = _status(partner, slug)["url"]
    for part in (text, page):
        assert url in part and "Willkommen bei Acme KI!" in part and "Aria" in part
        assert "hilfe@acme.test" in part and "+49 521 9876543" in part
        assert f"ki.{slug}.example" in part  # its DNS records are still pending
        assert "2027-01-14 10:00 (UTC+01:00)" in part
    assert "<script>" not in page and str(markupsafe.escape('<script>alert("x")</script>')) in page
    assert "background:#0A3D62" in page and 'src="https://cdn.acme.test/logo.png"' in page
    invitation = next(p for p in mail.message.iter_attachments() if p.get_content_type() == "text/calendar")
    event = next(iter(icalendar.Calendar.from_ical(invitation.get_content()).walk("VEVENT")))
    assert event.decoded("dtstart") == datetime.datetime(2027, 1, 14, 9, 0, tzinfo=datetime.UTC)
    assert str(event["location"]) == "Raum 3, Bielefeld"
    token = operator.kubeconfig.read_text().split("token:")[-1].split()[0]
    assert token not in mail.raw.decode(errors="replace")
    checklist = {item["name"]: item for item in _status(partner, slug)["onboarding"]}
    assert checklist["WelcomeSent"]["done"] and checklist["WelcomeSent"]["at"] == record["sentAt"]
    assert checklist["NamespaceReady"]["done"] and not checklist[f"DomainVerified:ki.{slug}.example"]["done"]
    assert not checklist["FirstUsageReported"]["done"]
    assert partner.condition(slug)["status"] == "True"

    # A restart, then a pass (a spec change): nothing more.
    operator.restart_with(operator.extra_env)
    partner.apply(partner.tenant(
        slug, company=HOSTILE_COMPANY, branding="acme-look", domains=[f"ki.{slug}.example"], industry="Maschinenbau",
        admins=["max@mustermann.de", "eva@mustermann.de", "Ops@Mustermann.de"],
        onboarding={"appointment": {"start": "2027-01-14T10:00:00+01:00", "durationMinutes": 90,
                                    "location": "Raum 3, Bielefeld", "url": "https://meet.acme.test/onboarding"}}))
    partner.wait_condition(slug, "True")
    partner.wait_condition(slug, "True", "Sent", kind="WelcomeSent")
    assert len(relay.to("max@mustermann.de")) == 1
    assert _status(partner, slug)["welcome"] == record


def test_a_partner_sends_from_its_own_domain_only_when_granted(
        relay: MailCatcher, partner: Partner, cluster: ClusterHandle) -> None:
    # What the chart's partners[].emailFromDomains renders; partners cannot write their namespace.
    cluster.kubectl("annotate", "namespace", partner.namespace, "tenantry.dev/email-from-domains=acme.test")
    own, borrowed = partner.slug("welcome-own"), partner.slug("welcome-borrowed")
    for slug, address in ((own, "hallo@acme.test"), (borrowed, "hallo@partner-mail.test")):
        branding = _branding(partner, f"look-{slug}")
        branding["spec"]["emailFrom"] = address
        partner.apply(branding)
        partner.apply(partner.tenant(slug, branding=f"look-{slug}", contact={"name": "M", "email": f"{slug}@m.de"},
                                     admins=[]))
    _sent(partner, own)
    _sent(partner, borrowed)
    [mine] = relay.to(f"{own}@m.de")
    assert mine.sender == "hallo@acme.test" and mine.message["From"].addresses[0].addr_spec == "hallo@acme.test"
    # partner-mail.test is the platform's (for its own Brandings), not granted to this partner.
    [theirs] = relay.to(f"{borrowed}@m.de")
    assert theirs.sender == SENDER


def test_a_kill_between_sending_and_recording_sends_it_again_with_the_same_message_id(
        relay: MailCatcher, partner: Partner, operator: OperatorProcess) -> None:
    slug = partner.slug("welcome-kill")
    contact = f"kill-{slug}@mustermann.de"

    def kill_before_250(caught: Caught) -> None:
        if contact in caught.recipients:
            relay.on_data = None
            operator.kill()  # the relay has the message; the operator never hears "250"

    relay.on_data = kill_before_250
    partner.apply(partner.tenant(slug, contact={"name": "Max", "email": contact}, admins=[]))
    wait_for(lambda: operator.process is not None and operator.process.poll() is not None, timeout=90,
             what="the relay to kill the operator on receipt")
    assert "sentAt" not in _status(partner, slug)["welcome"]  # not recorded
    operator.start()
    record = _sent(partner, slug)
    copies = relay.to(contact)
    assert len(copies) == 2 and {c.message["Message-ID"] for c in copies} == {record["messageId"]}
    partner.apply(partner.tenant(slug, contact={"name": "Max", "email": contact}, admins=[], industry="Handel"))
    partner.wait_condition(slug, "True")
    assert len(relay.to(contact)) == 2


def test_a_relay_that_is_down_then_back(relay: MailCatcher, partner: Partner) -> None:
    slug = partner.slug("welcome-down")
    contact = f"down-{slug}@mustermann.de"
    relay.stop()
    try:
        partner.apply(partner.tenant(slug, contact={"name": "Max", "email": contact}, admins=[]))
        failing = partner.wait_condition(slug, "False", "RelayUnavailable", kind="WelcomeSent", timeout=90)
        assert "could not be reached" in failing["message"] and "next attempt at" in failing["message"]
        assert partner.condition(slug)["status"] == "True"  # still Ready: the mail is not the tenant
        wait_for(lambda: _status(partner, slug)["welcome"].get("attempts", 0) >= 2, timeout=60,
                 what="a second attempt, after the back-off")
    finally:
        relay.start()
    record = _sent(partner, slug)
    assert len(relay.to(contact)) == 1 and record["attempts"] == 0


def test_a_refused_recipient_is_named_and_retried_and_the_others_get_it_once(
        relay: MailCatcher, partner: Partner) -> None:
    slug = partner.slug("welcome-refused")
    contact, typo = f"ok-{slug}@mustermann.de", f"typo-{slug}@mustermann.de"
    relay.refuse.add(typo)
    partner.apply(partner.tenant(slug, contact={"name": "Max", "email": contact}, admins=[contact, typo]))
    refused = partner.wait_condition(slug, "False", "RecipientRefused", kind="WelcomeSent", timeout=90)
    assert typo in refused["message"] and "550" in refused["message"]
    wait_for(lambda: _status(partner, slug)["welcome"].get("attempts", 0) >= 2, timeout=60, what="a retry")
    assert len(relay.to(contact)) == 1  # retries go to the refused recipient only
    partner.apply(partner.tenant(slug, contact={"name": "Max", "email": contact}, admins=[contact]))
    record = _sent(partner, slug)
    assert record["to"] == [contact] and len(relay.to(contact)) == 1


def test_the_resend_annotation_sends_it_again_with_a_new_message_id(
        relay: MailCatcher, partner: Partner, cluster: ClusterHandle) -> None:
    slug = partner.slug("welcome-resend")
    contact = f"resend-{slug}@mustermann.de"
    partner.apply(partner.tenant(slug, contact={"name": "Max", "email": contact}, admins=[]))
    first = _sent(partner, slug)
    cluster.kubectl("annotate", "tenant", slug, "-n", partner.namespace, "tenantry.dev/resend-welcome=please")
    wait_for(lambda: len(relay.to(contact)) == 2, timeout=90, what="the second welcome")
    second = _sent(partner, slug)
    assert second["messageId"] != first["messageId"] and second["resendToken"]
    assert [c.message["Message-ID"] for c in relay.to(contact)] == [first["messageId"], second["messageId"]]


def test_trials_and_suspended_tenants_get_nothing_until_active(relay: MailCatcher, partner: Partner) -> None:
    trial, suspended = partner.slug("welcome-trial"), partner.slug("welcome-susp")
    ends = (datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=14)).strftime("%Y-%m-%dT%H:%M:%SZ")
    trial_contact, suspended_contact = f"{trial}@mustermann.de", f"{suspended}@mustermann.de"
    partner.apply(partner.tenant(trial, contact={"name": "T", "email": trial_contact}, admins=[], state="Trial",
                                 trial={"ends": ends}))
    partner.apply(partner.tenant(suspended, contact={"name": "S", "email": suspended_contact}, admins=[],
                                 state="Suspended"))
    waiting = partner.wait_condition(trial, "False", "NotServing", kind="WelcomeSent", timeout=90)
    assert "Trial" in waiting["message"]
    assert "Suspended" in partner.wait_condition(suspended, "False", "NotServing", kind="WelcomeSent")["message"]
    assert relay.to(trial_contact) == [] and relay.to(suspended_contact) == []
    partner.apply(partner.tenant(trial, contact={"name": "T", "email": trial_contact}, admins=[]))  # converted
    _sent(partner, trial)
    assert len(relay.to(trial_contact)) == 1 and relay.to(suspended_contact) == []


def test_a_partner_cannot_mail_more_than_its_hourly_limit(relay: MailCatcher, partner: Partner) -> None:
    slugs = [partner.slug(f"welcome-many{i}") for i in range(PARTNER_LIMIT + 1)]
    for slug in slugs:
        partner.apply(partner.tenant(slug, contact={"name": "M", "email": f"{slug}@mustermann.de"}, admins=[]))
    wait_for(lambda: sum(len(relay.to(f"{slug}@mustermann.de")) for slug in slugs) == PARTNER_LIMIT, timeout=90,
             what=f"{PARTNER_LIMIT} welcome e-mails")
    wait_for(lambda: [slug for slug in slugs
                      if partner.condition(slug, "WelcomeSent").get("reason") == "PartnerLimitReached"], timeout=60,
             what="the tenant over the limit to say so")
    limited = [slug for slug in slugs if partner.condition(slug, "WelcomeSent").get("reason") == "PartnerLimitReached"]
    assert len(limited) == 1 and relay.to(f"{limited[0]}@mustermann.de") == []
    assert "smtp.partnerHourlyLimit" in partner.condition(limited[0], "WelcomeSent")["message"]


def test_without_smtp_nothing_is_sent_and_the_condition_says_so(partner: Partner, operator: OperatorProcess) -> None:
    if operator.extra_env.get("TENANTRY_SMTP_HOST"):
        operator.restart_with({k: v for k, v in operator.extra_env.items() if not k.startswith("TENANTRY_SMTP")})
    slug = partner.slug("welcome-none")
    partner.apply(partner.tenant(slug))
    condition = partner.wait_condition(slug, "False", "SmtpNotConfigured", kind="WelcomeSent", timeout=90)
    assert "smtp.host" in condition["message"]
    assert partner.condition(slug)["reason"] == "Provisioned"
    # Nothing sent, nothing recorded (a steady pass writes nothing); a relay configured later
    # records ServedBefore for this tenant at its first pass, and mails nobody.
    assert "welcome" not in _status(partner, slug)
