"""When another writer keeps changing an object we manage: correct it a few times, then stop (pure).

Drift is corrected: someone deleting a NetworkPolicy by mistake gets it back within seconds. But
when another controller (a quota bot, a second operator) edits the same object over and over,
correcting it every time would be a fight without end, doubling the API server's load. After
`limit` corrections of one object within `window` seconds, the object is left alone for `pause`
seconds and the tenant's status says so; at the first reconcile after the pause (a change, or
the resync) one more round of corrections is tried.

A correction is writing the same desired object again (its digest unchanged since our last
write) over a live one that differs: someone else changed it. A change of our own desired state
is never counted. (Field managers' timestamps cannot tell: they have one-second resolution.)
A writer slower than `limit` per `window` is answered each time, at its own pace: that is no
loop, as every correction follows one change of theirs. Objects deleted by others are simply
recreated (not counted).

Never paused: objects of a kind that tenant admins may write (USER_WRITABLE_KINDS: ConfigMaps, as
the chart's tenant-admin ClusterRole lets them manage their apps' ConfigMaps, and RBAC cannot keep
create while protecting a few names). The pause is for other controllers; a tenant admin who edits
tenantry-flags five times must not turn the operator off for that tenant. Who wrote a change is no
basis for the choice (a field manager's name is whatever the client sends); the kind is, because
RBAC decides who can write it. Each of their writes costs one correction, at their own pace.
"""

from __future__ import annotations

from dataclasses import dataclass, field

Key = tuple[str, str, str]  # (namespace, kind, name)
# Kinds of managed objects in a tenant namespace that the tenant-admin ClusterRole may write
# (charts/tenantry/templates/rbac-tenant-admin.yaml; a unit test keeps the two in step).
USER_WRITABLE_KINDS = frozenset({"ConfigMap"})


@dataclass(slots=True)  # one per managed object of every tenant: kept small
class _Seen:
    written: int | None = None  # digest of what we last wrote
    corrections: tuple[float, ...] = ()
    paused_until: float | None = None


@dataclass
class Contest:
    limit: int = 5
    window: float = 60.0
    pause: float = 300.0
    # By namespace, so that forgetting a tenant's namespace costs nothing at 10,000 tenants.
    _seen: dict[str, dict[tuple[str, str], _Seen]] = field(default_factory=dict)

    def _entry(self, key: Key) -> _Seen:
        return self._seen.setdefault(key[0], {}).setdefault(key[1:], _Seen())

    def may_write(self, key: Key, digest: int, now: float) -> bool:
        """Whether to write this desired object over a live one that differs from it."""
        if key[1] in USER_WRITABLE_KINDS:
            return True  # tenant admins could write it: always corrected, never paused
        if self._entry(key).written != digest:
            return True  # our own desired state changed (or first sight): not a correction
        return self.may_correct(key, now)

    def written(self, key: Key, digest: int) -> None:
        if key[1] not in USER_WRITABLE_KINDS:  # never paused: nothing to remember
            self._entry(key).written = digest

    def may_correct(self, key: Key, now: float) -> bool:
        """Whether to correct this object now; counts the correction when it is allowed."""
        entry = self._entry(key)
        if self.paused_until(key, now) is not None:
            return False
        recent = [t for t in entry.corrections if now - t < self.window]
        if len(recent) >= self.limit:
            entry.paused_until, entry.corrections = now + self.pause, ()
            return False
        entry.corrections = (*recent, now)
        return True

    def paused_until(self, key: Key, now: float) -> float | None:
        entry = self._entry(key)
        if entry.paused_until is not None and entry.paused_until <= now:
            entry.paused_until = None
        return entry.paused_until

    def forget(self, namespace: str) -> None:
        """A tenant namespace is gone: drop what was remembered about its objects."""
        self._seen.pop(namespace, None)
