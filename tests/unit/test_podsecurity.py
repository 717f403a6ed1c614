"""The restricted pod security profile in code (domain/podsecurity), and the webhook's judgement.

Tested here, each rule with a pod it allows and one it refuses, and the exact words (upstream's
`<reason> (<detail>)`, then the offending fields and the fix):
- host namespaces, privileged, hostPath and every non-allowed volume type, hostPorts, AppArmor
  annotations, SELinux options, procMount, sysctls, Windows hostProcess, probe/lifecycle hosts,
  allowPrivilegeEscalation, runAsNonRoot (pod or every container), runAsUser 0, seccompProfile
  (pod or every container; Unconfined; the old annotations), capabilities (drop ALL, add only
  NET_BIND_SERVICE); init and ephemeral containers are checked like containers
- the pod templates of Deployments, StatefulSets, DaemonSets, ReplicaSets, ReplicationControllers,
  Jobs and CronJobs, with their field paths; other kinds are not judged
- the webhook's judgement: refusal text; an update that leaves the template alone (scale, labels)
  and an object being deleted pass; which namespaces are tenant namespaces
- the PodSecurity condition is carried over by the reconcile's status, other conditions are not
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tenantry.domain import podsecurity
from tenantry.domain.podsecurity import check_object, check_pod
from tenantry.domain.status import Verdict, carried_over, conditions
from tenantry.handlers.podsecurity import judge, offender, pod_security_condition, updated_conditions

CONTAINER: dict[str, Any] = {"name": "app", "image": "busybox",
                             "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}}
GOOD_SPEC: dict[str, Any] = {
    "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
    "containers": [CONTAINER],
    "volumes": [{"name": v, v: {}} for v in podsecurity.ALLOWED_VOLUME_TYPES],
}


def _spec(**changes: Any) -> dict[str, Any]:
    spec = copy.deepcopy(GOOD_SPEC)
    spec.update(changes)
    return spec


def _container(name: str = "app", **security: Any) -> dict[str, Any]:
    body = copy.deepcopy(CONTAINER)
    body["name"] = name
    body["securityContext"].update(security)
    return body


def _only(violations: list[podsecurity.Violation]) -> str:
    assert len(violations) == 1, violations
    return str(violations[0])


def test_a_restricted_pod_passes_every_check() -> None:
    assert check_pod({}, GOOD_SPEC) == []
    # Container-level settings instead of pod-level ones, NET_BIND_SERVICE, allowed values everywhere.
    spec = _spec(securityContext={"runAsUser": 1000, "sysctls": [{"name": "net.ipv4.tcp_syncookies", "value": "1"}],
                                  "seLinuxOptions": {"type": "container_t", "level": "s0:c1"}},
                 containers=[_container(runAsNonRoot=True, seccompProfile={"type": "Localhost"}, procMount="Default",
                                        capabilities={"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]},
                                        windowsOptions={"hostProcess": False}, privileged=False,
                                        runAsUser=1000)],
                 hostNetwork=False, hostPID=False)
    annotations = {"container.apparmor.security.beta.kubernetes.io/app": "runtime/default",
                   "container.apparmor.security.beta.kubernetes.io/b": "localhost/mine",
                   "seccomp.security.alpha.kubernetes.io/pod": "runtime/default"}
    assert check_pod({"annotations": annotations}, spec) == []


def test_host_namespaces() -> None:
    assert _only(check_pod({}, _spec(hostPID=True, hostNetwork=True, hostIPC=True))) == (
        "host namespaces (hostIPC=true, hostNetwork=true, hostPID=true) at spec.hostIPC, spec.hostNetwork, "
        "spec.hostPID: remove these fields (or set them to false): pods share nothing with the node")


def test_privileged() -> None:
    spec = _spec(containers=[_container("a", privileged=True), _container("b", privileged=True)])
    assert _only(check_pod({}, spec)) == (
        'privileged (containers "a", "b" must not set securityContext.privileged=true) at '
        "spec.containers[0].securityContext.privileged, spec.containers[1].securityContext.privileged: "
        "remove securityContext.privileged or set it to false")


def test_host_path_is_refused_twice_like_upstream() -> None:
    found = check_pod({}, _spec(volumes=[{"name": "root", "hostPath": {"path": "/"}}]))
    assert [str(v) for v in found] == [
        'hostPath volumes (volume "root") at spec.volumes[0].hostPath: use a persistentVolumeClaim, emptyDir, '
        "configMap or secret volume instead of the node's files",
        'restricted volume types (volumes ["root"] have restricted types) at spec.volumes[0].hostPath: use only '
        "configMap, csi, downwardAPI, emptyDir, ephemeral, persistentVolumeClaim, projected, secret volumes "
        "(a persistentVolumeClaim for other storage)"]


@pytest.mark.parametrize("kind", ["nfs", "gitRepo", "iscsi", "rbd", "cephfs", "flexVolume", "awsElasticBlockStore"])
def test_other_volume_types_are_refused(kind: str) -> None:
    found = check_pod({}, _spec(volumes=[{"name": "data", kind: {}}]))
    assert found[0].check == "restricted volume types"
    assert found[0].detail == 'volumes ["data"] have restricted types'
    assert found[0].fields == (f"spec.volumes[0].{kind}",)


def test_host_ports() -> None:
    spec = _spec(containers=[{**_container(), "ports": [{"containerPort": 80, "hostPort": 80},
                                                        {"containerPort": 443}]}])
    assert _only(check_pod({}, spec)) == (
        'hostPort (container "app" uses hostPort 80) at spec.containers[0].ports[0].hostPort: '
        "remove hostPort: reach the container through a Service")
    assert check_pod({}, _spec(containers=[{**_container(), "ports": [{"containerPort": 80, "hostPort": 0}]}])) == []


def test_apparmor() -> None:
    annotations = {"container.apparmor.security.beta.kubernetes.io/app": "unconfined"}
    assert _only(check_pod({"annotations": annotations}, GOOD_SPEC)) == (
        'forbidden AppArmor profile (container.apparmor.security.beta.kubernetes.io/app="unconfined") at '
        "metadata.annotations[container.apparmor.security.beta.kubernetes.io/app]: use runtime/default or "
        "localhost/<profile>, or remove the annotation")


def test_what_a_tenant_admin_wrote_is_quoted_and_cut_in_every_message() -> None:
    """An SELinux type or a capability is free text: a line break and an escape sequence in one
    forged a line of the operator's log, and a megabyte of it filled the partner's Tenant status."""
    forged = "x\n[2026-12-03 17:00:00] tenantry [INFO] tenant partner-b/victim: Ready=False\x1b[2K" + "y" * 1_000_000
    spec = _spec(securityContext={**GOOD_SPEC["securityContext"], "seLinuxOptions": {"type": forged}},
                 containers=[_container(capabilities={"drop": ["ALL"], "add": [forged]})])
    summary = podsecurity.summary(check_pod({}, spec))
    assert "\n" not in summary and "\x1b" not in summary and len(summary) < 2000, summary[:300]
    assert 'type "x\\n[2026-12-03 17:00:00] tenantry [INFO] ..."' in summary
    many = _spec(containers=[_container(capabilities={"drop": ["ALL"], "add": [f"CAP_{i}" for i in range(60_000)]})])
    summary = podsecurity.summary(check_pod({}, many))
    assert '"CAP_10004" and 59990 more in' in summary and len(summary) < 1000, summary[:300]
    sysctls = _spec(securityContext={**GOOD_SPEC["securityContext"],
                                     "sysctls": [{"name": f"net.x{i}", "value": "1"} for i in range(60_000)]})
    [violation] = check_pod({}, sysctls)
    assert len(str(violation)) < 2000 and "and 59990 more" in str(violation), str(violation)[:300]
    annotated = check_pod({"annotations": {"container.apparmor.security.beta.kubernetes.io/app": forged[:100]}}, spec)
    assert "\n" not in podsecurity.summary(annotated)
    condition = pod_security_condition("pod evil", "tenant-a", check_pod({}, {**spec, "hostPID": True} | {
        "volumes": [{"name": f"v{i}", "hostPath": {"path": "/" + forged[:200]}} for i in range(200)]}), 1, "now")
    assert len(condition["message"]) <= 2000


def test_selinux() -> None:
    spec = _spec(securityContext={**GOOD_SPEC["securityContext"],
                                  "seLinuxOptions": {"type": "spc_t", "user": "system_u", "role": "system_r"}})
    assert _only(check_pod({}, spec)) == (
        'seLinuxOptions (pod set forbidden securityContext.seLinuxOptions: type "spc_t"; user may not be set; role '
        "may not be set) at spec.securityContext.seLinuxOptions.type, spec.securityContext.seLinuxOptions.user, "
        "spec.securityContext.seLinuxOptions.role: remove seLinuxOptions.user and .role; type may only be "
        "container_t, container_init_t, container_kvm_t or empty")
    spec = _spec(containers=[_container(seLinuxOptions={"user": "root"})])
    assert _only(check_pod({}, spec)).startswith(
        'seLinuxOptions (container "app" set forbidden securityContext.seLinuxOptions: user may not be set) at '
        "spec.containers[0].securityContext.seLinuxOptions.user")


def test_proc_mount() -> None:
    assert _only(check_pod({}, _spec(containers=[_container(procMount="Unmasked")]))) == (
        'procMount (container "app" must not set securityContext.procMount to "Unmasked") at '
        "spec.containers[0].securityContext.procMount: remove securityContext.procMount or set it to Default")


def test_sysctls() -> None:
    spec = _spec(securityContext={**GOOD_SPEC["securityContext"], "sysctls": [
        {"name": "kernel.shm_rmid_forced", "value": "1"}, {"name": "kernel.msgmax", "value": "1"}]})
    assert _only(check_pod({}, spec)).startswith(
        "forbidden sysctls (kernel.msgmax) at spec.securityContext.sysctls[1].name: only kernel.shm_rmid_forced, ")


def test_windows_host_process() -> None:
    spec = _spec(securityContext={**GOOD_SPEC["securityContext"], "windowsOptions": {"hostProcess": True}})
    assert _only(check_pod({}, spec)).startswith(
        "hostProcess (pod must not set securityContext.windowsOptions.hostProcess=true) at "
        "spec.securityContext.windowsOptions.hostProcess")


def test_probe_and_lifecycle_hosts() -> None:
    container = {**_container(), "livenessProbe": {"httpGet": {"host": "169.254.169.254", "port": 80}},
                 "lifecycle": {"preStop": {"tcpSocket": {"host": "10.0.0.1", "port": 22}}}}
    assert _only(check_pod({}, _spec(containers=[container]))) == (
        'probe or lifecycle host (container "app" uses hosts "10.0.0.1", "169.254.169.254") at '
        "spec.containers[0].livenessProbe.httpGet.host, spec.containers[0].lifecycle.preStop.tcpSocket.host: "
        "remove host: probes and hooks reach the pod's own address")


@pytest.mark.parametrize("value", [None, True])
def test_allow_privilege_escalation(value: bool | None) -> None:
    container = _container()
    if value is None:
        del container["securityContext"]["allowPrivilegeEscalation"]
    else:
        container["securityContext"]["allowPrivilegeEscalation"] = value
    assert _only(check_pod({}, _spec(containers=[container]))) == (
        'allowPrivilegeEscalation != false (container "app" must set securityContext.allowPrivilegeEscalation=false)'
        " at spec.containers[0].securityContext.allowPrivilegeEscalation: set "
        "securityContext.allowPrivilegeEscalation: false in every container")


def test_run_as_non_root() -> None:
    unset = _spec(securityContext={"seccompProfile": {"type": "RuntimeDefault"}},
                  containers=[_container("a", runAsNonRoot=True), _container("b")])
    assert _only(check_pod({}, unset)) == (
        'runAsNonRoot != true (pod or container "b" must set securityContext.runAsNonRoot=true) at '
        "spec.securityContext.runAsNonRoot, spec.containers[1].securityContext.runAsNonRoot: set "
        "spec.securityContext.runAsNonRoot: true (or in every container)")
    explicit = _spec(securityContext={**GOOD_SPEC["securityContext"], "runAsNonRoot": False},
                     containers=[_container("a", runAsNonRoot=False)])
    assert _only(check_pod({}, explicit)).startswith(
        'runAsNonRoot != true (pod and container "a" must not set securityContext.runAsNonRoot=false) at '
        "spec.securityContext.runAsNonRoot, spec.containers[0].securityContext.runAsNonRoot:")
    # A container may not opt out of the pod's setting.
    assert check_pod({}, _spec(containers=[_container(runAsNonRoot=False)]))[0].check == "runAsNonRoot != true"


def test_run_as_user_zero() -> None:
    spec = _spec(securityContext={**GOOD_SPEC["securityContext"], "runAsUser": 0},
                 containers=[_container(runAsUser=0)])
    assert _only(check_pod({}, spec)) == (
        'runAsUser=0 (pod and container "app" must not set runAsUser=0) at spec.securityContext.runAsUser, '
        "spec.containers[0].securityContext.runAsUser: use a non-zero user id (or leave runAsUser unset and run "
        "an image with a non-root USER)")


def test_seccomp_profile() -> None:
    unset = _spec(securityContext={"runAsNonRoot": True})
    assert _only(check_pod({}, unset)) == (
        'seccompProfile (pod or container "app" must set securityContext.seccompProfile.type to "RuntimeDefault" or '
        '"Localhost") at spec.securityContext.seccompProfile.type, spec.containers[0].securityContext.seccompProfile.'
        "type: set spec.securityContext.seccompProfile.type: RuntimeDefault")
    unconfined = _spec(containers=[_container(seccompProfile={"type": "Unconfined"})])
    assert _only(check_pod({}, unconfined)).startswith(
        'seccompProfile (container "app" must not set securityContext.seccompProfile.type to "Unconfined") at '
        "spec.containers[0].securityContext.seccompProfile.type")
    annotation = {"seccomp.security.alpha.kubernetes.io/pod": "unconfined"}
    assert _only(check_pod({"annotations": annotation}, GOOD_SPEC)).startswith(
        'seccompProfile (forbidden seccomp annotations seccomp.security.alpha.kubernetes.io/pod="unconfined") at '
        "metadata.annotations[seccomp.security.alpha.kubernetes.io/pod]")


def test_capabilities() -> None:
    spec = _spec(containers=[_container("a", capabilities={"add": ["SYS_ADMIN", "NET_BIND_SERVICE"]}),
                             _container("b", capabilities={"drop": ["ALL"], "add": ["NET_RAW"]})])
    assert _only(check_pod({}, spec)) == (
        'unrestricted capabilities (container "a" must set securityContext.capabilities.drop=["ALL"]; containers '
        '"a", "b" must not include "NET_RAW", "SYS_ADMIN" in securityContext.capabilities.add) at '
        "spec.containers[0].securityContext.capabilities.drop, spec.containers[0].securityContext.capabilities.add, "
        "spec.containers[1].securityContext.capabilities.add: set securityContext.capabilities.drop: [ALL] in every "
        "container; add only NET_BIND_SERVICE")


@pytest.mark.parametrize("key", ["initContainers", "ephemeralContainers"])
def test_init_and_ephemeral_containers_are_containers(key: str) -> None:
    spec = _spec(**{key: [_container("sneaky", privileged=True)]})
    assert check_pod({}, spec)[0].fields == (f"spec.{key}[0].securityContext.privileged",)


def test_a_pod_without_any_security_settings_gets_every_restricted_problem() -> None:
    found = check_pod({}, {"containers": [{"name": "c", "image": "busybox"}]})
    assert [v.check for v in found] == ["allowPrivilegeEscalation != false", "runAsNonRoot != true", "seccompProfile",
                                        "unrestricted capabilities"]
    # Upstream's short form, as `kubectl` prints PSA's refusals.
    assert podsecurity.summary(found).startswith(
        'allowPrivilegeEscalation != false (container "c" must set securityContext.allowPrivilegeEscalation=false), '
        'runAsNonRoot != true (pod or container "c" must set securityContext.runAsNonRoot=true), ')


BAD_SPEC = _spec(hostPID=True)


@pytest.mark.parametrize(("kind", "body", "prefix"), [
    ("Pod", {"spec": BAD_SPEC}, "spec"),
    ("Deployment", {"spec": {"template": {"spec": BAD_SPEC}}}, "spec.template.spec"),
    ("StatefulSet", {"spec": {"template": {"spec": BAD_SPEC}}}, "spec.template.spec"),
    ("DaemonSet", {"spec": {"template": {"spec": BAD_SPEC}}}, "spec.template.spec"),
    ("ReplicaSet", {"spec": {"template": {"spec": BAD_SPEC}}}, "spec.template.spec"),
    ("ReplicationController", {"spec": {"template": {"spec": BAD_SPEC}}}, "spec.template.spec"),
    ("Job", {"spec": {"template": {"spec": BAD_SPEC}}}, "spec.template.spec"),
    ("CronJob", {"spec": {"jobTemplate": {"spec": {"template": {"spec": BAD_SPEC}}}}},
     "spec.jobTemplate.spec.template.spec"),
])
def test_pod_templates_of_every_workload_kind(kind: str, body: dict, prefix: str) -> None:
    assert _only(check_object(kind, body)).startswith(f"host namespaces (hostPID=true) at {prefix}.hostPID:")
    good = copy.deepcopy(body)
    target = good
    for key in podsecurity.TEMPLATES[kind]:
        target = target[key]
    (target if kind != "Pod" else good)["spec"] = GOOD_SPEC
    assert check_object(kind, good) == []


def test_template_annotations_are_checked_with_the_template_prefix() -> None:
    body = {"spec": {"template": {"metadata": {"annotations": {
        "container.apparmor.security.beta.kubernetes.io/app": "unconfined"}}, "spec": GOOD_SPEC}}}
    assert check_object("Deployment", body)[0].fields == (
        "spec.template.metadata.annotations[container.apparmor.security.beta.kubernetes.io/app]",)


def test_other_kinds_and_template_less_controllers_are_not_judged() -> None:
    assert check_object("ConfigMap", {"data": {"hostPID": "true"}}) == []
    assert check_object("ReplicationController", {"spec": {"replicas": 0}}) == []


def test_garbage_is_judged_without_crashing() -> None:
    found = check_pod({"annotations": None}, {"containers": [None, "x", {"securityContext": "nope"}],
                                             "volumes": "all", "securityContext": None})
    assert {v.check for v in found} >= {"allowPrivilegeEscalation != false", "unrestricted capabilities"}


# --- the webhook's judgement -----------------------------------------------------------------------

def _deployment(spec: dict[str, Any], replicas: int = 1, labels: dict | None = None) -> dict[str, Any]:
    return {"kind": "Deployment", "metadata": {"name": "web", "labels": labels or {}},
            "spec": {"replicas": replicas, "template": {"spec": spec}}}


def test_judge_refuses_with_the_kind_and_name() -> None:
    refused = judge("Deployment", _deployment(BAD_SPEC), None)
    assert refused is not None
    assert refused.startswith('Deployment "web" violates PodSecurity "restricted:latest": host namespaces '
                              "(hostPID=true) at spec.template.spec.hostPID:")
    pod = {"metadata": {"generateName": "web-7d9f-"}, "spec": BAD_SPEC}
    assert (judge("Pod", pod, None) or "").startswith('Pod "web-7d9f-" violates')
    assert judge("Deployment", _deployment(GOOD_SPEC), None) is None


def test_judge_lets_updates_that_keep_the_template_pass() -> None:
    stored = _deployment(BAD_SPEC)  # e.g. stored while the webhook was down
    assert judge("Deployment", _deployment(BAD_SPEC, replicas=0, labels={"x": "y"}), stored) is None
    assert judge("Deployment", _deployment(BAD_SPEC), _deployment(GOOD_SPEC)) is not None
    deleting = _deployment(BAD_SPEC)
    deleting["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert judge("Deployment", deleting, None) is None
    # A template annotation that changes AppArmor counts as a template change.
    with_annotation = _deployment(GOOD_SPEC)
    with_annotation["spec"]["template"]["metadata"] = {"annotations": {
        "container.apparmor.security.beta.kubernetes.io/app": "unconfined"}}
    assert judge("Deployment", with_annotation, _deployment(GOOD_SPEC)) is not None


def test_tenant_namespaces_are_those_with_both_labels() -> None:
    assert podsecurity.is_tenant_namespace({"app.kubernetes.io/managed-by": "tenantry",
                                            "pod-security.kubernetes.io/enforce": "restricted", "x": "y"})
    assert not podsecurity.is_tenant_namespace({"pod-security.kubernetes.io/enforce": "restricted"})
    assert not podsecurity.is_tenant_namespace({"app.kubernetes.io/managed-by": "tenantry",
                                                "pod-security.kubernetes.io/enforce": "baseline"})
    assert not podsecurity.is_tenant_namespace(None)


def test_the_pod_security_condition_survives_the_reconciles_status() -> None:
    condition = pod_security_condition("pod takeover", "tenant-x", check_pod({}, BAD_SPEC), 3, "2026-01-01T00:00:00Z")
    assert condition["message"] == ("pod takeover in namespace tenant-x: deleted for breaking the restricted pod "
                                    "security profile: host namespaces (hostPID=true)")
    previous = [{"type": "Ready", "status": "True"}, condition]
    assert carried_over(previous) == [condition]
    written = conditions([Verdict("Ready", "True", "Provisioned")], previous, 4, "now") + carried_over(previous)
    assert [c["type"] for c in written] == ["Ready", "PodSecurity"]


def test_a_workloads_pods_are_reported_once_not_once_per_replacement() -> None:
    owned = {"ownerReferences": [{"kind": "ReplicaSet", "name": "web-5d8", "controller": True},
                                 {"kind": "Other", "name": "x"}]}
    assert offender("web-5d8-abcde", owned) == "pods of ReplicaSet web-5d8"
    assert offender("takeover", {"ownerReferences": [{"kind": "Other", "name": "x"}]}) == "pod takeover"
    violations = check_pod({}, BAD_SPEC)
    first = pod_security_condition("pods of ReplicaSet web-5d8", "tenant-x", violations, 1, "t1")
    ready = {"type": "Ready", "status": "True"}
    written = updated_conditions([ready], first)
    assert written == [ready, first]
    again = pod_security_condition("pods of ReplicaSet web-5d8", "tenant-x", violations, 1, "t2")
    assert updated_conditions(written, again) is None  # the next replacement pod: no write
    other = pod_security_condition("pod takeover", "tenant-x", violations, 1, "t3")
    assert updated_conditions(written, other) == [ready, other]
