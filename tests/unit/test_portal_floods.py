"""The portal's gate (portal/identity.py) under floods, with the API server's reviews played by a
FakeReviewer (a stand-in, as in test_portal_server.py) that can hold its answers back, as a slow
API server would.

Tested here (an attacker's review of the portal, 3 Dec):
- anyone, without a login, sending made-up tokens: the sessions of people logged in stay
  remembered (refusals are kept apart), and beyond TOKEN_REVIEWS_WAITING reviews waiting the next
  login is answered at once with Busy (503), not queued behind the flood; a session's token asked
  about again meanwhile has a lane of its own (it was Busy for everyone after 30 s)
- a partner asking about made-up partners: its answers are remembered apart from everyone else's
  (another user's answer stays), and beyond ACCESS_REVIEWS_PER_USER reviews of its own under way it
  gets Busy while another user's review still goes to the API server; the same question under way
  (tabs restored at once) is asked once and never Busy; when its asker left, the others get Busy,
  not "no access"
"""

from __future__ import annotations

import asyncio
import dataclasses
from types import SimpleNamespace
from typing import Any

import pytest

from tenantry.portal import identity
from tenantry.portal.identity import (
    ACCESS_REVIEWS_PER_USER,
    REVIEW_SECONDS,
    REVIEWS_AT_ONCE,
    SCANS_AT_ONCE,
    SESSION_SECONDS,
    TOKEN_REVIEWS_WAITING,
    Busy,
    Gate,
    Identity,
)
from tests.unit.test_portal_server import FakeReviewer

ACME = Identity("system:serviceaccount:partner-acme:gitops", ("system:serviceaccounts",))
BETA = Identity("system:serviceaccount:partner-beta:gitops", ("system:serviceaccounts",))


class HeldReviewer(FakeReviewer):
    """Answers only once `release` is set (a slow API server); counts the reviews waiting for it."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()
        self.waiting = 0

    async def request(self, method: str, path: str, body: Any = None, params: Any = None) -> dict[str, Any]:
        self.waiting += 1
        await self.release.wait()
        return await super().request(method, path, body, params)


class HeldInPartners(HeldReviewer):
    """Answers at once whether a user may read every namespace; holds the per-partner reviews."""

    async def request(self, method: str, path: str, body: Any = None, params: Any = None) -> dict[str, Any]:
        if body["kind"] == "SubjectAccessReview" and body["spec"]["resourceAttributes"]["namespace"] == "":
            return await FakeReviewer.request(self, method, path, body, params)
        return await super().request(method, path, body, params)


async def _until(check: Any) -> None:
    """Until the tasks started have reached where the test looks (no wall time involved)."""
    for _ in range(10_000):
        if check():
            return
        await asyncio.sleep(0)
    raise AssertionError("the tasks never got there")


def test_made_up_tokens_never_evict_a_session() -> None:
    async def scenario() -> int:
        reviewer = FakeReviewer()
        gate = Gate(reviewer)  # type: ignore[arg-type]
        assert await gate.review_token("acme-token") is not None
        for i in range(12_000):
            assert await gate.review_token(f"made-up-{i}") is None
        assert await gate.review_token("acme-token") is not None
        return sum(1 for kind, spec in reviewer.reviews if kind == "TokenReview" and spec["token"] == "acme-token")
    assert asyncio.run(scenario()) == 1


def test_a_flood_of_logins_is_not_queued() -> None:
    async def scenario() -> None:
        reviewer = HeldReviewer()
        gate = Gate(reviewer)  # type: ignore[arg-type]
        flood = [asyncio.ensure_future(gate.review_token(f"made-up-{i}")) for i in range(TOKEN_REVIEWS_WAITING)]
        await _until(lambda: reviewer.waiting == REVIEWS_AT_ONCE)  # the rest wait for a slot
        with pytest.raises(Busy):
            await gate.review_token("acme-token")
        reviewer.release.set()
        assert await asyncio.gather(*flood) == [None] * TOKEN_REVIEWS_WAITING
        assert await gate.review_token("acme-token") is not None  # the flood over: logins go through
    asyncio.run(scenario())


def test_a_flood_of_logins_never_turns_away_a_session(monkeypatch: pytest.MonkeyPatch) -> None:
    """A session's token is asked about again once its answer is REVIEW_SECONDS old: in a lane of
    its own, so the flood that fills the logins' lane does not make every logged-in page a 503."""
    clock = [1000.0]
    monkeypatch.setattr(identity, "time", SimpleNamespace(monotonic=lambda: clock[0]))

    async def scenario() -> None:
        reviewer = HeldReviewer()
        gate = Gate(reviewer)  # type: ignore[arg-type]
        reviewer.release.set()
        assert await gate.review_token("acme-token") is not None
        reviewer.release.clear()
        clock[0] += REVIEW_SECONDS + 1  # the answer is forgotten: the next page asks again
        flood = [asyncio.ensure_future(gate.review_token(f"made-up-{i}")) for i in range(TOKEN_REVIEWS_WAITING)]
        await _until(lambda: reviewer.waiting == 1 + REVIEWS_AT_ONCE)
        with pytest.raises(Busy):
            await gate.review_token("made-up-one-more")  # the logins' lane is full
        session = asyncio.ensure_future(gate.review_token("acme-token"))
        await _until(lambda: reviewer.waiting == 2 + REVIEWS_AT_ONCE)  # asked at once, not refused
        reviewer.release.set()
        assert (await session) is not None
        assert await asyncio.gather(*flood) == [None] * TOKEN_REVIEWS_WAITING
        # A session lasts as long as its cookie from the login on: then its token is a login again.
        clock[0] += SESSION_SECONDS
        reviewer.release.clear()
        asked = reviewer.waiting
        flood = [asyncio.ensure_future(gate.review_token(f"made-up-again-{i}")) for i in range(TOKEN_REVIEWS_WAITING)]
        await _until(lambda: reviewer.waiting == asked + REVIEWS_AT_ONCE)
        with pytest.raises(Busy):
            await gate.review_token("acme-token")
        reviewer.release.set()
        await asyncio.gather(*flood)
    asyncio.run(scenario())


def test_one_users_probing_evicts_and_holds_up_no_one_else() -> None:
    async def remembered() -> int:
        reviewer = FakeReviewer()
        gate = Gate(reviewer)  # type: ignore[arg-type]
        assert await gate.may_get_tenants(BETA, "partner-beta")
        for i in range(12_000):
            assert not await gate.may_get_tenants(ACME, f"partner-made-up-{i}")
        assert await gate.may_get_tenants(BETA, "partner-beta")
        return sum(1 for spec in reviewer.asked_about("SubjectAccessReview") if spec["user"] == BETA.user)
    assert asyncio.run(remembered()) == 1

    async def held() -> None:
        reviewer = HeldReviewer()
        gate = Gate(reviewer)  # type: ignore[arg-type]
        probes = [asyncio.ensure_future(gate.may_get_tenants(ACME, f"partner-made-up-{i}"))
                  for i in range(ACCESS_REVIEWS_PER_USER)]
        await _until(lambda: reviewer.waiting == ACCESS_REVIEWS_PER_USER)
        with pytest.raises(Busy):
            await gate.may_get_tenants(ACME, "partner-made-up-more")
        other = asyncio.ensure_future(gate.may_get_tenants(BETA, "partner-beta"))
        await _until(lambda: reviewer.waiting == ACCESS_REVIEWS_PER_USER + 1)  # asked, not refused
        reviewer.release.set()
        assert await other
        assert await asyncio.gather(*probes) == [False] * ACCESS_REVIEWS_PER_USER
    asyncio.run(held())


def test_many_identities_listing_partners_hold_up_no_partners_page() -> None:
    """Any token the cluster accepts asked one review per partner on `/`: hundreds of cheap
    ServiceAccounts at once filled every review slot. At most SCANS_AT_ONCE such lists are worked
    out at a time; a partner's own page (one review) still goes to the API server."""
    async def scenario() -> None:
        reviewer = HeldInPartners()
        gate = Gate(reviewer)  # type: ignore[arg-type]
        partners = {f"p{i}": f"partner-{i}" for i in range(300)}
        scans = [asyncio.ensure_future(gate.visible(Identity(f"system:serviceaccount:tenant-x:sa{i}"), partners))
                 for i in range(SCANS_AT_ONCE)]
        await _until(lambda: reviewer.waiting == SCANS_AT_ONCE)  # each at its first partner
        with pytest.raises(Busy):
            await gate.visible(Identity("system:serviceaccount:tenant-x:one-more"), partners)
        page = asyncio.ensure_future(gate.may_see(ACME, "partner-acme"))
        await _until(lambda: reviewer.waiting == SCANS_AT_ONCE + 1)  # asked, not refused
        reviewer.release.set()
        assert await page
        assert await asyncio.gather(*scans) == [{}] * SCANS_AT_ONCE
        # Over: the next list is worked out again.
        assert await gate.visible(Identity("system:serviceaccount:tenant-x:later"), {"p0": "partner-0"}) == {}
    asyncio.run(scenario())


def test_one_identitys_burst_is_one_token_review_and_one_partner_list() -> None:
    """Fifty requests with one token at once were fifty TokenReviews (filling the session lane), and
    four tabs of one identity took every slot for partner lists: each is worked out once, and a
    second list of the same user under another credential waits for no slot, it is Busy."""
    async def scenario() -> None:
        reviewer = HeldInPartners()
        gate = Gate(reviewer)  # type: ignore[arg-type]
        burst = [asyncio.ensure_future(gate.review_token("acme-token")) for _ in range(50)]
        await _until(lambda: reviewer.waiting == 1)
        reviewer.release.set()
        assert {(await b).user for b in burst} == {ACME.user}  # type: ignore[union-attr]
        assert len(reviewer.asked_about("TokenReview")) == 1
        reviewer.release.clear()
        partners = {f"p{i}": f"partner-{i}" for i in range(50)}
        admin = Identity("system:serviceaccount:tenant-x:admin")
        tabs = [asyncio.ensure_future(gate.visible(admin, partners)) for _ in range(SCANS_AT_ONCE)]
        await _until(lambda: reviewer.waiting == 2)  # one list, at its first partner
        with pytest.raises(Busy):  # the same user with another token (its credential id in extra)
            await gate.visible(dataclasses.replace(admin, extra={"credential-id": ("JTI=2",)}), partners)
        others = [asyncio.ensure_future(gate.visible(Identity(f"user-{i}"), partners))
                  for i in range(SCANS_AT_ONCE - 1)]
        await _until(lambda: reviewer.waiting == 2 + SCANS_AT_ONCE - 1)  # other users still get a slot
        reviewer.release.set()
        assert await asyncio.gather(*tabs) == [{}] * SCANS_AT_ONCE
        assert await asyncio.gather(*others) == [{}] * (SCANS_AT_ONCE - 1)
    asyncio.run(scenario())


def test_the_same_question_under_way_is_asked_once_and_never_busy() -> None:
    """Tabs restored at once: one user asking the same thing many times is one review, no 503."""
    async def scenario() -> None:
        reviewer = HeldReviewer()
        gate = Gate(reviewer)  # type: ignore[arg-type]
        tabs = [asyncio.ensure_future(gate.may_get_tenants(ACME, "partner-acme"))
                for _ in range(3 * ACCESS_REVIEWS_PER_USER)]
        await _until(lambda: reviewer.waiting == 1)
        reviewer.release.set()
        assert await asyncio.gather(*tabs) == [True] * (3 * ACCESS_REVIEWS_PER_USER)
        assert len(reviewer.asked_about("SubjectAccessReview")) == 1
    asyncio.run(scenario())


def test_a_question_whose_asker_left_is_no_answer_for_the_others() -> None:
    """The first tab closed (aiohttp cancels its handler) while another waits on the same
    question: the other gets Busy (503), never a made-up "no access"."""
    async def scenario() -> None:
        reviewer = HeldReviewer()
        gate = Gate(reviewer)  # type: ignore[arg-type]
        first = asyncio.ensure_future(gate.may_get_tenants(ACME, "partner-acme"))
        await _until(lambda: reviewer.waiting == 1)
        second = asyncio.ensure_future(gate.may_get_tenants(ACME, "partner-acme"))
        await asyncio.sleep(0)
        first.cancel()
        with pytest.raises(Busy):
            await second
        reviewer.release.set()
        assert await gate.may_get_tenants(ACME, "partner-acme")  # asked again, answered
    asyncio.run(scenario())
