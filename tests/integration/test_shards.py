"""Three operator replicas sharing 6 shards of partners, one SIGKILLed mid-onboarding (real Leases, real processes).

Tested here (the session's operator is stopped meanwhile, so only these replicas act):
- the replicas balance: each ends up holding 2 of the 6 shard Leases
- 36 tenants across 12 partners are applied; the replica with the most of them is SIGKILLed
  as soon as it starts its first pass (each replica has one worker: that pass takes seconds),
  and the test asserts that the kill hit tenants of its shards that were not Ready yet
- every tenant converges (Ready), the dead replica's shards go to the two others, and only after
  its last renewal expired (acquireTime >= last renewTime + lease duration); each survivor then
  holds 3
- each shard changes owner at most once: the Leases' leaseTransitions grow by exactly 1 for the
  dead replica's shards and 0 for the others, and the holders polled all along change once at most
- no tenant is reconciled by two replicas at the same time: every write of a replica happens
  inside its "acting on tenant" ... "done with tenant" lines (the fence checks each write against
  them), and for every tenant these intervals of different replicas never overlap (the killed
  replica's open ones end at its death); a replica that ran reconciles outside them would be
  caught by the count check (its own reconcile histogram counts more than its intervals)
- each survivor's /metrics has the tenants of its own shards only
- a Tenant deleted while three kopf instances watch it is cleaned up by its shard's owner, and the
  others do not remove the finalizer before that (the Tenant and its namespace go)
"""

from __future__ import annotations

import datetime
import json
import re
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tenantry.domain.shards import Ring
from tests.integration.fixtures import PLATFORM_NAMESPACE, ClusterHandle, OperatorProcess, Partner, wait_for

pytestmark = pytest.mark.integration

SHARDS = 6
PARTNERS = 12
TENANTS_PER_PARTNER = 3
LEASE_SECONDS = 6
LINE = re.compile(r"^\[(?P<time>[0-9-]+ [0-9:,]+)\].*shard (?P<shard>\d+): (?P<what>acting on|done with) "
                  r"tenant (?P<key>\S+)$")


class Replicas:
    """Three operator processes with shards, their lease group, partners and log files."""

    def __init__(self, cluster: ClusterHandle, kubeconfig: Path, folder: Path) -> None:
        self.cluster, self.group, self.suffix = cluster, f"tenantry-{uuid.uuid4().hex[:6]}", uuid.uuid4().hex[:6]
        self.procs = {name: OperatorProcess(kubeconfig, folder / f"{name}.log", extra_env={
            "TENANTRY_SHARDS": str(SHARDS), "TENANTRY_LEASE_NAME": self.group, "POD_NAME": name,
            "TENANTRY_LEASE_SECONDS": str(LEASE_SECONDS), "TENANTRY_RENEW_DEADLINE_SECONDS": "4",
            "TENANTRY_RETRY_SECONDS": "1", "TENANTRY_LOG_LEVEL": "debug",
            # One reconcile at a time: a replica then needs seconds for its 18 new tenants, not one,
            # so the kill (seen from its log, polled every 0.2 s) lands before they are all Ready.
            "TENANTRY_WORKERS": "1"})
            for name in ("shard-a", "shard-b", "shard-c")}
        self.partners = [Partner(cluster, f"shards-{self.suffix}-{i:02d}", self.suffix) for i in range(PARTNERS)]
        self.ended_at: dict[str, datetime.datetime] = {}  # SIGKILLed or stopped

    def leases(self) -> dict[int, dict]:
        """Shard -> the spec of its Lease."""
        listed = json.loads(self.cluster.kubectl("get", "leases", "-n", PLATFORM_NAMESPACE, "-l",
                                                 f"tenantry.dev/lease-group={self.group},tenantry.dev/lease-role=shard",
                                                 "-o", "json").stdout)["items"]
        return {int(lease["metadata"]["name"].rsplit("-", 1)[1]): lease["spec"] for lease in listed}

    def holders(self) -> Counter:
        return Counter(spec.get("holderIdentity") for spec in self.leases().values())

    def fence_lines(self, name: str) -> list[re.Match]:
        return [m for m in map(LINE.match, self.procs[name].log_path.read_text().splitlines()) if m]

    def intervals(self, name: str) -> dict[str, list[tuple[datetime.datetime, datetime.datetime]]]:
        """Tenant -> this replica's acting intervals (of a stopped replica); one still open ends at its death."""
        open_at: dict[str, list[datetime.datetime]] = {}
        done: dict[str, list[tuple[datetime.datetime, datetime.datetime]]] = {}
        for match in self.fence_lines(name):
            at = datetime.datetime.strptime(match["time"], "%Y-%m-%d %H:%M:%S,%f")
            if match["what"] == "acting on":
                open_at.setdefault(match["key"], []).append(at)
            else:
                done.setdefault(match["key"], []).append((open_at[match["key"]].pop(0), at))
        for key, starts in open_at.items():
            end = self.ended_at.get(name)
            assert end is not None or not starts, f"{name}: a reconcile of {key} never ended"
            done.setdefault(key, []).extend((start, end) for start in starts)  # type: ignore[misc]
        return done

    def kill(self, name: str) -> None:
        self.procs[name].kill()
        self.ended_at[name] = datetime.datetime.now()

    def stop(self, name: str) -> None:
        self.procs[name].stop()
        self.ended_at[name] = datetime.datetime.now()


@pytest.fixture
def replicas(operator: OperatorProcess, operator_kubeconfig: Path, cluster: ClusterHandle,
             tmp_path: Path) -> Iterator[Replicas]:
    made = Replicas(cluster, operator_kubeconfig, tmp_path)
    operator.stop()
    for partner in made.partners:
        cluster.kubectl("create", "namespace", partner.namespace)
        cluster.kubectl("label", "namespace", partner.namespace, f"tenantry.dev/partner={partner.namespace}")
    yield made
    for proc in made.procs.values():
        proc.kill()
    operator.start()  # the finalizers of what is left need an operator
    for partner in made.partners:
        cluster.kubectl("delete", "tenants", "--all", "-n", partner.namespace, "--timeout=300s")
        for namespace in [partner.namespace, *(f"tenant-{slug}" for slug in partner.slugs)]:
            cluster.kubectl("delete", "namespace", namespace, "--ignore-not-found", "--wait=false")
    cluster.kubectl("delete", "leases", "-n", PLATFORM_NAMESPACE, "-l", f"tenantry.dev/lease-group={made.group}")


class HolderLog:
    """Polls the shard Leases' holders in the background: the owner changes of each shard."""

    def __init__(self, replicas: Replicas) -> None:
        self.replicas, self.seen = replicas, {shard: [] for shard in range(SHARDS)}  # type: dict[int, list[str]]
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def poll(self) -> None:
        try:
            leases = self.replicas.leases()
        except AssertionError as error:  # kubectl under load: the next poll will do
            self.errors.append(str(error))
            return
        for shard, spec in leases.items():
            holder = spec.get("holderIdentity") or ""
            if holder and (not self.seen[shard] or self.seen[shard][-1] != holder):
                self.seen[shard].append(holder)

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.poll()
            self._stop.wait(0.3)

    def __enter__(self) -> HolderLog:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.poll()  # the state the test waited for, which the thread may not have seen yet


def _time(text: str) -> datetime.datetime:
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ")


def _ready(partner: Partner, slug: str) -> bool:
    condition = partner.condition(slug)
    return condition.get("status") == "True" and condition.get("reason") == "Provisioned"


def test_three_replicas_share_the_shards_and_survive_a_kill(replicas: Replicas, cluster: ClusterHandle) -> None:
    for proc in replicas.procs.values():
        proc.start()
    wait_for(lambda: replicas.holders() == Counter({"shard-a": 2, "shard-b": 2, "shard-c": 2}), timeout=90,
             what="every replica to hold 2 of the 6 shards")
    ring = Ring(SHARDS)
    tenants = {(p.namespace, p.slug(f"sh{i}-{t}")): p for i, p in enumerate(replicas.partners)
               for t in range(TENANTS_PER_PARTNER)}
    baseline = replicas.leases()
    owner = {shard: spec["holderIdentity"] for shard, spec in baseline.items()}
    load = Counter(owner[ring.shard_of(namespace)] for namespace, _ in tenants)
    victim = load.most_common(1)[0][0]
    victims_tenants = {key for key in tenants if owner[ring.shard_of(key[0])] == victim}

    with HolderLog(replicas) as holders:
        cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(
            [p.tenant(slug, namespace=ns) for (ns, slug), p in tenants.items()]))
        # At its first pass: with one worker, it takes its tenants one after the other.
        wait_for(lambda: any(m["what"] == "acting on" for m in replicas.fence_lines(victim)), timeout=120,
                 what=f"{victim} to start its first reconcile")
        replicas.kill(victim)  # at once, while the rest of its tenants wait for its single worker
        # The victim's last renewals (a dead process renews nothing; the survivors take its
        # shards only LEASE_SECONDS after them, far later than this one read).
        before_kill = replicas.leases()
        hit = {key for key in victims_tenants if not _ready(tenants[key], key[1])}
        assert hit, f"the kill of {victim} landed after all of its {len(victims_tenants)} tenants were Ready"
        print(f"SIGKILLed {victim} with {len(hit)} of its {len(victims_tenants)} tenants not Ready yet")
        for (ns, slug), partner in tenants.items():
            partner.wait_condition(slug, "True", "Provisioned", namespace=ns, timeout=240)
        survivors = sorted(set(replicas.procs) - {victim})
        wait_for(lambda: replicas.holders() == Counter({name: 3 for name in survivors}), timeout=60,
                 what="the survivors to hold 3 shards each")

    print(f"lease holders seen: {holders.seen}; failed polls: {holders.errors}")
    final = replicas.leases()
    for shard, spec in final.items():
        moved = spec["leaseTransitions"] - baseline[shard]["leaseTransitions"]
        assert moved == (1 if owner[shard] == victim else 0), (shard, owner[shard], spec)
        assert len(holders.seen[shard]) - 1 == moved, (shard, holders.seen[shard])
        if owner[shard] == victim:
            # Taken over only once the victim's last renewal had expired in the new owner's eyes.
            last = _time(before_kill[shard]["renewTime"])
            assert _time(spec["acquireTime"]) - last >= datetime.timedelta(seconds=LEASE_SECONDS), (shard, spec)

    for name in survivors:
        proc = replicas.procs[name]
        # Every reconcile pass starts inside the fence: the histogram counts it after the "acting on" line.
        counted = proc.metric("tenantry_reconcile_duration_seconds_count", kind="Tenant")
        fenced = sum(m["what"] == "acting on" for m in replicas.fence_lines(name))
        assert 0 < counted <= fenced, (name, counted, fenced)
        mine = {shard for shard, spec in final.items() if spec["holderIdentity"] == name}
        served = {line.split('partner="')[1].split('"')[0] for line in proc.metrics_text().splitlines()
                  if line.startswith("tenantry_tenant_info{")}
        assert served == {p.namespace for p in replicas.partners if ring.shard_of(p.namespace) in mine}, name

    # Deleted with two kopf instances watching: the owner cleans up, the other one waits.
    (ns, slug), partner = next(iter(tenants.items()))
    partner.delete(slug, namespace=ns)
    wait_for(lambda: partner.get(slug, ns) is None, timeout=60, what=f"tenant {slug} to go")
    cleaner = replicas.procs[final[ring.shard_of(ns)]["holderIdentity"]]
    assert f"tenant {ns}/{slug} deleted" in cleaner.log_path.read_text()

    for name in survivors:
        replicas.stop(name)  # so that every interval in the logs is closed
    intervals = {name: replicas.intervals(name) for name in replicas.procs}
    for key in (f"{ns}/{slug}" for ns, slug in tenants):
        spans = sorted((start, end, name) for name in intervals for start, end in intervals[name].get(key, []))
        assert spans, f"tenant {key} was never reconciled inside a shard's fence"
        for i, (_, end, name) in enumerate(spans):
            for later_start, _, other in spans[i + 1:]:
                assert other == name or end < later_start, f"tenant {key}: {name} and {other} at once: {spans}"
