"""A welcome e-mail is sent only by the replica that still holds the tenant's shard (a
concurrency review, 3 Dec): the check every write makes comes right before the SMTP send too.

Stand-ins for the API server, the relay and the fence (what is under test is the Mailer's order of
steps; the relay itself is tested against a real SMTP server in tests/integration/test_welcome.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import kopf

from tenantry.domain import welcome
from tenantry.domain.config import OperatorConfig
from tenantry.domain.settings import SmtpSettings
from tenantry.handlers.catalogue import Catalogue
from tenantry.handlers.leadership import ShardLost
from tenantry.handlers.welcome import Mailer

KEY = ("partner-p", "acme")
BODY = {"apiVersion": "tenantry.dev/v1alpha1", "kind": "Tenant",
        "metadata": {"name": "acme", "namespace": "partner-p", "uid": "uid-1"},
        "spec": {"company": "Acme GmbH", "contact": {"name": "Ada", "email": "ada@acme.example"},
                 "plan": {"featureSet": "business", "seats": 10}},
        "status": {"state": "Active", "welcome": {"messageId": welcome.message_id("uid-1", "", "platform.test"),
                                                  "dueSince": "2027-01-10T09:00:00Z"}}}


class StandInKube:
    def __init__(self) -> None:
        self.held = True

    async def read(self, target: Any) -> dict[str, Any]:
        self.held = False  # the shard moves while the Tenant is read
        return BODY

    def fence(self) -> None:
        if not self.held:
            raise ShardLost("shard 3 is not held by this replica")


class Tenants:
    def put(self, body: Any) -> None:
        pass

    def get(self, namespace: Any, name: str) -> None:
        return None


class Relay:
    def __init__(self) -> None:
        self.sent: list[Any] = []

    async def send(self, message: Any, sender: str, to: list[str]) -> Any:
        self.sent.append(to)
        raise AssertionError("sent by a replica that lost the shard")


def test_a_replica_that_lost_the_shard_while_reading_sends_nothing() -> None:
    memo = kopf.Memo()
    memo.kube, memo.tenants, memo.namespaces = StandInKube(), Tenants(), Tenants()
    memo.config, memo.catalogue = OperatorConfig(platform_domain="platform.test"), Catalogue(namespace_prefix="t-")
    relay = Relay()

    async def run() -> None:
        mailer = Mailer(memo, SmtpSettings(host="smtp.test", sender="noreply@platform.test"),  # type: ignore[arg-type]
                        lambda key: contextlib.nullcontext(), relay)  # type: ignore[arg-type,return-value]
        await mailer._deliver(KEY)
        await mailer.stop()
    asyncio.run(run())
    assert relay.sent == []
