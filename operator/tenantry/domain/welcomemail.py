"""The welcome e-mail itself (pure: built in memory, sent by adapters/smtp).

multipart/mixed: the text and HTML alternatives, and the onboarding appointment as an RFC 5545
invitation (icalendar) when spec.onboarding.appointment is set. Every value a partner wrote reaches
the HTML through Jinja2's autoescaping; the two that reach CSS (colours) and the one that reaches a
src attribute (the logo) are checked against their allow-lists once more here, because a Branding
written with the webhook down was never checked by it. Headers get one line each (no CR/LF can add
a header). It carries no password or token: the customer signs in with the company's own account.
"""

from __future__ import annotations

import datetime
import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from typing import TYPE_CHECKING, Any

from tenantry.api.branding import HTTPS_URL, BrandingSpec
from tenantry.api.common import HEX_COLOUR
from tenantry.api.tenant import Appointment

if TYPE_CHECKING:
    import jinja2

DEFAULT_COLOUR, DEFAULT_TEXT_COLOUR = "#1F4E79", "#FFFFFF"

# The operator's own words, per language; a Branding's welcome text comes on top.
WORDS: dict[str, dict[str, str]] = {
    "en": {"subject": "{product}: the workspace of {company} is ready", "hello": "Hello {name},",
           "ready": "the AI workspace of {company} is ready. Sign in with your company account:",
           "open": "Open {product}", "assistant": "Your assistant {assistant} is waiting for you.",
           "dns": "Your own domains go live once these DNS records exist:",
           "appointment": "Your onboarding appointment: {when}", "where": "Where: {where}",
           "join": "Join online: {url}", "invitation": "The invitation is attached (onboarding.ics).",
           "support": "Questions? Your contact:", "event": "Onboarding: {product} for {company}",
           "minutes": "{minutes} minutes",
           "footer": "You receive this e-mail because {company} was set up on {product}. It contains no password."},
    "de": {"subject": "{product}: Der Arbeitsbereich von {company} ist bereit", "hello": "Hallo {name},",
           "ready": "der KI-Arbeitsbereich von {company} ist bereit. Melden Sie sich mit Ihrem Firmenkonto an:",
           "open": "{product} öffnen", "assistant": "Ihr Assistent {assistant} wartet auf Sie.",
           "dns": "Ihre eigenen Domains gehen online, sobald diese DNS-Einträge existieren:",
           "appointment": "Ihr Onboarding-Termin: {when}", "where": "Ort: {where}",
           "join": "Online teilnehmen: {url}", "invitation": "Die Einladung hängt an (onboarding.ics).",
           "support": "Fragen? Ihr Kontakt:", "event": "Onboarding: {product} für {company}",
           "minutes": "{minutes} Minuten",
           "footer": "Sie erhalten diese E-Mail, weil {company} auf {product} eingerichtet wurde. Sie enthält "
                     "kein Passwort."},
}


def language(branding: BrandingSpec | None, default: str) -> str:
    """The platform's default when the Branding has a welcome text in it, else the Branding's first
    language; the operator's words fall back to English where it has none of its own."""
    welcome = branding.welcome if branding else {}
    if not welcome or default in welcome:
        return default
    return next(iter(welcome))


def _words(lang: str) -> dict[str, str]:
    return WORDS.get(lang) or WORDS.get(lang.split("-")[0]) or WORDS["en"]


def one_line(text: str, limit: int = 200) -> str:
    """For a header or a subject: control characters, line breaks and bidirectional overrides become
    single spaces."""
    return " ".join(re.sub(r"[\x00-\x1f\x7f-\x9f\u200e\u200f\u2028-\u202e\u2066-\u2069]", " ", text).split())[:limit]


def _checked(value: str | None, pattern: str) -> str | None:
    return value if value is not None and re.fullmatch(pattern.strip("^$"), value) else None


EMAIL_FROM_DOMAINS_ANNOTATION = "tenantry.dev/email-from-domains"  # on a partner namespace, set by the platform


def partner_from_domains(annotations: Mapping[str, str] | None) -> tuple[str, ...]:
    """The sender domains the platform granted a partner (its namespace's annotation, which partners
    cannot write; chart partners[].emailFromDomains)."""
    text = (annotations or {}).get(EMAIL_FROM_DOMAINS_ANNOTATION, "")
    return tuple(d.strip().lower() for d in text.split(",") if d.strip())


def sender(branding: BrandingSpec | None, from_platform: bool, platform_from: str, platform_domains: Sequence[str],
           partner_domains: Sequence[str]) -> str:
    """The From address: the Branding's own when its domain is granted to whoever owns the Branding
    (the platform's list for its own Brandings, the partner's own list for a partner's), else the
    platform's. One list for all would let partner B send as partner A."""
    wanted = branding.email_from if branding else None
    allowed = platform_domains if from_platform else partner_domains
    if wanted and wanted.rsplit("@", 1)[1].lower() in {d.lower() for d in allowed}:
        return wanted
    return platform_from


@dataclass(frozen=True)
class Letter:
    """What the welcome says, gathered from the Tenant, its status and its Branding."""

    uid: str
    company: str
    contact_name: str
    url: str
    product: str  # the Branding's display name, else the platform's domain
    language: str
    branding: BrandingSpec | None = None
    pending_domains: Sequence[Mapping[str, Any]] = field(default_factory=list)  # status.domains not verified
    appointment: Appointment | None = None


@functools.cache
def _templates() -> jinja2.Environment:
    # jinja2 and icalendar are imported on the first welcome, not at start: together about 5 MiB
    # of code that an operator without SMTP settings never runs.
    import jinja2
    return jinja2.Environment(loader=jinja2.PackageLoader("tenantry.domain", "templates"),
                              autoescape=jinja2.select_autoescape(["html"]), keep_trailing_newline=True)


def prepare() -> None:
    """Load what a welcome e-mail needs now (jinja2 with both templates compiled, icalendar): an
    operator that sends them pays for it at its start, not with the event loop held in the middle of
    its first welcome (about 40 ms, while webhook calls and passes wait)."""
    import icalendar  # noqa: F401  (cached in sys.modules for _invitation)
    for name in ("welcome.txt", "welcome.html"):
        _templates().get_template(name)


def _when(start: datetime.datetime) -> str:
    offset = start.strftime("%z")
    return f"{start:%Y-%m-%d %H:%M} (UTC{offset[:3]}:{offset[3:]})" if offset else f"{start:%Y-%m-%d %H:%M}"


def _invitation(letter: Letter, words: Mapping[str, str], organizer: str, to: Sequence[str], domain: str,
                now: datetime.datetime) -> bytes:
    import icalendar  # on first use, as jinja2 in _templates
    assert letter.appointment is not None
    # In UTC: iCalendar has no fixed offsets, only UTC, floating times and named zones (VTIMEZONE).
    start = datetime.datetime.fromisoformat(letter.appointment.start.replace("Z", "+00:00")).astimezone(datetime.UTC)
    event = icalendar.Event()
    # One UID per tenant: a resend updates the same event in the calendar instead of adding one.
    event.add("uid", f"onboarding.{letter.uid}@{domain}")
    event.add("dtstamp", now)
    # A resend with another time must replace the event in the calendar: a higher SEQUENCE each time.
    event.add("sequence", int(now.timestamp()))
    event.add("dtstart", start)
    event.add("dtend", start + datetime.timedelta(minutes=letter.appointment.duration_minutes))
    event.add("summary", one_line(words["event"].format(product=letter.product, company=letter.company)))
    event.add("description", f"{letter.url}\n{letter.appointment.url or ''}".strip())
    if letter.appointment.location:
        event.add("location", one_line(letter.appointment.location))
    if letter.appointment.url:
        event.add("url", letter.appointment.url)
    host = icalendar.vCalAddress(f"mailto:{organizer}")
    host.params["cn"] = icalendar.vText(one_line(letter.product))
    event["organizer"] = host
    for address in to:
        attendee = icalendar.vCalAddress(f"mailto:{address}")
        attendee.params["role"] = icalendar.vText("REQ-PARTICIPANT")
        event.add("attendee", attendee)
    calendar = icalendar.Calendar()
    calendar.add("prodid", "-//tenantry//welcome//EN")
    calendar.add("version", "2.0")
    calendar.add("method", "REQUEST")
    calendar.add_component(event)
    return calendar.to_ical()


def compose(letter: Letter, from_address: str, to: Sequence[str], message_id: str, domain: str,
            now: datetime.datetime) -> EmailMessage:
    """The message, ready for the relay."""
    words = _words(letter.language)
    spec = letter.branding
    fill = {"product": letter.product, "company": letter.company}
    colours = spec.colours if spec else None
    look = {"primary": _checked(colours.primary if colours else None, HEX_COLOUR) or DEFAULT_COLOUR,
            "text": _checked(colours.text if colours else None, HEX_COLOUR) or DEFAULT_TEXT_COLOUR,
            "logo": _checked(spec.logo.url if spec and spec.logo else None, HTTPS_URL)}
    appointment = letter.appointment
    context = {
        "words": words, "letter": letter, "look": look,
        "hello": words["hello"].format(name=letter.contact_name),
        "ready": words["ready"].format(**fill), "open": words["open"].format(**fill),
        "assistant": words["assistant"].format(assistant=spec.assistant_name) if spec and spec.assistant_name else "",
        "welcome": (spec.welcome.get(letter.language) or "") if spec else "",
        "support": spec.support if spec else None,
        "appointment": words["appointment"].format(when=_when(datetime.datetime.fromisoformat(
            appointment.start.replace("Z", "+00:00")))) if appointment else "",
        "where": words["where"].format(where=one_line(appointment.location))
        if appointment and appointment.location else "",
        "join": words["join"].format(url=appointment.url) if appointment and appointment.url else "",
        "join_url": _checked(appointment.url, HTTPS_URL) if appointment else None,
        "url": _checked(letter.url, HTTPS_URL) or letter.url,
        "footer": words["footer"].format(**fill),
    }
    message = EmailMessage()
    message["Subject"] = one_line(words["subject"].format(**fill), 250)
    message["From"] = Address(display_name=one_line(letter.product, 100), addr_spec=from_address)
    message["To"] = ", ".join(to)
    message["Message-ID"] = message_id
    message["Date"] = format_datetime(now)
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to the relay
    message.set_content(_templates().get_template("welcome.txt").render(context))
    message.add_alternative(_templates().get_template("welcome.html").render(context), subtype="html")
    if appointment is not None:
        message.add_attachment(_invitation(letter, words, from_address, to, domain, now).decode(), subtype="calendar",
                               filename="onboarding.ics", params={"method": "REQUEST"})
    # Last: set_content and each change of the multipart structure move Content-* headers away.
    message["Content-Language"] = letter.language
    return message
