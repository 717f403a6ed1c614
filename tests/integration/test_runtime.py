"""The operator's runtime (handlers/runtime.py) in this process, against the real API server.

Tested here:
- start builds the API client, the informers (every one lists its kind), the work queue, and
  returns once the FeatureSets and Brandings are in the catalogue;
- stop ends every task start began;
- a second start, as when kopf runs again in the same process after a lost watch (kopf's
  startup handler calls start, its cleanup handler stop), begins with a fresh client, fresh
  informers and a fresh queue, and keeps what outlives a run: the settings, the write contest and
  the metrics exposition.

The runtime here never leads (`leading` says no), so it cannot write: the session's operator
process is the one acting on this cluster.
"""

from __future__ import annotations

import asyncio

import pytest

from tenantry.domain.settings import Settings
from tenantry.handlers import runtime as running
from tests.integration.fixtures import PLATFORM_NAMESPACE, ClusterHandle, OperatorProcess


def _settings() -> Settings:
    return Settings.from_env({"TENANTRY_PLATFORM_NAMESPACE": PLATFORM_NAMESPACE,
                              "TENANTRY_PLATFORM_DOMAIN": "platform.test", "TENANTRY_METRICS_PORT": "0"})


def test_a_second_run_starts_from_fresh_listings_and_keeps_the_process_parts(
        cluster: ClusterHandle, operator: OperatorProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(cluster.kubeconfig))

    async def scenario() -> None:
        runtime = running.Runtime.of(_settings())
        runtime.leading = lambda: False  # a standby: every write is refused before it is sent
        for run in (1, 2):
            before = {key: runtime.get(key) for key in ("kube", "queue", "cache", "catalogue", "background_tasks")}
            kept = {key: runtime.get(key) for key in ("settings", "exposition")}
            contest = runtime.services.contest if "services" in runtime else None
            await asyncio.wait_for(running.start(runtime), timeout=60)
            assert runtime.started.is_set()
            # The catalogue is listed before start returns; the other informers list soon after.
            assert runtime.catalogue.feature_sets, "the session's FeatureSets were not listed"
            await asyncio.wait_for(runtime.cache.wait_synced(), timeout=60)
            assert runtime.namespaces.holds(None, PLATFORM_NAMESPACE)
            if run == 2:
                assert all(runtime[key] is not old for key, old in before.items()), "a part of run 1 was reused"
                assert all(runtime[key] is old for key, old in kept.items()), "a process-wide part was rebuilt"
                assert runtime.services.contest is contest, "the write contest was forgotten"
            tasks = list(runtime.background_tasks) + [runtime.sweep]
            await running.stop(runtime)
            assert all(task.done() for task in tasks), "stop left tasks of the run running"
        await runtime.kube.close()

    asyncio.run(scenario())
