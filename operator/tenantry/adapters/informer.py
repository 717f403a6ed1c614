"""Watch-fed caches of the objects a reconcile reads (the informer pattern).

An informer LISTs its kind once, then WATCHes from the list's resourceVersion; when the watch
breaks for good (410 Gone: the version is too old) it LISTs again and reports the differences
as changes, so nothing that happened in between is missed. A reconcile then reads from memory:
a pass over an unchanged tenant makes no GET at all.

Only the objects a scope `keeps` are stored, decided from the namespace and name alone, so that
"not in the store" is an answer ("absent") for every name the scope covers, and slimmed to what
the reconcile compares (managed fields without their field lists). Each is held as a compact
record: its JSON bytes, decoded again when read (a few microseconds), because Python's dicts and
strings take about three times the memory of the JSON they came from (10,000 tenants: some 200 MB).
The JSON itself is deflated against a dictionary of its kind (see Packer): records of one kind
share most of their text, so they keep a seventh of it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec

from tenantry.adapters.http import LIST_PAGE, Api, ApiFailure
from tenantry.domain.children import Manifest
from tenantry.domain.drift import OTHERS_DATA
from tenantry.domain.naming import FIELD_MANAGER, KNOWN_ANNOTATIONS, KNOWN_LABELS, PREFIX
from tenantry.metrics.operator import CACHED_BYTES, CACHED_OBJECTS, INFORMER_LISTS

logger = logging.getLogger("tenantry")
Key = tuple[str, str]  # (namespace or "", name)
Change = Callable[[str, Mapping[str, Any]], None]  # (ADDED | MODIFIED | DELETED, the whole object)
Index = Callable[[Key, Mapping[str, Any] | None], None]  # (its key, the object stored, or None: dropped)


@dataclass(frozen=True)
class Scope:
    """What one informer watches and keeps."""

    api_version: str
    kind: str
    namespace: str | None = None  # None: every namespace (or a cluster-scoped kind)
    keeps: Callable[[str, str], bool] | None = None  # by (namespace or "", name); None: everything
    labels: Mapping[str, str] = field(default_factory=dict)  # a server-side selector
    data_keys: frozenset[str] | None = None  # ConfigMaps: the only keys of `data` worth keeping
    # Others' annotations kept too (within FOREIGN_BYTES): the kinds the operator updates with a
    # whole-object PUT from memory, which must carry them (see slim).
    others_annotations: bool = False

    def covers(self, namespace: str | None, name: str) -> bool:
        """Whether the store's answer for this name is the truth (present or absent)."""
        return self.namespace in (None, namespace) and self.kept(namespace or "", name)

    def kept(self, namespace: str, name: str) -> bool:
        return self.keeps is None or self.keeps(namespace, name)


class Digest:
    """A long ConfigMap value, kept as its BLAKE2b digest: what the reconcile asks of it (equal
    to the desired text or not) in 32 bytes, instead of the kilobytes of a tenant's flags."""

    __slots__ = ("_digest",)

    def __init__(self, text: str) -> None:
        self._digest = _blake2b(text)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Digest):
            return other._digest == self._digest
        return isinstance(other, str) and _blake2b(other) == self._digest

    def __hash__(self) -> int:
        return hash(self._digest)

    def __repr__(self) -> str:
        return f"Digest({self._digest.hex()[:12]})"


def _blake2b(text: str) -> bytes:
    return hashlib.blake2b(text.encode(), digest_size=16).digest()


DIGEST_ABOVE = 256  # characters: shorter values are kept as they are
# Parts that are the same for many tenants (the isolation policy, the limits, the role) are kept
# once and shared by every copy that equals them; at most this many distinct ones are remembered.
_SHARED_LIMIT = 1000
_shared: dict[bytes, Any] = {}
_SHARED_PARTS = {"NetworkPolicy": "spec", "LimitRange": "spec", "RoleBinding": "roleRef"}


def _share(value: Any) -> Any:
    key = msgspec.json.encode(value)
    found = _shared.get(key)
    if found is not None:
        return found
    if len(_shared) < _SHARED_LIMIT:
        _shared[key] = value
    return value


# What others may add to an object's metadata is kept up to this size per field; beyond it only
# the labels tenantry reads are kept (and no finalizers or owner references): a tenant admin may
# update the operator's ConfigMaps, and a partner its Tenants, with a megabyte of labels each.
# (The next update of the object then leaves the excess out: it was padding.)
FOREIGN_BYTES = 2048
OWN_VALUE_CHARS = 256  # an annotation of ours is longer only when padded (an owner key: at most 127)


def _size(value: Any) -> int:
    return len(msgspec.json.encode(value))


def _latest_edits(entries: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Of the managed fields, what tells who changed the object last (drift.other_writer): the
    latest entry of ours and the latest of anyone else's that edits more than the status, each
    with its top-level field keys only. One entry per writer could otherwise be as many writers
    as a tenant admin cares to name."""
    latest: dict[bool, Mapping[str, Any]] = {}
    for entry in entries:
        if not set((entry.get("fieldsV1") or {}).keys()) - {"f:status"}:
            continue  # a status update: never what other_writer names
        ours = entry.get("manager") == FIELD_MANAGER
        if ours not in latest or str(entry.get("time") or "") > str(latest[ours].get("time") or ""):
            latest[ours] = entry
    kept = list(latest.values()) or entries[-1:]  # status updates only: one says "not unknown"
    return [{**{k: v for k, v in entry.items() if k != "fieldsV1"},
             "fieldsV1": dict.fromkeys((entry.get("fieldsV1") or {}).keys(), {})} for entry in kept]


def slim(body: Mapping[str, Any], data_keys: frozenset[str] | None = None,
         others_annotations: bool = False) -> Manifest:
    """The object as much as a reconcile reads, so that nobody can make the operator hold more:
    managed fields without their field lists (their top-level keys stay, which is what tells a
    status update from an edit), only the operator's annotations (with `others_annotations` also
    others', while they fit in FOREIGN_BYTES, as labels, finalizers and owner references do), and
    with `data_keys` only those keys of `data` (long values as digests) and no binaryData (a
    tenant admin may pad the operator's ConfigMaps). Parts that many tenants have alike are
    shared: the copies are read, never changed."""
    meta = dict(body.get("metadata") or {})
    if meta.get("managedFields"):
        meta["managedFields"] = _latest_edits(meta["managedFields"])
    if isinstance(meta.get("annotations"), Mapping):
        # Only those of our prefix that tenantry reads: a tenant admin may update the operator's
        # ConfigMaps, and no write compares a key the operator does not set, so none is reverted.
        ours = {k: v for k, v in meta["annotations"].items() if k in KNOWN_ANNOTATIONS}
        if _size(ours) > FOREIGN_BYTES:  # padded values of known keys: the real ones are short
            ours = {k: v for k, v in ours.items() if len(v) <= OWN_VALUE_CHARS}
        theirs = {k: v for k, v in meta["annotations"].items()
                  if not k.startswith(PREFIX)} if others_annotations else {}
        meta["annotations"] = {**(theirs if _size(theirs) <= FOREIGN_BYTES else {}), **ours}
    if isinstance(meta.get("labels"), Mapping) and _size(meta["labels"]) > FOREIGN_BYTES:
        meta["labels"] = {k: v for k, v in meta["labels"].items() if k in KNOWN_LABELS}
    for key in ("finalizers", "ownerReferences"):
        if meta.get(key) and _size(meta[key]) > FOREIGN_BYTES:
            del meta[key]
    kept = dict(body) if data_keys is None else {k: v for k, v in body.items() if k != "binaryData"}
    part = _SHARED_PARTS.get(str(body.get("kind")))
    if part is not None and part in kept:
        kept[part] = _share(kept[part])
    if data_keys is not None and isinstance(body.get("data"), Mapping):
        kept["data"] = {k: Digest(v) if isinstance(v, str) and len(v) > DIGEST_ABOVE else v
                        for k, v in body["data"].items() if k in data_keys}
    if data_keys is not None and (body.get("binaryData") or any(k not in data_keys for k in body.get("data") or {})):
        kept[OTHERS_DATA] = True  # not kept, yet not to be left there (drift.holds)
    return {**kept, "metadata": meta}


class Packer:
    """One kind's records, deflated against a dictionary of that kind. The records of a kind share
    most of their text (keys, the operator's labels, condition messages), and with a dictionary
    holding it a record keeps only what is its own: on the benchmark's objects 8.7 KB of JSON per
    tenant became 1.2 KB (a Tenant 3.6 KB -> 0.24 KB), at about 15 us to pack and 2 us to unpack.

    The dictionaries are records the informer kept: the first of a useful size, and then any that
    packs poorly with the newest (the Namespace informer's first is `default`, unlike a tenant's
    namespace), up to MAX_DICTIONARIES. A packed record's first byte names its dictionary, which
    never changes, so every record unpacks; JSON starts with "{". Only the informer's loop packs.
    Whoever writes a kind's first objects chooses dictionaries: unlike ones cost only the ratio
    (records then keep about what plain deflate keeps, 40 % less than their JSON), never correctness."""

    __slots__ = ("_dictionaries",)

    DICTIONARY_FROM = 256  # bytes: a smaller record shares too little to be worth keeping as one
    MAX_DICTIONARIES = 4
    POOR = 0.3  # packed / plain beyond which a record becomes a dictionary while there is room

    def __init__(self) -> None:
        self._dictionaries: list[bytes] = []

    def pack(self, raw: bytes) -> bytes:
        if not self._dictionaries:
            if len(raw) < self.DICTIONARY_FROM and raw[:1] == b"{":
                return raw
            self._dictionaries.append(raw[-32768:])  # deflate looks back 32 KiB at most
        packed = self._deflate(raw)
        if (len(packed) > self.POOR * len(raw) and len(raw) >= self.DICTIONARY_FROM
                and len(self._dictionaries) < self.MAX_DICTIONARIES):
            self._dictionaries.append(raw[-32768:])
            packed = self._deflate(raw)
        # Kept as it came only when that is smaller and unambiguous (what the informer packs is JSON).
        return raw if len(raw) <= len(packed) and raw[:1] == b"{" else packed

    def _deflate(self, raw: bytes) -> bytes:
        # Raw deflate (no header, no checksum: the bytes never leave memory), fastest level.
        deflate = zlib.compressobj(1, zlib.DEFLATED, -15, 9, zdict=self._dictionaries[-1])
        return bytes((len(self._dictionaries) - 1,)) + deflate.compress(raw) + deflate.flush()

    def unpack(self, record: bytes) -> bytes:
        if record[:1] == b"{":
            return record
        if record[0] >= len(self._dictionaries):
            raise ValueError(f"a cached record names dictionary {record[0]}, which its informer does not have")
        inflate = zlib.decompressobj(-15, zdict=self._dictionaries[record[0]])
        try:
            raw = inflate.decompress(memoryview(record)[1:]) + inflate.flush()
        except zlib.error as error:
            raise ValueError(f"a cached record does not unpack with its informer's dictionary: {error}") from None
        if not inflate.eof or inflate.unused_data:
            # Raw deflate has no checksum: a record packed with another dictionary must not pass.
            raise ValueError("a cached record does not unpack with its informer's dictionary")
        return raw


class Record:
    """One stored object: its packed JSON, its resourceVersion (compared on every event, never
    decoded for it), and top-level parts kept as objects: those shared by many tenants (see slim)
    and ConfigMap data with digests, which must not pass through JSON (a digest written as text
    could be forged by whoever writes the ConfigMap)."""

    __slots__ = ("raw", "parts", "version")

    _encode = msgspec.json.Encoder().encode
    _decode = msgspec.json.Decoder().decode

    def __init__(self, slimmed: Mapping[str, Any], objects: frozenset[str], packer: Packer) -> None:
        parts = {key: slimmed[key] for key in objects if key in slimmed}
        self.raw: bytes = packer.pack(Record._encode({k: v for k, v in slimmed.items() if k not in parts}))
        self.parts: dict[str, Any] | None = parts or None
        self.version = _version(slimmed)

    def body(self, packer: Packer) -> Manifest:
        decoded = Record._decode(packer.unpack(self.raw))
        if self.parts:
            decoded.update(self.parts)
        return decoded


def same_object(one: Mapping[str, Any], other: Mapping[str, Any]) -> bool:
    """Whether two bodies of one name are the same object, not one deleted and one created since
    (their uids differ; a body without a uid is taken for the same)."""
    uids = ((one.get("metadata") or {}).get("uid"), (other.get("metadata") or {}).get("uid"))
    return not all(uids) or uids[0] == uids[1]


def _version(body: Mapping[str, Any]) -> int:
    try:
        return int((body.get("metadata") or {}).get("resourceVersion") or 0)
    except ValueError:
        return 0


class Informer:
    """One kind's objects in memory, current from a watch."""

    def __init__(self, api: Api, scope: Scope, on_change: Change | None = None,
                 retry_seconds: float = 1.0, report_listing: bool = False, list_page: int = LIST_PAGE,
                 index: Index | None = None) -> None:
        """report_listing: the first LIST's objects are reported too, as LISTED (for a consumer
        that keeps its own index, such as the catalogue). list_page: objects per page of a LIST.
        index: told of every object stored (and of every one dropped, with None), our own writes'
        answers included, which are no change to report."""
        self.scope, self._api, self._on_change, self._list_page = scope, api, on_change, list_page
        self._index = index
        self._report_listing = report_listing
        self._store: dict[Key, Record] = {}
        self._packer = Packer()
        self._objects = frozenset({*((_SHARED_PARTS[scope.kind],) if scope.kind in _SHARED_PARTS else ()),
                                   *(("data",) if scope.data_keys is not None else ())})
        self._by_namespace: dict[str, set[str]] = {}
        self.synced = asyncio.Event()
        self.lists = 0  # LIST requests made (one per start, plus one per broken watch)
        self._retry = retry_seconds

    def __len__(self) -> int:
        return len(self._store)

    def get(self, namespace: str | None, name: str) -> Manifest | None:
        record = self._store.get((namespace or "", name))
        return None if record is None else record.body(self._packer)

    def holds(self, namespace: str | None, name: str) -> bool:
        """Whether the object is in memory (without decoding it)."""
        return (namespace or "", name) in self._store

    def names(self, namespace: str | None) -> list[str]:
        """The names held in one namespace (a copy: safe to read from another thread)."""
        return list(self._by_namespace.get(namespace or "", ()))

    def keys(self) -> list[Key]:
        """(namespace, name) of every object held."""
        return list(self._store)

    def vanished(self, listed: set[Key], list_version: str, among: Iterable[Key] | None = None) -> list[Key]:
        """What memory holds (of `among`, else of everything) that a LIST (the keys `listed`, at
        `list_version`) did not have, and that no event has brought since: gone from the API
        server, though no watch event said so."""
        version = _version({"metadata": {"resourceVersion": list_version}})  # unreadable: 0, none gone
        return [key for key in (self._store if among is None else among) if key not in listed
                and (record := self._store.get(key)) is not None and record.version <= version]

    def list(self, namespace: str | None, labels: Mapping[str, str]) -> list[Manifest]:
        names = self._by_namespace.get(namespace or "", set())
        found = (self._store[(namespace or "", n)].body(self._packer) for n in sorted(names))
        return [o for o in found if all(((o["metadata"].get("labels") or {}).get(k) == v) for k, v in labels.items())]

    def put(self, body: Mapping[str, Any]) -> None:
        """What a write of ours returned: stored at once (its watch event comes later), unless the
        store already holds a newer version."""
        meta = body.get("metadata") or {}
        key = (meta.get("namespace") or "", meta.get("name") or "")
        stored = self._store.get(key)
        if self.scope.kept(*key) and (stored is None or _version(body) >= stored.version):
            self._keep(key, body)

    def forget(self, namespace: str | None, name: str) -> None:
        """A delete of ours went through."""
        self._drop((namespace or "", name))

    def _keep(self, key: Key, body: Mapping[str, Any]) -> None:
        old = self._store.get(key)
        if old is None:
            CACHED_OBJECTS.labels(self.scope.kind).inc()
        record = Record(slim(body, self.scope.data_keys, self.scope.others_annotations), self._objects, self._packer)
        CACHED_BYTES.labels(self.scope.kind).inc(len(record.raw) - (len(old.raw) if old is not None else 0))
        self._store[key] = record
        self._by_namespace.setdefault(key[0], set()).add(key[1])
        if self._index is not None:
            self._index(key, body)

    def _drop(self, key: Key) -> Record | None:
        names = self._by_namespace.get(key[0])
        if names is not None:
            names.discard(key[1])
            if not names:
                del self._by_namespace[key[0]]
        gone = self._store.pop(key, None)
        if gone is None:
            return None
        if self._index is not None:
            self._index(key, None)
        CACHED_OBJECTS.labels(self.scope.kind).dec()
        CACHED_BYTES.labels(self.scope.kind).dec(len(gone.raw))
        return gone

    def _changed(self, kind: str, body: Mapping[str, Any]) -> None:
        if self._on_change is None:
            return
        try:
            self._on_change(kind, body)
        except Exception:  # noqa: BLE001  (one bad callback must not stop the watch)
            logger.exception("handling a %s of %s failed", kind, self.scope.kind)

    def observe(self, kind: str, body: Mapping[str, Any]) -> None:
        """One watch event (also fed from outside: kopf's own watch of Tenants)."""
        meta = body.get("metadata") or {}
        key = (meta.get("namespace") or "", meta.get("name") or "")
        if not self.scope.kept(*key):
            return  # not ours: a tenant's own objects change as often as they like, at no cost to us
        if kind == "DELETED":
            held = self._store.get(key)
            if held is not None and not same_object(held.body(self._packer), body):
                # An older object of the name: one created since came first (kopf works each uid
                # on a worker of its own, so a delete-then-create may arrive either way round).
                return
            self._drop(key)
        else:
            old, version = self._store.get(key), _version(body)
            if old is not None and version and old.version == version:
                return  # the very version stored already: our own write's answer (see put), no news
            if old is not None and version and version < old.version and same_object(old.body(self._packer), body):
                # Older than what memory holds: our write's answer came before the watch caught up.
                # Taken, it would turn memory back (a quota's pods: 0 read as 50 and written again).
                return
            self._keep(key, body)
        self._changed(kind, body)

    async def _list(self) -> str:
        """LIST everything; the differences to the store are reported as changes after a re-list."""
        self.lists += 1
        INFORMER_LISTS.labels(self.scope.kind).inc()
        seen: set[Key] = set()
        relisting = self.synced.is_set()
        version = ""
        async for page, page_version in self._api.list(self.scope.api_version, self.scope.kind,
                                                       self.scope.namespace, self.scope.labels, self._list_page):
            version = page_version  # every page names the same: the list is one consistent snapshot
            self._take(page, seen, relisting)
        for key in [k for k in self._store if k not in seen]:
            gone = self._drop(key)
            if relisting and gone is not None:
                self._changed("DELETED", gone.body(self._packer))
        return version

    def _take(self, page: Iterator[Manifest], seen: set[Key], relisting: bool) -> None:
        for body in page:
            meta = body["metadata"]
            key = (meta.get("namespace") or "", meta["name"])
            seen.add(key)
            if not self.scope.kept(*key):
                continue
            old = self._store.get(key)
            if relisting and (old is None or old.version != _version(body)):
                self.observe("ADDED" if old is None else "MODIFIED", body)
            else:
                self._keep(key, body)
                if not relisting and self._report_listing:
                    self._changed("LISTED", body)

    async def run(self) -> None:
        """LIST and WATCH until cancelled; failures are logged and retried, never raised."""
        failures = 0
        version = ""
        while True:
            try:
                if not version:
                    version = await self._list()
                    self.synced.set()
                    failures = 0
                # The server ends a watch now and then (timeoutSeconds): resume from the last version seen.
                async for kind, body in self._api.watch(self.scope.api_version, self.scope.kind,
                                                        self.scope.namespace, self.scope.labels, version):
                    version = str((body.get("metadata") or {}).get("resourceVersion") or version)
                    if kind != "BOOKMARK":
                        self.observe(kind, body)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001  (a background task: report and retry, never die)
                version = ""  # LIST again: whatever happened meanwhile is found by the diff
                if isinstance(error, ApiFailure) and error.code == 410:
                    continue  # too old: LIST again at once
                failures += 1
                logger.warning("watching %s failed (%s): listing again", self.scope.kind, error)
                await asyncio.sleep(min(30.0, self._retry * 2 ** min(failures - 1, 5)))


class Cache:
    """The informers by kind: what the reconcile reads instead of GETs, once they are synced."""

    def __init__(self, informers: list[Informer], fed: list[Informer] = ()) -> None:  # type: ignore[assignment]
        """`fed`: stores fed from elsewhere (kopf's watch of Tenants); our writes update them, but
        reads of their kinds still go to the API server (they are never known to be complete)."""
        self._watching = {id(i) for i in informers}  # checked on every read: a set, not a list
        self.informers = {(i.scope.api_version, i.scope.kind): i for i in (*informers, *fed)}

    def knows(self, api_version: str, kind: str, namespace: str | None, name: str | None) -> Informer | None:
        """The synced informer whose store is the truth for this name (None: a whole namespace's
        objects, for a LIST); None when no informer can answer."""
        informer = self.informers.get((api_version, kind))
        if informer is None or id(informer) not in self._watching or not informer.synced.is_set() \
                or informer.scope.namespace not in (None, namespace):
            return None
        if name is None:
            return informer if informer.scope.keeps is None else None
        return informer if informer.scope.kept(namespace or "", name) else None

    async def wait_synced(self) -> None:
        waiting = [i.synced.wait() for i in self.informers.values()
                   if id(i) in self._watching and not i.synced.is_set()]
        if waiting:  # (every pass asks: once all are synced, no tasks are made for it)
            await asyncio.gather(*waiting)
