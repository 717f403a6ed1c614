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
REVIEWS_AT_ONCE = 16
TOKEN_SHAPE = re.compile(r"[A-Za-z0-9._~+/-]+=*")  # RFC 6750's b64token
_MAX_REMEMBERED = 10_000


@dataclass(frozen=True)
class Identity:
    user: str
    groups: tuple[str, ...] = ()
    uid: str = ""
    extra: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


class _Memory:
    """A small time-limited memory of answers."""

    def __init__(self) -> None:
        self._answers: dict[object, tuple[float, object]] = {}

    def get(self, key: object) -> object | None:
        found = self._answers.get(key)
        if found is None or found[0] < time.monotonic():
            return None
        return found[1]

    def put(self, key: object, value: object) -> None:
        if len(self._answers) >= _MAX_REMEMBERED:
            now = time.monotonic()
            self._answers = {k: v for k, v in self._answers.items() if v[0] >= now}
            # Still full (a flood): the older half goes, the answers of this half-minute stay.
            for stale in list(self._answers)[:len(self._answers) // 2]:
                del self._answers[stale]
        self._answers[key] = (time.monotonic() + REVIEW_SECONDS, value)


class Gate:
    """TokenReview and SubjectAccessReview, through the portal's own ServiceAccount."""

    def __init__(self, api: Api, audiences: tuple[str, ...] = ()) -> None:
        self._api, self._audiences = api, audiences
        self._tokens = _Memory()
        self._access = _Memory()
        # A flood of made-up tokens must not become a flood on the API server, nor hold up the
        # access reviews of people already logged in: each kind has its own few slots.
        self._token_reviews = asyncio.Semaphore(REVIEWS_AT_ONCE)
        self._access_reviews = asyncio.Semaphore(REVIEWS_AT_ONCE)

    async def review_token(self, token: str) -> Identity | None:
        """The token's user, or None when the API server does not accept it."""
        if not TOKEN_SHAPE.fullmatch(token):
            return None  # not a bearer token's characters (RFC 6750): not worth a review
        key = hashlib.sha256(token.encode()).digest()
        known = self._tokens.get(key)
        if known is not None:
            return known if isinstance(known, Identity) else None
        spec: dict[str, object] = {"token": token}
        if self._audiences:
            spec["audiences"] = list(self._audiences)
        async with self._token_reviews:
            answer = await self._api.request("POST", "/apis/authentication.k8s.io/v1/tokenreviews",
                                             {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                                              "spec": spec}) or {}
        status = answer.get("status") or {}
        user = status.get("user") or {}
        identity: Identity | bool = False
        if status.get("authenticated") and user.get("username"):
            identity = Identity(user=str(user["username"]), groups=tuple(user.get("groups") or ()),
                                uid=str(user.get("uid") or ""),
                                extra={k: tuple(v) for k, v in (user.get("extra") or {}).items()})
        self._tokens.put(key, identity)
        return identity or None

    async def may_get_tenants(self, who: Identity, namespace: str) -> bool:
        """Whether RBAC allows `who` to get tenants in `namespace` ("": in every namespace)."""
        key = (who.user, who.groups, who.uid, tuple(sorted(who.extra.items())), namespace)
        known = self._access.get(key)
        if known is not None:
            return bool(known)
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
            return False  # fail closed: no answer is no access (and is not remembered)
        allowed = bool((answer.get("status") or {}).get("allowed"))
        self._access.put(key, allowed)
        return allowed

    async def may_see(self, who: Identity, namespace: str) -> bool:
        """A platform admin sees every partner; anyone else the partners RBAC lets them read."""
        return await self.may_get_tenants(who, "") or await self.may_get_tenants(who, namespace)

    async def visible(self, who: Identity, partners: Mapping[str, str]) -> dict[str, str]:
        """The partners (id -> namespace) that `who` may see."""
        if await self.may_get_tenants(who, ""):
            return dict(partners)
        return {pid: ns for pid, ns in partners.items() if await self.may_get_tenants(who, ns)}
