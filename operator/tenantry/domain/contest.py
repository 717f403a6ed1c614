"""When another writer keeps changing an object we manage: correct it a few times, then stop (pure).

Drift is corrected: someone deleting a NetworkPolicy by mistake gets it back within seconds. But
when another controller (a quota bot, a second operator) edits the same object over and over,
correcting it every time would be a fight without end, doubling the API server's load. After
`limit` corrections of one object within `window` seconds, the object is left alone for `pause`
seconds and the tenant's status says so; then one more round of corrections is tried.

A correction is writing the same desired object again (its digest unchanged since our last
write) over a live one that differs: someone else changed it. A change of our own desired state
is never counted. (Field managers' timestamps cannot tell: they have one-second resolution.)
"""

from __future__ import annotations

from dataclasses import dataclass, field

Key = tuple[str, str, str]  # (namespace, kind, name)


@dataclass
class Contest:
    limit: int = 5
    window: float = 60.0
    pause: float = 300.0
    _corrections: dict[Key, list[float]] = field(default_factory=dict)
    _paused_until: dict[Key, float] = field(default_factory=dict)
    _written: dict[Key, int] = field(default_factory=dict)  # digest of what we last wrote

    def may_write(self, key: Key, digest: int, now: float) -> bool:
        """Whether to write this desired object over a live one that differs from it."""
        if self._written.get(key) != digest:
            return True  # our own desired state changed (or first sight): not a correction
        return self.may_correct(key, now)

    def written(self, key: Key, digest: int) -> None:
        self._written[key] = digest

    def may_correct(self, key: Key, now: float) -> bool:
        """Whether to correct this object now; counts the correction when it is allowed."""
        if self.paused_until(key, now) is not None:
            return False
        recent = [t for t in self._corrections.get(key, ()) if now - t < self.window]
        if len(recent) >= self.limit:
            self._paused_until[key] = now + self.pause
            self._corrections.pop(key, None)
            return False
        self._corrections[key] = [*recent, now]
        return True

    def paused_until(self, key: Key, now: float) -> float | None:
        until = self._paused_until.get(key)
        if until is None or until <= now:
            self._paused_until.pop(key, None)
            return None
        return until

    def forget(self, namespace: str) -> None:
        """A tenant namespace is gone: drop what was remembered about its objects."""
        for store in (self._corrections, self._paused_until, self._written):
            for key in [k for k in store if k[0] == namespace]:
                del store[key]
