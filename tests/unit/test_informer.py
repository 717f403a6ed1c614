"""The informers' memory (adapters/informer.py), fed by hand instead of a watch.

Tested here (the LIST and WATCH themselves run against the real API server in
tests/integration/test_cache.py):
- only objects the scope keeps are stored or reported; a miss is an answer only for names the scope covers
- the stored copy is slim: managed fields without their field lists (their top-level keys stay),
  only the operator's annotations, and for ConfigMaps only the operator's data keys (padding by a
  tenant admin costs no memory, and is marked as there, so that the next write removes it), long
  ConfigMap values as digests that still compare with the
  desired text, and parts many tenants have alike (the isolation policy) held once
- our own write is remembered at once, an older answer or watch event never overwrites a newer
  write (a watch event older than our write's answer is delivered after it), and
  the echo of our own write (same resourceVersion) calls no one
- a change by someone else, and a deletion, call the callback with the whole object; an index
  hears of every object stored or dropped, our own writes included
- a DELETED of an older object of the name (another uid) leaves the newer one in memory
- what memory holds that a LIST did not have is vanished, unless an event brought a version newer
  than the list's (it came after the list was taken, a Tenant of the same name created again
  among them); an unreadable list version names nothing
- lists by namespace and labels; the cache answers only for synced informers and covered names
- what others add to the metadata is bounded (a megabyte of labels, finalizers, owner references
  or writers' managed fields costs nothing); the kept managed fields name the same other writer;
  others' annotations are kept only by informers asked to (the kinds updated by a PUT from memory),
  and only while they fit in FOREIGN_BYTES; our own prefix padded beyond it keeps only the
  annotations tenantry reads (naming.KNOWN_ANNOTATIONS, which names every *_ANNOTATION constant)
- objects are held as compact records (their JSON, decoded on each read) with shared parts and
  ConfigMap digests kept beside it as objects, so a digest cannot be forged by writing its text
- the JSON is packed against a dictionary of its kind (the first record of a useful size, then
  any that packs poorly, up to four): a like record keeps a fraction of its size, every record
  reads back exactly (those kept before the first dictionary too), and dictionaries chosen by
  someone else change sizes only; a record that names or needs another dictionary is refused
"""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tenantry.adapters.informer import FOREIGN_BYTES, Cache, Digest, Informer, Packer, Scope, slim
from tenantry.domain.drift import OTHERS_DATA, covers, other_writer


def _configmap(name: str, version: str, namespace: str = "tenant-a", **labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace, "resourceVersion": version, "labels": labels,
                         "managedFields": [{"manager": "kubectl", "operation": "Update", "time": "t",
                                            "fieldsV1": {"f:data": {"f:k": {}}}}]},
            "data": {"k": version}}


def _informer(changes: list[tuple[str, str]]) -> Informer:
    scope = Scope("v1", "ConfigMap", keeps=lambda namespace, name: namespace.startswith("tenant-")
                  and name.startswith("tenantry-"))
    return Informer(None, scope, lambda kind, body: changes.append((kind, body["metadata"]["name"])))  # type: ignore[arg-type]


def test_only_kept_objects_are_stored_or_reported() -> None:
    changes: list[tuple[str, str]] = []
    informer = _informer(changes)
    informer.observe("ADDED", _configmap("tenantry-flags", "1"))
    informer.observe("ADDED", _configmap("app-settings", "2"))  # a tenant's own: no memory, no pass
    assert informer.get("tenant-a", "tenantry-flags") is not None
    assert informer.get("tenant-a", "app-settings") is None and len(informer) == 1
    assert changes == [("ADDED", "tenantry-flags")]


def test_the_copy_is_slim() -> None:
    body = _configmap("tenantry-flags", "1")
    kept = slim(body)
    assert kept["metadata"]["managedFields"] == [{"manager": "kubectl", "operation": "Update", "time": "t",
                                                  "fieldsV1": {"f:data": {}}}]
    assert body["metadata"]["managedFields"][0]["fieldsV1"] == {"f:data": {"f:k": {}}}  # the event is untouched


def test_data_memory_does_not_keep_is_marked_as_there() -> None:
    keys = frozenset({"flags.json"})
    plain = {**_configmap("tenantry-flags", "1"), "data": {"flags.json": "{}"}}
    assert OTHERS_DATA not in slim(plain, keys)
    for added in ({"data": {"flags.json": "{}", "extra": "x" * 100_000}}, {"binaryData": {"blob": "AAEC"}}):
        kept = slim({**plain, **added}, keys)
        assert kept[OTHERS_DATA] is True and kept["data"] == {"flags.json": "{}"} and "binaryData" not in kept


def test_our_writes_are_remembered_and_their_echo_is_no_news() -> None:
    changes: list[tuple[str, str]] = []
    informer = _informer(changes)
    informer.observe("ADDED", _configmap("tenantry-flags", "5"))
    informer.put(_configmap("tenantry-flags", "7"))  # our write's answer
    assert informer.get("tenant-a", "tenantry-flags")["data"] == {"k": "7"}  # type: ignore[index]
    informer.put(_configmap("tenantry-flags", "6"))  # an older answer arriving late: ignored
    assert informer.get("tenant-a", "tenantry-flags")["data"] == {"k": "7"}  # type: ignore[index]
    informer.observe("MODIFIED", _configmap("tenantry-flags", "7"))  # the echo of our write
    informer.observe("MODIFIED", _configmap("tenantry-flags", "6"))  # an older event, delivered late
    assert informer.get("tenant-a", "tenantry-flags")["data"] == {"k": "7"}  # type: ignore[index]
    assert changes == [("ADDED", "tenantry-flags")]
    informer.observe("MODIFIED", _configmap("tenantry-flags", "9"))  # someone else's change
    informer.observe("DELETED", _configmap("tenantry-flags", "10"))
    assert changes[1:] == [("MODIFIED", "tenantry-flags"), ("DELETED", "tenantry-flags")]
    assert informer.get("tenant-a", "tenantry-flags") is None


def test_an_index_hears_of_every_object_stored_or_dropped_our_writes_included() -> None:
    indexed: list[tuple[str, str | None]] = []
    informer = Informer(None, Scope("v1", "ConfigMap", keeps=lambda namespace, name: name.startswith("tenantry-")),  # type: ignore[arg-type]
                        index=lambda key, body: indexed.append((key[1], body and body["data"]["k"])))
    informer.observe("ADDED", _configmap("tenantry-flags", "5"))
    informer.put(_configmap("tenantry-flags", "7"))  # our write's answer: no change reported, but indexed
    informer.observe("ADDED", _configmap("other", "1"))  # not kept: not indexed either
    informer.forget("tenant-a", "tenantry-flags")
    informer.observe("ADDED", _configmap("tenantry-flags", "8"))
    informer.observe("DELETED", _configmap("tenantry-flags", "9"))
    assert indexed == [("tenantry-flags", "5"), ("tenantry-flags", "7"), ("tenantry-flags", None),
                       ("tenantry-flags", "8"), ("tenantry-flags", None)]


def test_forget_drops_at_once() -> None:
    informer = _informer([])
    informer.put(_configmap("tenantry-flags", "3"))
    informer.forget("tenant-a", "tenantry-flags")
    assert informer.get("tenant-a", "tenantry-flags") is None and len(informer) == 0


def test_the_deletion_of_an_older_object_of_the_name_leaves_the_newer_one() -> None:
    """Delete then create (kubectl replace --force, a GitOps tool's force): kopf works each uid on
    a worker of its own, so the new object's ADDED may come before the old one's DELETED."""
    changes: list[tuple[str, str]] = []
    informer = _informer(changes)
    old, new = _configmap("tenantry-flags", "3"), _configmap("tenantry-flags", "5")
    old["metadata"]["uid"], new["metadata"]["uid"] = "uid-old", "uid-new"
    informer.observe("ADDED", new)
    informer.observe("DELETED", old)
    assert informer.get("tenant-a", "tenantry-flags")["metadata"]["uid"] == "uid-new"  # type: ignore[index]
    assert changes == [("ADDED", "tenantry-flags")]
    informer.observe("DELETED", new)  # the new one's own deletion drops it
    assert informer.get("tenant-a", "tenantry-flags") is None


def test_vanished_is_what_the_list_lacks_and_no_later_event_brought() -> None:
    informer = Informer(None, Scope("tenantry.dev/v1alpha1", "Tenant"))  # type: ignore[arg-type]
    for name, version in (("listed", "5"), ("gone", "7"), ("after-the-list", "12")):
        informer.observe("ADDED", _tenant(name, version))
    listed = {("partner-p", "listed")}
    assert informer.vanished(listed, "10") == [("partner-p", "gone")]
    assert informer.vanished(listed, "12") == [("partner-p", "gone"), ("partner-p", "after-the-list")]
    assert informer.vanished(listed, "") == []
    # Asked again for one key (forget_vanished, before letting each go): created again meanwhile,
    # with a version newer than the list's, it is not gone.
    assert informer.vanished(listed, "10", among=[("partner-p", "gone")]) == [("partner-p", "gone")]
    informer.observe("ADDED", _tenant("gone", "11"))
    assert informer.vanished(listed, "10", among=[("partner-p", "gone")]) == []
    assert informer.vanished(listed, "10", among=[("partner-p", "never-held")]) == []


def test_lists_by_namespace_and_labels() -> None:
    informer = Informer(None, Scope("v1", "ConfigMap"))  # type: ignore[arg-type]
    informer.observe("ADDED", _configmap("a", "1", team="x"))
    informer.observe("ADDED", _configmap("b", "2", team="y"))
    informer.observe("ADDED", _configmap("c", "3", namespace="tenant-b", team="x"))
    assert [o["metadata"]["name"] for o in informer.list("tenant-a", {"team": "x"})] == ["a"]
    assert [o["metadata"]["name"] for o in informer.list("tenant-a", {})] == ["a", "b"]
    assert sorted(informer.names("tenant-a")) == ["a", "b"] and informer.names("nowhere") == []


def test_the_cache_answers_only_when_synced_and_covered() -> None:
    changes: list[tuple[str, str]] = []
    informer, fed = _informer(changes), Informer(None, Scope("tenantry.dev/v1alpha1", "Tenant"))  # type: ignore[arg-type]
    cache = Cache([informer], fed=[fed])
    assert cache.knows("v1", "ConfigMap", "tenant-a", "tenantry-flags") is None  # not listed yet
    informer.synced.set()
    assert cache.knows("v1", "ConfigMap", "tenant-a", "tenantry-flags") is informer
    assert cache.knows("v1", "ConfigMap", "tenant-a", "app-settings") is None  # not kept: ask the server
    assert cache.knows("v1", "ConfigMap", "tenant-a", None) is None  # a LIST needs every name kept
    fed.synced.set()
    assert cache.knows("tenantry.dev/v1alpha1", "Tenant", "partner-p", "acme") is None  # fed: never complete
    assert cache.informers[("tenantry.dev/v1alpha1", "Tenant")] is fed  # but our writes reach it


def test_padding_costs_no_memory() -> None:
    body = _configmap("tenantry-flags", "4")
    body["data"] = {"flags.json": "{}", "pad": "x" * 900_000}
    body["binaryData"] = {"blob": "eA==" * 100_000}
    body["metadata"]["annotations"] = {"tenantry.dev/owner": "partner-p/acme", "junk": "y" * 200_000,
                                       "tenantry.dev/last-handled-configuration": "{}"}
    kept = slim(body, frozenset({"flags.json"}))
    assert kept["data"] == {"flags.json": "{}"} and "binaryData" not in kept
    assert kept["metadata"]["annotations"] == {"tenantry.dev/owner": "partner-p/acme"}
    assert len(repr(kept)) < 2_000


def test_long_configmap_values_are_kept_as_digests_that_compare_with_the_text() -> None:
    flags = json.dumps({"flags": {f"f{i}": {"state": "ENABLED"} for i in range(50)}})
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "tenantry-flags", "namespace": "t"},
            "data": {"flags.json": flags, "slug": "acme"}}
    kept = slim(body, frozenset({"flags.json", "slug"}))
    assert isinstance(kept["data"]["flags.json"], Digest) and kept["data"]["slug"] == "acme"
    desired = {"metadata": {"name": "tenantry-flags"}, "data": {"flags.json": flags, "slug": "acme"}}
    assert covers(kept, desired)
    assert not covers(kept, {**desired, "data": {"flags.json": flags.replace("ENABLED", "DISABLED")}})


def test_parts_many_tenants_have_alike_are_held_once() -> None:
    def policy(ns: str) -> dict:
        return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                "metadata": {"name": "tenantry-isolation", "namespace": ns},
                "spec": {"podSelector": {}, "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}]}}
    first, second = slim(policy("tenant-a")), slim(policy("tenant-b"))
    assert first["spec"] is second["spec"] and first["spec"] == policy("x")["spec"]
    assert first["metadata"]["namespace"] == "tenant-a" and second["metadata"]["namespace"] == "tenant-b"


def test_objects_are_held_as_compact_records_read_back_whole() -> None:
    informer = Informer(None, Scope("v1", "ConfigMap", data_keys=frozenset({"flags.json", "slug"})))  # type: ignore[arg-type]
    flags = json.dumps({"flags": {f"f{i}": {"state": "ENABLED"} for i in range(50)}})
    body = _configmap("tenantry-flags", "3", team="x")
    body["data"] = {"flags.json": flags, "slug": "acme"}
    informer.observe("ADDED", body)
    record = informer._store[("tenant-a", "tenantry-flags")]
    assert isinstance(record.raw, bytes) and record.version == 3
    assert len(record.raw) < 400  # the flags' kilobytes are a digest, kept beside the JSON
    first, second = informer.get("tenant-a", "tenantry-flags"), informer.get("tenant-a", "tenantry-flags")
    assert first == second and first is not second  # each read decodes its own copy
    assert first["metadata"]["labels"] == {"team": "x"} and first["data"]["slug"] == "acme"
    assert first["data"]["flags.json"] == flags and isinstance(first["data"]["flags.json"], Digest)


def _tenant(name: str, version: str) -> dict[str, Any]:
    conditions = [{"type": kind, "status": "True", "reason": "Provisioned", "observedGeneration": 1,
                   "lastTransitionTime": "2026-12-02T01:34:28Z", "message": f"the {kind} of the tenant is as desired"}
                  for kind in ("Ready", "NamespaceReady", "FeaturesReady", "BrandingReady", "DNSReady", "InSync")]
    return {"apiVersion": "tenantry.dev/v1alpha1", "kind": "Tenant",
            "metadata": {"name": name, "namespace": "partner-p", "resourceVersion": version, "uid": f"uid-{name}"},
            "spec": {"company": f"Firma {name} GmbH", "plan": {"featureSet": "bench", "seats": 20}},
            "status": {"conditions": conditions, "state": "Active"}}


def test_records_are_packed_against_their_kinds_dictionary() -> None:
    informer = Informer(None, Scope("tenantry.dev/v1alpha1", "Tenant"))  # type: ignore[arg-type]
    tenants = [_tenant(f"t{i:05d}", str(10 + i)) for i in range(50)]
    for body in tenants:
        informer.observe("ADDED", body)
    plain = len(json.dumps(slim(tenants[7]), separators=(",", ":")))
    packed = len(informer._store[("partner-p", "t00007")].raw)
    assert packed < plain / 4, (packed, plain)
    assert all(informer.get("partner-p", body["metadata"]["name"]) == slim(body) for body in tenants)


def test_records_kept_before_the_dictionary_read_back_too() -> None:
    informer = Informer(None, Scope("v1", "ConfigMap"))  # type: ignore[arg-type]
    small = _configmap("tenantry-small", "1")  # under Packer.DICTIONARY_FROM: kept as it came
    informer.observe("ADDED", small)
    assert informer._store[("tenant-a", "tenantry-small")].raw.startswith(b"{")
    large = _configmap("tenantry-large", "2")
    large["metadata"]["labels"] = {f"tenantry.dev/l{i}": "v" * 20 for i in range(10)}
    informer.observe("ADDED", large)
    assert informer._store[("tenant-a", "tenantry-large")].raw.startswith(b"\x00")  # dictionary 0
    assert informer.get("tenant-a", "tenantry-small") == slim(small)
    assert informer.get("tenant-a", "tenantry-large") == slim(large)


def _namespace(name: str) -> bytes:
    labels = {"app.kubernetes.io/managed-by": "tenantry", "kubernetes.io/metadata.name": name,
              "tenantry.dev/partner": "p", "tenantry.dev/tenant": name.removeprefix("tenant-"),
              "pod-security.kubernetes.io/enforce": "restricted"}
    return json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": name, "uid": f"uid-{name}", "resourceVersion": "7", "labels": labels,
        "annotations": {"tenantry.dev/owner": f"partner-p/{name}"}}, "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"}}).encode()


def test_an_unlike_first_record_gets_a_better_dictionary_after_it() -> None:
    # The Namespace informer's first record is `default`: the tenants' namespaces, unlike it,
    # pack poorly against it, so the first of them becomes the next dictionary.
    packer = Packer()
    default = json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": "default", "uid": "0f6c", "resourceVersion": "1", "creationTimestamp": "2026-12-01T09:00:00Z",
        "labels": {"kubernetes.io/metadata.name": "default"}}, "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"}}).encode()
    records = [default] + [_namespace(f"tenant-t{i:05d}") for i in range(30)]
    packed = [packer.pack(raw) for raw in records]
    assert [p[0] for p in packed[:3]] == [0, 1, 1]
    assert all(len(p) < len(raw) / 3 for p, raw in zip(packed[2:], records[2:], strict=True))
    assert [packer.unpack(p) for p in packed] == records


def test_hostile_dictionaries_change_sizes_only() -> None:
    # Whoever writes a kind's first objects chooses its dictionaries: here every one of them is
    # binary-looking junk, the first starting like a packed record. Every later record still
    # reads back exactly, and keeps no more than plain deflate would.
    packer = Packer()
    junk = [b"\x00" + random.Random(i).randbytes(20_000) for i in range(Packer.MAX_DICTIONARIES + 2)]
    for raw in junk:
        packer.pack(raw)
    assert len(packer._dictionaries) == Packer.MAX_DICTIONARIES
    records = [json.dumps(_tenant(f"t{i}", str(i))).encode() for i in range(20)] + [b"{}", *junk]
    packed = [packer.pack(raw) for raw in records]
    assert [packer.unpack(p) for p in packed] == records
    assert all(len(p) < 0.7 * len(raw) for p, raw in zip(packed[:20], records[:20], strict=True))
    assert packed[20] == b"{}"  # packing would not make it smaller: kept as it came


def test_a_record_packed_with_another_dictionary_is_refused() -> None:
    one, other = Packer(), Packer()
    one.pack(json.dumps(_tenant("a", "1")).encode())
    other.pack(b'{"x": "' + b"y" * 400 + b'"}')
    record = one.pack(json.dumps(_tenant("b", "2")).encode())
    with pytest.raises(ValueError, match="dictionary"):
        other.unpack(record)
    with pytest.raises(ValueError, match="dictionary 3"):
        one.unpack(b"\x03" + record[1:])


def test_a_digest_cannot_be_forged_by_writing_its_text() -> None:
    # Digests never pass through the stored JSON: a tenant admin who writes what a digest would
    # look like as text gets a text that equals only itself.
    flags = json.dumps({"flags": {f"f{i}": {"state": "ENABLED"} for i in range(50)}})
    informer = Informer(None, Scope("v1", "ConfigMap", data_keys=frozenset({"flags.json"})))  # type: ignore[arg-type]
    forged = _configmap("tenantry-flags", "4")
    forged["data"] = {"flags.json": repr(Digest(flags))}
    informer.observe("ADDED", forged)
    assert informer.get("tenant-a", "tenantry-flags")["data"]["flags.json"] != flags  # type: ignore[index]


def test_what_others_pad_the_metadata_with_is_bounded() -> None:
    body = _configmap("tenantry-flags", "5", **{"app.kubernetes.io/managed-by": "tenantry"})
    body["metadata"]["labels"].update({f"pad-{i}": "x" * 60 for i in range(2_000)})
    body["metadata"]["finalizers"] = [f"example.com/f{i}" for i in range(2_000)]
    body["metadata"]["ownerReferences"] = [{"name": f"o{i}", "uid": "u" * 36} for i in range(500)]
    body["metadata"]["managedFields"] = [{"manager": f"m{i}", "operation": "Update",
                                          "time": f"2026-01-01T00:{i % 60:02d}:00Z",
                                          "fieldsV1": {"f:metadata": {"f:labels": {}}}} for i in range(3_000)]
    kept = slim(body)
    assert kept["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "tenantry"}
    assert "finalizers" not in kept["metadata"] and "ownerReferences" not in kept["metadata"]
    assert len(kept["metadata"]["managedFields"]) == 1
    assert len(json.dumps(kept)) < 2_000
    modest = _configmap("tenantry-flags", "6", team="a")
    modest["metadata"]["finalizers"] = ["example.com/keep"]
    assert slim(modest)["metadata"]["labels"] == {"team": "a"}  # within bounds: kept, so a PUT keeps them
    assert slim(modest)["metadata"]["finalizers"] == ["example.com/keep"]


def test_others_annotations_are_kept_only_where_asked_and_bounded() -> None:
    body = _configmap("tenantry-flags", "8")
    body["metadata"]["annotations"] = {"tenantry.dev/owner": "partner-p/t", "backup.example.com/keep": "true",
                                       "tenantry.dev/last-handled-configuration": "{}"}
    assert slim(body)["metadata"]["annotations"] == {"tenantry.dev/owner": "partner-p/t"}  # a Tenant's, say
    assert slim(body, others_annotations=True)["metadata"]["annotations"] == {
        "tenantry.dev/owner": "partner-p/t", "backup.example.com/keep": "true"}
    body["metadata"]["annotations"]["pad.example.com/x"] = "x" * FOREIGN_BYTES  # a tenant admin's padding
    assert slim(body, others_annotations=True)["metadata"]["annotations"] == {"tenantry.dev/owner": "partner-p/t"}


def test_padding_under_our_own_prefix_keeps_only_what_tenantry_reads() -> None:
    body = _configmap("tenantry-flags", "9")
    body["metadata"]["annotations"] = {"tenantry.dev/owner": "partner-p/t", "tenantry.dev/note": "hello",
                                       **{f"tenantry.dev/pad-{i}": "x" * 500 for i in range(500)}}
    assert slim(body)["metadata"]["annotations"] == {"tenantry.dev/owner": "partner-p/t"}
    # A known key padded (no write compares it on a ConfigMap, so none reverts it), and labels
    # padded under our prefix and another's: neither is kept.
    body["metadata"]["annotations"] = {"tenantry.dev/owner": "partner-p/t", "tenantry.dev/domain": "x" * 240_000}
    body["metadata"]["labels"] = {"app.kubernetes.io/managed-by": "tenantry", "tenantry.dev/tenant": "t",
                                  **{f"tenantry.dev/pad-{i}": "x" * 60 for i in range(4_000)},
                                  **{f"pod-security.kubernetes.io/pad-{i}": "x" * 60 for i in range(4_000)}}
    kept = slim(body)
    assert kept["metadata"]["annotations"] == {"tenantry.dev/owner": "partner-p/t"}
    assert kept["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "tenantry", "tenantry.dev/tenant": "t"}
    assert len(json.dumps(kept)) < 2_000


def _constants(suffix: str) -> set[str]:
    """The values of every module-level NAME ending in `suffix` in the operator's code that look
    like a label or annotation key (a slash in them, not a pattern)."""
    import importlib
    import pkgutil

    import tenantry

    found = set()
    for module in pkgutil.walk_packages(tenantry.__path__, "tenantry."):
        if module.name.startswith(("tenantry.devtools", "tenantry.cli.templates")):
            continue
        loaded = importlib.import_module(module.name)
        found |= {value for name, value in vars(loaded).items() if name.endswith(suffix)
                  and isinstance(value, str) and "/" in value and not value.startswith("^")}
    return found


def test_known_annotations_name_every_annotation_constant() -> None:
    from tenantry.domain import naming

    found = {key for key in _constants("_ANNOTATION") if key.startswith(naming.PREFIX)}
    assert found == naming.KNOWN_ANNOTATIONS, found ^ naming.KNOWN_ANNOTATIONS


@given(st.lists(st.tuples(st.sampled_from(["tenantry", "kubectl", "kube-controller-manager", "x"]),
                          st.integers(0, 5), st.sampled_from([("f:status",), ("f:data",), ("f:metadata", "f:spec")])),
                max_size=8))
def test_the_kept_managed_fields_name_the_same_other_writer(entries: list) -> None:
    managed = [{"manager": m, "operation": "Update", "time": f"2026-01-01T00:00:0{t}Z",
                "fieldsV1": dict.fromkeys(keys, {})} for m, t, keys in entries]
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "managedFields": managed}}
    assert other_writer(slim(body)["metadata"].get("managedFields")) == other_writer(managed)


def test_known_labels_name_every_label_constant_and_every_label_the_operator_sets() -> None:
    from tenantry.api.tenant import TenantSpec
    from tenantry.domain import naming
    from tenantry.domain.children import TenantInput, desired_state
    from tenantry.domain.config import OperatorConfig
    from tenantry.domain.tenantpass import resolve

    found = _constants("_LABEL")
    spec = TenantSpec.model_validate({"company": "P", "contact": {"name": "P", "email": "p@p.de"},
                                      "plan": {"featureSet": "business", "seats": 5}})
    config = OperatorConfig()
    resolved = resolve(spec, "partner-p", lambda ns, n: {"features": {"chat": {}}}, lambda ns, n: None, config)
    desired = desired_state(TenantInput("t", "partner-p", "p", spec, resolved.plan, resolved.branding,
                                        resolved.features), config)
    for obj in desired.apply + desired.ensure:
        found |= set(obj["metadata"].get("labels") or {})
    assert found <= naming.KNOWN_LABELS, found - naming.KNOWN_LABELS
