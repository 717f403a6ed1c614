"""Who is asking, and which partners they may see: Kubernetes decides, the portal keeps no user list.

- Identity: a bearer token (header, or the portal's cookie) checked by a TokenReview; or, when the
  chart says a trusted authenticating proxy stands in front, its user and groups headers
  (the oauth2-proxy convention: X-Forwarded-User, X-Forwarded-Groups).
- Scope: partner P is visible exactly when a SubjectAccessReview allows `get tenants` in P's
  namespace; a platform admin (allowed `get tenants` in every namespace) sees every partner.

Answers are remembered for a short while (by a hash of the token, never the token itself), so a
page does not cost an API round trip per check, and a revoked right ends within that time.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from tenantry.adapters.http import Api, ApiFailure

REVIEW_SECONDS = 30.0
SESSION_SECONDS = 8 * 3600  # the longest a portal session lasts (its cookie's lifetime)
REVIEWS_AT_ONCE = 16
# Beyond these the portal answers 503 at once instead of queueing: a flood must not build a queue
# that everyone else waits in (token reviews waiting for a slot; access reviews of one user).
TOKEN_REVIEWS_WAITING = 64
SCANS_AT_ONCE = 4  # users whose partners are reviewed one by one (the rest of the slots stay free)
ACCESS_REVIEWS_PER_USER = 8  # different questions (the same one under way is asked once)
TOKEN_SHAPE = re.compile(r"[A-Za-z0-9._~+/-]+=*")  # RFC 6750's b64token
_MAX_REMEMBERED = 10_000
_MAX_PER_USER = 4_096  # access answers remembered per user (a user who probes evicts only their own)


class Busy(Exception):
    """Too many reviews under way or waiting: the request is answered 503 at once."""


@dataclass(frozen=True)
class Identity:
    user: str
    groups: tuple[str, ...] = ()
    uid: str = ""
    extra: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


class _Memory:
    """A small time-limited memory of answers."""

    def __init__(self, limit: int = _MAX_REMEMBERED, seconds: float = REVIEW_SECONDS) -> None:
        self._answers: dict[object, tuple[float, object]] = {}
        self._limit, self._seconds = limit, seconds

    def get(self, key: object) -> object | None:
        found = self._answers.get(key)
        if found is None or found[0] < time.monotonic():
            return None
        return found[1]

    def put(self, key: object, value: object) -> None:
        if len(self._answers) >= self._limit:
            now = time.monotonic()
            self._answers = {k: v for k, v in self._answers.items() if v[0] >= now}
            # Still full (a flood): the older half goes, the answers of this half-minute stay.
            for stale in list(self._answers)[:len(self._answers) // 2]:
                del self._answers[stale]
        self._answers[key] = (time.monotonic() + self._seconds, value)


class Gate:
    """TokenReview and SubjectAccessReview, through the portal's own ServiceAccount."""

    def __init__(self, api: Api, audiences: tuple[str, ...] = ()) -> None:
        self._api, self._audiences = api, audiences
        # Accepted and refused tokens apart: a flood of made-up tokens evicts only refusals, never
        # the sessions of people logged in.
        self._tokens = _Memory()
        self._refused = _Memory()
        # Tokens accepted within a session's lifetime: asked again (every REVIEW_SECONDS) in a lane
        # of their own, so that a flood of made-up tokens never turns away people logged in.
        self._sessions = _Memory(seconds=SESSION_SECONDS)
        # Access answers per user: a user probing made-up partners evicts only their own answers.
        self._access: dict[str, _Memory] = {}
        # A flood of made-up tokens must not become a flood on the API server, nor hold up the
        # access reviews of people already logged in: each kind has its own few slots.
        self._token_reviews = {lane: asyncio.Semaphore(REVIEWS_AT_ONCE) for lane in (False, True)}
        self._access_reviews = asyncio.Semaphore(REVIEWS_AT_ONCE)
        self._tokens_waiting = {False: 0, True: 0}  # by lane: a session's token or not
        self._reviewing: dict[bytes, asyncio.Future[Identity | bool | None]] = {}  # token reviews under way
        self._scanning: dict[object, asyncio.Future[dict[str, str] | None]] = {}  # visible partners, by identity
        self._reviews_of: dict[str, int] = {}  # access reviews under way, per user
        self._asking: dict[object, asyncio.Future[bool | None]] = {}  # each question under way, once

    async def review_token(self, token: str) -> Identity | None:
        """The token's user, or None when the API server does not accept it."""
        if not TOKEN_SHAPE.fullmatch(token):
            return None  # not a bearer token's characters (RFC 6750): not worth a review
        key = hashlib.sha256(token.encode()).digest()
        known = self._tokens.get(key)
        if known is not None:
            return known if isinstance(known, Identity) else None
        if self._refused.get(key) is not None:
            return None
        if key in self._reviewing:  # the same token under way (a burst of one session's requests): asked once
            answer = await asyncio.shield(self._reviewing[key])
            if answer is None:
                raise Busy("a token review under way got no answer")
            return answer or None
        self._reviewing[key] = asking = asyncio.get_running_loop().create_future()
        identity: Identity | bool | None = None
        try:
            identity = await self._review_token(token, key)
            return identity or None
        finally:
            asking.set_result(identity)
            del self._reviewing[key]

    async def _review_token(self, token: str, key: bytes) -> Identity | bool:
        """The TokenReview's answer (False: not accepted), remembered; Busy when its lane is full."""
        spec: dict[str, object] = {"token": token}
        if self._audiences:
            spec["audiences"] = list(self._audiences)
        session = self._sessions.get(key) is not None
        if self._tokens_waiting[session] >= TOKEN_REVIEWS_WAITING:
            raise Busy("too many sessions under review" if session else "too many logins under way")
        self._tokens_waiting[session] += 1
        try:
            async with self._token_reviews[session]:
                answer = await self._api.request("POST", "/apis/authentication.k8s.io/v1/tokenreviews",
                                                 {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                                                  "spec": spec}) or {}
        finally:
            self._tokens_waiting[session] -= 1
        status = answer.get("status") or {}
        user = status.get("user") or {}
        identity: Identity | bool = False
        if status.get("authenticated") and user.get("username"):
            identity = Identity(user=str(user["username"]), groups=tuple(user.get("groups") or ()),
                                uid=str(user.get("uid") or ""),
                                extra={k: tuple(v) for k, v in (user.get("extra") or {}).items()})
        (self._tokens if identity else self._refused).put(key, identity)
        if identity and not session:  # from the login on (asking again does not make it longer)
            self._sessions.put(key, True)
        return identity

    async def may_get_tenants(self, who: Identity, namespace: str) -> bool:
        """Whether RBAC allows `who` to get tenants in `namespace` ("": in every namespace)."""
        key = (*_key_of(who), namespace)
        known = self._access[who.user].get(key) if who.user in self._access else None
        if known is not None:
            return bool(known)
        if key in self._asking:  # the same question under way (tabs restored at once): its answer
            answer = await asyncio.shield(self._asking[key])
            if answer is None:  # the one who asked left, or got no answer: no verdict to share
                raise Busy(f"an access review for {who.user} got no answer")
            return answer
        under_way = self._reviews_of.get(who.user, 0)
        if under_way >= ACCESS_REVIEWS_PER_USER:
            raise Busy(f"too many access reviews under way for {who.user}")
        self._reviews_of[who.user] = under_way + 1
        self._asking[key] = asking = asyncio.get_running_loop().create_future()
        allowed = None
        try:
            allowed = await self._review_access(who, namespace)
        finally:
            asking.set_result(allowed)
            del self._asking[key]
            self._reviews_of[who.user] -= 1
            if not self._reviews_of[who.user]:
                del self._reviews_of[who.user]
        if allowed is not None:
            self._memory_of(who.user).put(key, allowed)
        return bool(allowed)

    def _memory_of(self, user: str) -> _Memory:
        if user not in self._access and len(self._access) >= _MAX_REMEMBERED:
            # Full: the older half of the users goes (memories are kept in the order they were made).
            for old in list(self._access)[:len(self._access) // 2]:
                del self._access[old]
        return self._access.setdefault(user, _Memory(_MAX_PER_USER))

    async def _review_access(self, who: Identity, namespace: str) -> bool | None:
        """The SubjectAccessReview's answer; None when it could not be asked (not remembered)."""
        spec: dict[str, object] = {
            "user": who.user, "groups": list(who.groups),
            "resourceAttributes": {"group": "tenantry.dev", "resource": "tenants", "verb": "get",
                                   "namespace": namespace}}
        if who.uid:
            spec["uid"] = who.uid
        if who.extra:
            spec["extra"] = {k: list(v) for k, v in who.extra.items()}
        try:
            async with self._access_reviews:
                answer = await self._api.request(
                    "POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews",
                    {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec}) or {}
        except ApiFailure:
            return None  # fail closed: no answer is no access (and is not remembered)
        return bool((answer.get("status") or {}).get("allowed"))

    async def may_see(self, who: Identity, namespace: str) -> bool:
        """A platform admin sees every partner; anyone else the partners RBAC lets them read."""
        return await self.may_get_tenants(who, "") or await self.may_get_tenants(who, namespace)

    async def visible(self, who: Identity, partners: Mapping[str, str]) -> dict[str, str]:
        """The partners (id -> namespace) that `who` may see: one access review per partner, so at
        most SCANS_AT_ONCE users' lists are worked out at a time (beyond: Busy). Any token the
        cluster accepts (every pod's ServiceAccount) could otherwise turn one request into hundreds
        of reviews and fill the slots that partners' own pages wait for."""
        if await self.may_get_tenants(who, ""):
            return dict(partners)
        key = _key_of(who)
        if key in self._scanning:  # the same identity's list under way (tabs, a burst): worked out once
            found = await asyncio.shield(self._scanning[key])
            if found is None:
                raise Busy(f"a list of visible partners for {who.user} got no answer")
            return found
        if len(self._scanning) >= SCANS_AT_ONCE or any(k[0] == who.user for k in self._scanning):
            raise Busy("too many lists of visible partners under way")  # (one per user, whatever its tokens)
        self._scanning[key] = scanning = asyncio.get_running_loop().create_future()
        found = None
        try:
            found = {pid: ns for pid, ns in partners.items() if await self.may_get_tenants(who, ns)}
            return found
        finally:
            scanning.set_result(found)
            del self._scanning[key]


def _key_of(who: Identity) -> tuple[object, ...]:
    """Everything an access review is asked with, the user first."""
    return who.user, who.groups, who.uid, tuple(sorted(who.extra.items()))
