"""Reliability: the operator stays correct while things fail around it (real processes, real API server).

Sized to run in minutes inside `make test`; `make chaos` runs the same scenarios bigger
(TENANTRY_CHAOS=1: 1,000 tenants, 20 kills). Each scenario prints what it did and measured.

Tested here:
- crash loop: SIGKILL the operator (two reconcile workers) at random moments (5 times; seed 13
  unless TENANTRY_CHAOS_SEED says otherwise) while 200 tenants are onboarded and 20 deleted, each
  kill proven to land while tenants were still waiting to be Ready; afterwards every tenant
  converges, each tenant namespace holds exactly its managed objects, deleted Retain tenants keep
  their namespace (labelled orphaned), deleted Delete tenants lose theirs, and no other tenant
  namespace is left behind
- the API server killed and restarted three times, and etcd once, mid-onboarding (proven: not
  every tenant Ready after the first restart): the operator reconnects by itself (same process;
  kopf started again in-process when it gave up a watch on the restarting API server's 404s) and
  converges, and acts on a tenant created afterwards
- a watch kopf gives up (made certain here: the right to watch Tenants taken away for a moment)
  is started again in the same process, and new Tenants are provisioned
- another writer keeps changing a managed object: the operator corrects it a bounded number of
  times, then leaves it alone and says so in the status (ManagedObjectsInSync=False, naming the
  writer); once the other writer stops, it is corrected again
- GitOps accident: a partner's folder is removed from git and pruned; Retain tenants keep their
  namespaces and data (labelled orphaned), restoring the files re-adopts the very same namespaces
(DNS outage during bulk onboarding: test_dns.py; hostile documents: test_admission.py and
tests/unit/test_hostile_cli.py; property-based tests: tests/unit/test_properties.py.)
"""

from __future__ import annotations

import json
import os
import random
import re
import threading
import time
from pathlib import Path

import pytest
import yaml
from lightkube.core.exceptions import ApiError
from lightkube.resources.core_v1 import ResourceQuota

from tenantry.adapters.kube import Tenant
from tests.integration.fixtures import ClusterHandle, OperatorProcess, Partner, namespace_of, wait_for

pytestmark = pytest.mark.integration

CHAOS = os.environ.get("TENANTRY_CHAOS") == "1"
TENANTS = 1000 if CHAOS else 200
KILLS = 20 if CHAOS else 5
SEED = int(os.environ.get("TENANTRY_CHAOS_SEED", "13"))  # fixed: a failure repeats with the same kill moments
# What every Active tenant namespace holds, by kind and name (the plan has no domains, admins set).
EXPECTED_CHILDREN = {"resourcequota/tenantry-quota", "resourcequota/tenantry-priority-classes",
                     "limitrange/tenantry-limits",
                     "networkpolicy.networking.k8s.io/tenantry-isolation",
                     "rolebinding.rbac.authorization.k8s.io/tenantry-tenant-admins", "configmap/tenantry-tenant",
                     "configmap/tenantry-features", "configmap/tenantry-flags", "configmap/tenantry-branding"}


def _bulk_apply(partner: Partner, manifests: list[dict]) -> None:
    for start in range(0, len(manifests), 100):
        partner.cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(manifests[start:start + 100]))


def _ready_count(cluster: ClusterHandle, namespace: str) -> tuple[int, int]:
    """(tenants Ready at their current generation, tenants) in a partner namespace."""
    items = [tenant.to_dict() for tenant in cluster.client.list(Tenant, namespace=namespace)]
    ready = 0
    for item in items:
        cond = next((c for c in (item.get("status") or {}).get("conditions", []) if c["type"] == "Ready"), {})
        if cond.get("status") == "True" and cond.get("observedGeneration") == item["metadata"]["generation"]:
            ready += 1
    return ready, len(items)


def _managed_children(cluster: ClusterHandle, slug_label: str) -> dict[str, set[str]]:
    """Managed objects of the given tenants, by namespace."""
    out = cluster.kubectl("get", "resourcequota,limitrange,networkpolicy,rolebinding,configmap", "-A",
                          "-l", f"app.kubernetes.io/managed-by=tenantry,{slug_label}", "-o", "json").stdout
    found: dict[str, set[str]] = {}
    for item in json.loads(out)["items"]:
        group = item["apiVersion"].split("/")[0] if "/" in item["apiVersion"] else ""
        kind = item["kind"].lower() + (f".{group}" if group and group != "v1" else "")
        found.setdefault(item["metadata"]["namespace"], set()).add(f"{kind}/{item['metadata']['name']}")
    return found


def _wait_ready(cluster: ClusterHandle, partner: Partner, operator: OperatorProcess, target: int,
                failures: list[BaseException], what: str) -> None:
    """Until `target` tenants are Ready; a failed apply in the background ends the wait at once, and a
    timeout says how far it got and what the operator last logged (a stall must leave evidence)."""
    def check() -> bool:
        if failures:
            raise AssertionError(f"applying the tenants failed: {failures[0]!r}")
        return _ready_count(cluster, partner.namespace)[0] >= target
    try:
        wait_for(check, timeout=300, what=f"{target} tenants Ready {what}")
    except AssertionError as error:
        tail = operator.log_path.read_text(errors="replace")[-6000:] if operator.log_path.exists() else ""
        raise AssertionError(f"{error}\n(Ready, Tenants) now: {_ready_count(cluster, partner.namespace)}; "
                             f"operator alive: {operator.process is not None and operator.process.poll() is None}; "
                             f"operator log:\n{tail}") from None


@pytest.mark.timeout(3600 if CHAOS else 1200)
def test_crash_loop_during_bulk_onboarding_and_deletion(partner: Partner, cluster: ClusterHandle,
                                                        operator: OperatorProcess) -> None:
    print(f"crash loop: seed {SEED} (TENANTRY_CHAOS_SEED=<n> for others)")
    # Two reconciles at a time: the operator then needs seconds for the last tenants, not one, so
    # that each kill (after a random number are Ready) lands while tenants still wait, as asserted.
    before = dict(operator.extra_env)
    operator.restart_with({**before, "TENANTRY_WORKERS": "2"})
    try:
        _crash_loop(partner, cluster, operator)
    finally:
        operator.restart_with(before)


def _crash_loop(partner: Partner, cluster: ClusterHandle, operator: OperatorProcess) -> None:
    rng = random.Random(SEED)
    slugs = [partner.slug(f"crash{i}") for i in range(TENANTS)]
    policy = {slug: ("Delete" if i % 10 == 0 else "Retain") for i, slug in enumerate(slugs)}
    doomed = [s for s in slugs[:100] if policy[s] == "Delete"][:10] + \
             [s for s in slugs[:100] if policy[s] == "Retain"][:10]
    manifests = [partner.tenant(s, deletionPolicy=policy[s]) for s in slugs]
    for m in manifests:
        # Prefixed: a bare hex suffix such as 12e345 is a number to kubectl's YAML reader (PyYAML
        # writes it unquoted), and kubectl refused every manifest in one run of `make test`.
        m["metadata"]["labels"] = {"chaos": f"run-{partner.suffix}"}
    failures: list[BaseException] = []

    def background(work) -> threading.Thread:
        def run() -> None:
            try:
                work()
            except BaseException as error:  # noqa: BLE001  (re-raised in the test's own thread)
                failures.append(error)
        thread = threading.Thread(target=run)
        thread.start()
        return thread

    provisioned_when_deleted: set[str] = set()

    def leave() -> None:
        # Some customers leave while the operator keeps crashing (once their Tenant exists).
        wait_for(lambda: all(partner.get(s) is not None for s in doomed), timeout=120, what="doomed tenants applied")
        for slug in doomed:
            if ((partner.get(slug) or {}).get("status") or {}).get("namespace"):
                provisioned_when_deleted.add(slug)
            partner.delete(slug, wait=False)

    started = time.monotonic()
    threads = [background(lambda: _bulk_apply(partner, manifests))]
    # Each kill at a random point of the onboarding rather than a random time, which a fast or a
    # loaded machine would shift before it or after it: once a random number more are Ready.
    step = (TENANTS - len(doomed)) // (KILLS + 1)
    target, hits = 0, []
    for kill in range(KILLS):
        target += rng.randint(1, step)
        _wait_ready(cluster, partner, operator, target, failures, what=f"before kill {kill + 1}")
        time.sleep(rng.uniform(0, 0.5))  # and a random moment into the passes under way
        operator.kill()
        # Only the operator marks tenants Ready: this is what the kill landed on.
        hits.append(_ready_count(cluster, partner.namespace))
        if kill == KILLS // 2:
            threads.append(background(leave))
        operator.start()
    for thread in threads:
        thread.join()
    assert failures == []
    print(f"crash loop: (Ready, Tenants) at each kill: {hits}")
    assert all(ready < TENANTS - len(doomed) for ready, _ in hits), f"a kill after the onboarding: {hits}"
    killed_for = time.monotonic() - started
    converge_from = time.monotonic()
    wait_for(lambda: _ready_count(cluster, partner.namespace) == (TENANTS - len(doomed),) * 2,
             timeout=900, what=f"{TENANTS - len(doomed)} tenants Ready and the deleted ones gone")
    converged = time.monotonic() - converge_from
    print(f"crash loop: {TENANTS} tenants, {len(doomed)} deleted ({len(provisioned_when_deleted)} already "
          f"provisioned), {KILLS} SIGKILLs over {killed_for:.0f} s; converged {converged:.0f} s after the last restart")

    children = _managed_children(cluster, "tenantry.dev/tenant")
    alive = [s for s in slugs if s not in doomed]
    for slug in alive:
        assert children.get(f"tenant-{slug}") == EXPECTED_CHILDREN, slug
    retained = set()
    for slug in doomed:
        ns = namespace_of(cluster, f"tenant-{slug}")
        if policy[slug] == "Retain":
            # Provisioned before it was deleted: its data must still be there. Deleted before the
            # (crashing) operator got to it: there may be nothing to keep, but nothing unmarked either.
            if slug in provisioned_when_deleted:
                assert ns is not None, f"Retain tenant {slug} lost its namespace"
            if ns is not None:
                assert ns["metadata"]["labels"].get("tenantry.dev/orphaned") == "true", slug
                retained.add(f"tenant-{slug}")
        else:
            assert ns is None or ns["metadata"].get("deletionTimestamp"), f"Delete tenant {slug} kept its namespace"
    ours = json.loads(cluster.kubectl("get", "namespaces", "-l", f"tenantry.dev/partner=acme-{partner.suffix}",
                                      "-o", "json").stdout)["items"]
    expected = {f"tenant-{s}" for s in alive} | retained
    left = {n["metadata"]["name"] for n in ours if not n["metadata"].get("deletionTimestamp")}
    assert left - {partner.namespace} == expected, "orphaned or missing tenant namespaces"


@pytest.mark.parametrize("component", ["kube-apiserver", "etcd"])
def test_control_plane_restart_mid_onboarding(partner: Partner, cluster: ClusterHandle, operator: OperatorProcess,
                                              component: str) -> None:
    if cluster.local is None:
        pytest.skip("restarting components needs the local control plane (not an existing cluster)")
    from tenantry.devtools import cluster as local_cluster
    slugs = [partner.slug(f"{component[:4]}-restart{i}") for i in range(40)]
    _bulk_apply(partner, [partner.tenant(s) for s in slugs])
    pid_before = operator.process.pid if operator.process else None
    started = time.monotonic()
    # The API server three times: while restarting it answers 404 for custom resources for a
    # moment, which can make kopf give up a watch; the operator must notice that and watch again.
    # etcd once: killing it in quick succession wedges the 1.20 API server's quota admission.
    # Read just before the first kill: the operator (fast from memory) could finish 40 tenants
    # during the seconds a restart takes, so a count read afterwards would prove nothing.
    hit = _ready_count(cluster, partner.namespace)
    for _ in range(3 if component == "kube-apiserver" else 1):
        local_cluster.restart_process(cluster.local, component)
    back = time.monotonic() - started
    assert hit[0] < len(slugs), f"the onboarding was done before the first kill: {hit}"
    wait_for(lambda: _ready_count(cluster, partner.namespace) == (len(slugs),) * 2, timeout=300,
             what=f"every tenant Ready after the {component} restart")
    rewatched = operator.log_path.read_text().count("a kopf watch was lost")
    print(f"{component} killed and restarted, back after {back:.1f} s in all; 40 tenants Ready "
          f"{time.monotonic() - started:.0f} s after the first kill, same operator process "
          f"(kopf restarted in-process after a lost watch {rewatched} times so far)")
    assert operator.process is not None and operator.process.poll() is None
    assert operator.process.pid == pid_before  # reconnected, not restarted
    # It still acts on new changes: one more tenant after the restart.
    late = partner.slug(f"{component[:4]}-late")
    partner.apply(partner.tenant(late))
    partner.wait_condition(late, "True", "Provisioned", timeout=120)


def test_conflicting_writer_is_not_fought_forever(partner: Partner, cluster: ClusterHandle,
                                                 operator: OperatorProcess) -> None:
    operator.restart_with({"TENANTRY_CONTEST_LIMIT": "3", "TENANTRY_CONTEST_WINDOW_SECONDS": "30",
                           "TENANTRY_CONTEST_PAUSE_SECONDS": "20"})
    try:
        slug = partner.slug("contested")
        partner.apply(partner.tenant(slug))
        partner.wait_condition(slug, "True", "Provisioned")
        ns = f"tenant-{slug}"
        stop = threading.Event()
        edits = 0

        def quota_bot() -> None:
            nonlocal edits
            while not stop.is_set():
                try:
                    cluster.client.patch(ResourceQuota, "tenantry-quota", {"spec": {"hard": {"pods": "999"}}},
                                         namespace=ns, field_manager="quota-bot")
                    edits += 1
                except ApiError:
                    pass
                time.sleep(0.3)

        before = cluster.apiserver_writes({"resourcequotas"})
        bot = threading.Thread(target=quota_bot)
        bot.start()
        try:
            cond = partner.wait_condition(slug, "False", "ContestedByOtherWriter", kind="ManagedObjectsInSync",
                                          timeout=60)
            # Named when the field managers tell (their timestamps have a one-second resolution).
            assert re.search(r"ResourceQuota tenantry-quota \(changed by (quota-bot|another writer)\)",
                             cond["message"]), cond["message"]
            # Keep fighting for 25 more edits (counted, not timed: about 8 s within the operator's
            # 20 s pause on a quiet machine): the operator must stay out of it.
            fought = edits + 25
            wait_for(lambda: edits >= fought, timeout=60, what="25 more edits by the quota bot")
        finally:
            stop.set()
            bot.join()
        after = cluster.apiserver_writes({"resourcequotas"})
        ours = sum(after.get(k, 0) - before.get(k, 0) for k in after if k.startswith(("PUT", "PATCH")))
        corrections = ours - edits  # the bot's edits are PATCHes too
        print(f"conflicting writer: {edits} edits by quota-bot, {corrections} corrections by tenantry")
        assert corrections <= 2 * 3, "the operator kept fighting"
        # The other writer gone: after the pause, the plan's quota is back and the condition clears.
        partner.wait_condition(slug, "True", "InSync", kind="ManagedObjectsInSync", timeout=90)
        hard = cluster.client.get(ResourceQuota, "tenantry-quota", namespace=ns).spec.hard
        assert hard["pods"] == "20"
    finally:
        operator.restart_with({})


def test_gitops_accident_prune_keeps_data_and_restore_readopts(partner: Partner, cluster: ClusterHandle,
                                                               tmp_path: Path) -> None:
    folder = tmp_path / "tenants" / partner.namespace
    folder.mkdir(parents=True)
    slugs = [partner.slug(f"git{i}") for i in range(5)]
    for slug in slugs:
        (folder / f"{slug}.yaml").write_text(yaml.safe_dump(partner.tenant(slug)))
    cluster.kubectl("apply", "-f", str(folder))
    uids = {}
    for slug in slugs:
        partner.wait_condition(slug, "True", "Provisioned")
        cluster.kubectl("create", "configmap", "customer-data", "-n", f"tenant-{slug}", "--from-literal=orders=42")
        uids[slug] = namespace_of(cluster, f"tenant-{slug}")["metadata"]["uid"]

    # The folder is deleted in git; Flux/Argo CD prune what it had applied.
    cluster.kubectl("delete", "-f", str(folder), "--wait=true", "--timeout=120s")
    for slug in slugs:
        ns = namespace_of(cluster, f"tenant-{slug}")
        assert ns is not None and ns["metadata"]["labels"]["tenantry.dev/orphaned"] == "true"
        data = cluster.kubectl("get", "configmap", "customer-data", "-n", f"tenant-{slug}",
                               "-o", "jsonpath={.data.orders}").stdout
        assert data == "42", f"customer data of {slug} lost"
    orphans = cluster.kubectl("get", "namespaces", "-l", "tenantry.dev/orphaned=true", "-o", "name").stdout.split()
    assert {f"namespace/tenant-{s}" for s in slugs} <= set(orphans)

    # The commit is reverted: the same files come back and take their namespaces over again.
    cluster.kubectl("apply", "-f", str(folder))
    for slug in slugs:
        partner.wait_condition(slug, "True", "Provisioned")
        ns = namespace_of(cluster, f"tenant-{slug}")
        assert ns["metadata"]["uid"] == uids[slug]
        assert "tenantry.dev/orphaned" not in ns["metadata"]["labels"]
        assert cluster.kubectl("get", "configmap", "customer-data", "-n", f"tenant-{slug}",
                               "-o", "jsonpath={.data.orders}").stdout == "42"


def test_a_watch_kopf_gives_up_is_started_again(partner: Partner, cluster: ClusterHandle,
                                                operator: OperatorProcess) -> None:
    # Deterministically what a restarting API server does only sometimes: the watch of Tenants
    # fails with an HTTP error (here 403: the right to watch is taken away, then given back).
    role = json.loads(cluster.kubectl("get", "clusterrole", "tenantry-operator", "-o", "json").stdout)
    crippled = json.loads(json.dumps(role))
    for rule in crippled["rules"]:
        if rule["resources"] == ["tenants"]:
            rule["verbs"] = [v for v in rule["verbs"] if v != "watch"]
    before = operator.log_path.read_text().count("a kopf watch was lost")
    cluster.kubectl("replace", "-f", "-", input=json.dumps(crippled))
    try:
        operator.restart_with({})  # its first watch of Tenants is refused
        wait_for(lambda: operator.log_path.read_text().count("a kopf watch was lost") > before, timeout=60,
                 what="the operator to notice the lost watch")
    finally:
        cluster.kubectl("replace", "-f", "-", input=json.dumps({**role, "metadata": {
            k: v for k, v in role["metadata"].items() if k in ("name", "labels", "annotations")}}))
    slug = partner.slug("rewatched")
    partner.apply(partner.tenant(slug))
    partner.wait_condition(slug, "True", "Provisioned", timeout=120)
    assert operator.process is not None and operator.process.poll() is None
