"""A local SMTP server that keeps every message it receives (aiosmtpd): the demo's mail catcher and
the welcome e-mail tests' relay. Not for production: it delivers nothing, it keeps.

    python -m tenantry.devtools.mailcatcher --port 2525 --folder .local/mail

Each message is kept in memory (tests) and, with a folder, written there as <n>-<recipient>.eml, which
any mail program opens.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller


@dataclass(frozen=True)
class Caught:
    sender: str
    recipients: list[str]
    message: EmailMessage
    raw: bytes


class _Handler:
    def __init__(self, catcher: MailCatcher) -> None:
        self.catcher = catcher

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: list[str]) -> str:
        if address.casefold() in self.catcher.refuse:
            return f"550 5.1.1 <{address}>: mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.original_content or envelope.content
        message = email.message_from_bytes(raw, policy=email.policy.default)
        caught = Caught(envelope.mail_from, list(envelope.rcpt_tos), message, raw)  # type: ignore[arg-type]
        with self.catcher.lock:
            self.catcher.caught.append(caught)
            number = len(self.catcher.caught)
        if self.catcher.folder is not None:
            first = (caught.recipients or ["nobody"])[0].replace("/", "_")
            (self.catcher.folder / f"{number:04d}-{first}.eml").write_bytes(raw)
        if self.catcher.on_data is not None:
            self.catcher.on_data(caught)  # a test's hook: e.g. kill the sender before it hears "250"
        return "250 Message accepted for delivery"


class MailCatcher:
    """An SMTP server on 127.0.0.1:port; refuses the recipients in `refuse`; start/stop at will
    (stopped, the port refuses connections: a relay that is down)."""

    def __init__(self, port: int, folder: Path | None = None, refuse: Iterable[str] = ()) -> None:
        self.port, self.folder = port, folder
        self.refuse = {address.casefold() for address in refuse}
        self.caught: list[Caught] = []
        self.lock = threading.Lock()
        self.on_data: Callable[[Caught], None] | None = None
        self._controller: Controller | None = None
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)

    def start(self) -> None:
        if self._controller is None:
            self._controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port)
            self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def to(self, address: str) -> list[Caught]:
        """The messages delivered to this address."""
        with self.lock:
            return [c for c in self.caught if address.casefold() in {r.casefold() for r in c.recipients}]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=2525, help="port on 127.0.0.1 (default 2525)")
    parser.add_argument("--folder", type=Path, default=Path(".local/mail"), help="where the .eml files go")
    args = parser.parse_args()
    catcher = MailCatcher(args.port, args.folder)
    catcher.start()
    print(f"mail catcher on 127.0.0.1:{args.port}, messages in {args.folder}/", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        catcher.stop()


if __name__ == "__main__":
    main()
