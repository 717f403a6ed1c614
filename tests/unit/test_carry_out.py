"""handlers/reconcile._carry_out: one refused write does not keep the rest of the pass back.

Before, a write of the middle wave that failed (a partner's Branding rendering a ConfigMap over the
API server's size limit; a tenant admin's own ConfigMaps filling count/configmaps) ended the pass
there, every pass: a new tenant's admins got their RoleBinding but the namespace never got its
quotas, and an ended trial never got pods: 0 nor had its pods stopped.

Tested here, with a writer whose ConfigMap writes fail (a fake: the write order is the subject):
- the quotas (the last wave) are written, the deletes done and the workloads stopped, then the
  failure is raised (the pass is retried);
- a Conflict still wins over other failures (run again now), and a lost shard stops at once;
- a cancelled pass stays cancelled, a refused write wins over NotYet, and a quota whose own write
  was refused is not waited for (one that was written is: the workloads stop in this pass).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tenantry.adapters.kube import Conflict
from tenantry.domain import tenantpass
from tenantry.domain.children import ObjectRef
from tenantry.domain.conclusion import Verdict
from tenantry.handlers import offboard, reconcile
from tenantry.handlers.leadership import ShardLost


def _manifest(kind: str, name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": kind, "metadata": {"name": name, "namespace": "tenant-a"}}


class _Kube:
    def __init__(self, log: list[str]) -> None:
        self.log = log

    async def delete(self, target: ObjectRef) -> None:
        self.log.append(f"delete {target.kind}")


class _Writer:
    """Records each write; those of kind `refused` (the ConfigMap's) fail with `failure`."""

    def __init__(self, failure: BaseException, refused: str = "ConfigMap") -> None:
        self.log: list[str] = []
        self.count = 0
        self.kube = _Kube(self.log)
        self.failure, self.refused = failure, refused

    async def apply_if_needed(self, manifest: dict[str, Any], live: Any) -> None:
        await asyncio.sleep(0)
        if manifest["kind"] == self.refused:
            self.log.append(f"{self.refused} refused")
            raise self.failure
        self.log.append(f"apply {manifest['kind']}")


def _work() -> tenantpass.NamespaceWork:
    middle = tuple((_manifest(kind, kind.lower()), None) for kind in ("RoleBinding", "ConfigMap", "NetworkPolicy"))
    return tenantpass.NamespaceWork(Verdict("NamespaceReady", "True", "Provisioned", ""),
                                    waves=(middle, ((_manifest("ResourceQuota", "tenantry-quota"), None),)),
                                    deletes=(ObjectRef("rbac.authorization.k8s.io/v1", "RoleBinding", "old",
                                                       "tenant-a"),),
                                    stop_workloads=True)


@pytest.fixture
def stopped(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []

    async def quota_in_effect(writer: Any, namespace: str, wait: float = 0) -> bool:
        return True

    async def stop_workloads(writer: Any, namespace: str, scale: bool) -> None:
        calls.append(namespace)

    monkeypatch.setattr(offboard, "quota_in_effect", quota_in_effect)
    monkeypatch.setattr(offboard, "stop_workloads", stop_workloads)
    return calls


def test_a_refused_configmap_leaves_the_quota_written_and_the_workloads_stopped(stopped: list[str]) -> None:
    writer = _Writer(RuntimeError("configmaps \"tenantry-branding\" is too long"))
    with pytest.raises(RuntimeError, match="too long"):
        asyncio.run(reconcile._carry_out(writer, _work(), ObjectRef("v1", "Namespace", "tenant-a")))  # type: ignore[arg-type]
    assert "apply ResourceQuota" in writer.log and "apply RoleBinding" in writer.log
    assert writer.log.index("apply ResourceQuota") > writer.log.index("ConfigMap refused")
    assert "delete RoleBinding" in writer.log
    assert stopped == ["tenant-a"]


def test_a_conflict_is_raised_after_the_rest_and_a_lost_shard_at_once(stopped: list[str]) -> None:
    writer = _Writer(Conflict("tenantry-branding changed meanwhile"))
    with pytest.raises(Conflict):
        asyncio.run(reconcile._carry_out(writer, _work(), ObjectRef("v1", "Namespace", "tenant-a")))  # type: ignore[arg-type]
    assert "apply ResourceQuota" in writer.log

    lost = _Writer(ShardLost("shard 3 moved"))
    with pytest.raises(ShardLost):
        asyncio.run(reconcile._carry_out(lost, _work(), ObjectRef("v1", "Namespace", "tenant-a")))  # type: ignore[arg-type]
    assert "apply ResourceQuota" not in lost.log and "delete RoleBinding" not in lost.log


def test_a_cancelled_pass_stays_cancelled_and_a_refused_write_wins_over_not_yet(monkeypatch: pytest.MonkeyPatch
                                                                               ) -> None:
    """A failure raised from a `finally` would have hidden the pass's cancellation (a worker that
    never stops: kopf's restart and the shutdown hung) and the NotYet of a quota not yet in effect."""
    waits: list[float] = []
    waiting = asyncio.Event()

    async def quota_slow(writer: Any, namespace: str, wait: float = 30.0) -> bool:
        waits.append(wait)
        waiting.set()
        await asyncio.sleep(3600)
        return True

    monkeypatch.setattr(offboard, "quota_in_effect", quota_slow)

    async def cancelled() -> None:
        refused = _Writer(RuntimeError("configmaps is forbidden: exceeded quota"))
        task = asyncio.create_task(reconcile._carry_out(refused, _work(),  # type: ignore[arg-type]
                                                        ObjectRef("v1", "Namespace", "tenant-a")))
        await waiting.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancelled())
    assert waits == [offboard.PASS_QUOTA_WAIT_SECONDS]  # the quota itself was written: worth waiting for

    async def quota_not_yet(writer: Any, namespace: str, wait: float = 30.0) -> bool:
        waits.append(wait)
        return False

    monkeypatch.setattr(offboard, "quota_in_effect", quota_not_yet)
    writer = _Writer(RuntimeError("configmaps is forbidden: exceeded quota"))
    with pytest.raises(RuntimeError, match="exceeded quota"):
        asyncio.run(reconcile._carry_out(writer, _work(), ObjectRef("v1", "Namespace", "tenant-a")))  # type: ignore[arg-type]
    # A quota whose own write was refused will not take effect: not waited for.
    writer = _Writer(RuntimeError("resourcequotas is forbidden"), refused="ResourceQuota")
    with pytest.raises(RuntimeError, match="resourcequotas"):
        asyncio.run(reconcile._carry_out(writer, _work(), ObjectRef("v1", "Namespace", "tenant-a")))  # type: ignore[arg-type]
    assert waits[-2:] == [offboard.PASS_QUOTA_WAIT_SECONDS, 0.0]
