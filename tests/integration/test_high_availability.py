"""Two replicas, one active: leader election on a real Lease, with real processes killed and frozen.

Tested here (the session's operator is stopped meanwhile, so only these replicas act; the lease
timing is the production one, every wait a poll with room for a loaded machine):
- the second replica waits: alive and ready (/healthz, /readyz says standby) but not leading
  (/leader), no kopf, no metrics endpoint; the active one's /readyz says serving
- an operator that cannot reach its API server is alive (/healthz) but not ready (/readyz: 503
  starting or restarting), and does not lead
- SIGKILL the active one: the standby takes over, and the Lease proves it did so only after the
  killed holder's last renewal had expired (acquireTime >= last renewTime + leaseDuration);
  tenants created before and after are Ready, reconciled by the new leader
- SIGTERM the active one (a rollout): it releases the Lease and the standby takes it at once
- SIGSTOP the active one (a frozen node): the standby takes over; on SIGCONT the old leader sees
  it lost the lease and exits (code 75) instead of acting
"""

from __future__ import annotations

import datetime
import signal
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.integration.fixtures import PLATFORM_NAMESPACE, ClusterHandle, OperatorProcess, Partner, wait_for

pytestmark = pytest.mark.integration

# The production timing (Kubernetes' own defaults): shorter ones make a leader that a loaded 2-core
# machine starves for a few seconds give up its lease, which is not what these tests are about.
LEASE_SECONDS, RENEW_DEADLINE_SECONDS, RETRY_SECONDS = 15, 10, 2
# The lease running out, then kopf starting and every informer listing what the whole suite left in
# the cluster (thousands of objects by then), on a busy machine: a bound on waiting, not a speed test.
TAKEOVER_TIMEOUT = 8 * LEASE_SECONDS


@pytest.fixture
def replicas(operator: OperatorProcess, operator_kubeconfig: Path,
             tmp_path: Path) -> Iterator[tuple[str, list[OperatorProcess]]]:
    lease = f"tenantry-leader-{uuid.uuid4().hex[:6]}"
    made: list[OperatorProcess] = []
    operator.stop()

    def replica(name: str) -> OperatorProcess:
        proc = OperatorProcess(operator_kubeconfig, tmp_path / f"{name}.log", extra_env={
            "TENANTRY_LEADER_ELECTION": "true", "TENANTRY_LEASE_NAME": lease, "POD_NAME": name,
            "TENANTRY_LEASE_SECONDS": str(LEASE_SECONDS),
            "TENANTRY_RENEW_DEADLINE_SECONDS": str(RENEW_DEADLINE_SECONDS),
            "TENANTRY_RETRY_SECONDS": str(RETRY_SECONDS)})
        made.append(proc)
        return proc

    yield lease, replica  # type: ignore[misc]
    # Before the partner fixture's clean-up (tests ask for `partner` first), which needs the operator.
    for proc in made:
        proc.kill()
    operator.start()


def _lease(cluster: ClusterHandle, name: str) -> dict:
    import json
    return json.loads(cluster.kubectl("get", "lease", name, "-n", PLATFORM_NAMESPACE, "-o", "json").stdout)["spec"]


def _time(text: str) -> datetime.datetime:
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ")


def _metrics_up(proc: OperatorProcess) -> bool:
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{proc.metrics_port}/metrics", timeout=1).read()
    except OSError:
        return False
    return True


def _readyz(proc: OperatorProcess) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{proc.health_port}/readyz", timeout=2) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read().decode()


def test_an_operator_that_cannot_reach_its_api_server_is_alive_but_not_ready(
        operator_kubeconfig: Path, tmp_path: Path) -> None:
    unreachable = tmp_path / "unreachable.kubeconfig"
    config = yaml.safe_load(operator_kubeconfig.read_text())
    for cluster in config["clusters"]:
        cluster["cluster"]["server"] = "https://127.0.0.1:1"  # nothing listens there
    unreachable.write_text(yaml.safe_dump(config))
    proc = OperatorProcess(unreachable, tmp_path / "unreachable.log")
    try:
        proc.start(leading=False)  # waits for /healthz
        for _ in range(3):  # stays so: polled, not slept on (kopf may be starting again after a failed watch)
            wait_for(lambda: _readyz(proc) in ((503, "starting"), (503, "restarting")), timeout=30,
                     what="/readyz to say starting")
        assert not proc.answers("/leader")
    finally:
        proc.kill()


def test_standby_takes_over_only_after_the_lease_expired(partner: Partner, replicas, cluster: ClusterHandle) -> None:
    lease, replica = replicas
    active, standby = replica("replica-a"), replica("replica-b")
    active.start()
    standby.start(leading=False)
    before = [partner.slug(f"ha-{i}") for i in range(3)]
    for slug in before:
        partner.apply(partner.tenant(slug))
    for slug in before:
        partner.wait_condition(slug, "True", "Provisioned", timeout=120)
    assert _lease(cluster, lease)["holderIdentity"] == "replica-a"
    assert not standby.answers("/leader") and _readyz(standby) == (200, "standby")
    assert _readyz(active) == (200, "serving")
    assert not _metrics_up(standby), "the standby must not run kopf at all"

    last_renewal = _time(_lease(cluster, lease)["renewTime"])
    killed_at = time.monotonic()
    active.kill()
    wait_for(lambda: standby.answers("/leader"), timeout=TAKEOVER_TIMEOUT, what="the standby to take over")
    print(f"takeover after SIGKILL: {time.monotonic() - killed_at:.1f} s (lease {LEASE_SECONDS} s)")
    taken = _lease(cluster, lease)
    assert taken["holderIdentity"] == "replica-b" and taken["leaseTransitions"] >= 1
    # The standby counts the lease from when it saw the holder's last renewal, which is no earlier
    # than that renewal's timestamp (a later renewal than the one read above only widens the gap).
    assert _time(taken["acquireTime"]) - last_renewal >= datetime.timedelta(seconds=LEASE_SECONDS)

    after = partner.slug("ha-after")
    partner.apply(partner.tenant(after))
    partner.wait_condition(after, "True", "Provisioned", timeout=120)
    for slug in before:
        assert partner.condition(slug)["status"] == "True"
    assert standby.metric("tenantry_reconcile_total") >= 1


def test_a_stopped_leader_hands_the_lease_over_at_once(replicas, cluster: ClusterHandle) -> None:
    lease, replica = replicas
    leaving, standby = replica("replica-e"), replica("replica-f")
    leaving.start()
    standby.start(leading=False)
    last_renewal = _time(_lease(cluster, lease)["renewTime"])
    stopped_at = time.monotonic()
    leaving.stop()  # SIGTERM, as in a rollout
    assert leaving.process is not None and leaving.process.returncode == 0
    wait_for(lambda: standby.answers("/leader"), timeout=TAKEOVER_TIMEOUT, what="the standby to take over")
    elapsed = time.monotonic() - stopped_at
    print(f"takeover after SIGTERM: {elapsed:.1f} s (lease {LEASE_SECONDS} s)")
    spec = _lease(cluster, lease)
    assert spec["holderIdentity"] == "replica-f"
    # Released, not expired: taken before the last renewal seen could have run out.
    assert _time(spec["acquireTime"]) - last_renewal < datetime.timedelta(seconds=LEASE_SECONDS)
    assert "acquired the leader lease" in standby.log_path.read_text()


def test_a_frozen_leader_exits_when_it_wakes_up(partner: Partner, replicas, cluster: ClusterHandle) -> None:
    lease, replica = replicas
    frozen, standby = replica("replica-c"), replica("replica-d")
    frozen.start()
    standby.start(leading=False)
    assert frozen.process is not None
    frozen.process.send_signal(signal.SIGSTOP)
    try:
        wait_for(lambda: standby.answers("/leader"), timeout=TAKEOVER_TIMEOUT,
                 what="the standby to take over from a frozen leader")
    finally:
        frozen.process.send_signal(signal.SIGCONT)
    assert frozen.process.wait(timeout=TAKEOVER_TIMEOUT) == 75
    assert "lost the leader lease" in frozen.log_path.read_text()
    assert _lease(cluster, lease)["holderIdentity"] == "replica-d"
    slug = partner.slug("ha-frozen")
    partner.apply(partner.tenant(slug))
    partner.wait_condition(slug, "True", "Provisioned", timeout=120)
