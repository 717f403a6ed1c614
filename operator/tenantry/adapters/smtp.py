"""The SMTP relay the platform configures: one message to its recipients, with what became of each.

aiosmtplib speaks to the relay: STARTTLS (the default), implicit TLS, or plain (only without
credentials, for a relay on loopback). A relay that refuses some recipients still delivers to the
others: both are reported, and the caller retries only the refused ones. Anything else (relay
unreachable, credentials refused, sender or message refused) is an SmtpFailure with a reason and
a message saying what to check.
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage

import aiosmtplib

from tenantry.domain.settings import SmtpSettings


class SmtpFailure(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason, self.message = reason, message


@dataclass(frozen=True)
class Delivery:
    accepted: list[str]
    refused: dict[str, str] = field(default_factory=dict)  # address -> the relay's reply


def _reply(response: object) -> str:
    code, text = getattr(response, "code", ""), getattr(response, "message", str(response))
    return " ".join(f"{code} {text}".split())[:300]


class SmtpRelay:
    """Sends through the configured relay; one connection per message (welcomes are rare)."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self._tls = ssl.create_default_context(cafile=settings.ca_file or None)

    async def send(self, message: EmailMessage, sender: str, recipients: Sequence[str]) -> Delivery:
        s = self.settings
        # The relay's name stays in the operator's log: the message reaches partners (status, portal).
        where = "the platform's SMTP relay"
        try:
            refused, _ = await aiosmtplib.send(
                message, sender=sender, recipients=list(recipients), hostname=s.host, port=s.port,
                username=s.username or None, password=s.password or None, timeout=s.timeout_seconds,
                use_tls=s.tls == "tls", start_tls={"starttls": True, "tls": False, "none": False}[s.tls],
                tls_context=self._tls if s.tls != "none" else None)
        except aiosmtplib.SMTPRecipientsRefused as error:
            return Delivery([], {e.recipient: _reply(e) for e in error.recipients})
        except aiosmtplib.SMTPAuthenticationError as error:
            raise SmtpFailure("AuthenticationFailed", f"{where} refused the operator's credentials: the platform "
                              "team checks the Secret named by smtp.existingSecret") from error
        except aiosmtplib.SMTPSenderRefused as error:
            raise SmtpFailure("SenderRefused", f"{where} refused the sender {sender} ({_reply(error)}): check "
                              "smtp.from and the Branding's emailFrom") from error
        except aiosmtplib.SMTPDataError as error:
            raise SmtpFailure("MessageRefused", f"{where} refused the message ({_reply(error)})") from error
        except (aiosmtplib.SMTPException, OSError) as error:
            raise SmtpFailure("RelayUnavailable", f"{where} could not be reached or broke off "
                              f"({type(error).__name__}); the operator's log has the details") from error
        return Delivery([r for r in recipients if r not in refused], {r: _reply(e) for r, e in refused.items()})
