"""The Pod Security Standards "restricted" profile, checked in code (pure).

Tenant namespaces carry `pod-security.kubernetes.io/enforce: restricted`, but Pod Security
Admission only exists from Kubernetes 1.23 (beta) / 1.25 (GA): on 1.20-1.22 that label does
nothing, and a tenant admin (who may create pods and every kind of workload) could run a
privileged pod with the node's filesystem, network or PIDs. The admission webhook
(handlers/podsecurity) refuses such pods and pod templates with these checks, and the operator
deletes such pods that got past a webhook that was down. On clusters with PSA, both agree with it.

The checks and their words follow the upstream definitions (k8s.io/pod-security-admission,
policy/check_*.go, level restricted, version latest): reason and detail read exactly as
`violates PodSecurity "restricted:latest": <reason> (<detail>)`; each violation also names the
offending fields and how to fix them. Deliberately stricter than upstream in three small ways:
the user-namespace relaxation (hostUsers: false, 1.25+) is not applied, seccomp annotations
other than runtime/default or localhost/* are refused, and probes or lifecycle hooks may not
name a host (the kubelet would call it from the node's network, past every NetworkPolicy).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from tenantry.api.common import quoted
from tenantry.domain import naming

ENFORCE_LABEL = "pod-security.kubernetes.io/enforce"
LEVEL = "restricted"
POLICY = f'PodSecurity "{LEVEL}:latest"'
# What marks a namespace whose pods are checked: the webhook's namespaceSelector and the
# operator's own re-check use the same labels.
TENANT_NAMESPACE_LABELS = {naming.MANAGED_BY: naming.OPERATOR, ENFORCE_LABEL: LEVEL}

# Where each kind keeps the pod (template) it runs: (metadata path, spec path).
TEMPLATES: dict[str, tuple[str, ...]] = {
    "Pod": (),
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "ReplicationController": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}

ALLOWED_VOLUME_TYPES = ("configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
                        "projected", "secret")
ALLOWED_SYSCTLS = ("kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.tcp_syncookies",
                   "net.ipv4.ping_group_range", "net.ipv4.ip_unprivileged_port_start")
ALLOWED_SELINUX_TYPES = ("", "container_t", "container_init_t", "container_kvm_t")
ALLOWED_CAPABILITY = "NET_BIND_SERVICE"
ALLOWED_SECCOMP = ("RuntimeDefault", "Localhost")
APPARMOR_PREFIX = "container.apparmor.security.beta.kubernetes.io/"
SECCOMP_POD_ANNOTATION = "seccomp.security.alpha.kubernetes.io/pod"
SECCOMP_CONTAINER_PREFIX = "container.seccomp.security.alpha.kubernetes.io/"
CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")
PROBES = ("livenessProbe", "readinessProbe", "startupProbe")


@dataclass(frozen=True)
class Violation:
    """One failed check: upstream's reason and detail, the offending fields, and how to fix them."""

    check: str
    detail: str
    fields: tuple[str, ...]
    fix: str

    def __str__(self) -> str:
        return f"{self.check} ({self.detail}) at {_listed(self.fields)}: {self.fix}"


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _plural(singular: str, plural: str, count: int) -> str:
    return singular if count == 1 else plural


QUOTED_ITEMS = 10  # of one list a message names; the rest are counted


def _quoted(items: list[str] | tuple[str, ...]) -> str:
    # JSON-quoted and cut, and only the first few: a tenant admin writes these (a capability, an
    # SELinux type are free text, 60,000 capabilities fit in a pod), and they reach the operator's
    # log, the webhook's refusal, an Event and the partner's Tenant status.
    return _listed([quoted(item) for item in items])


def _listed(items: list[str] | tuple[str, ...]) -> str:
    """The first QUOTED_ITEMS of a list, and how many more (a pod may hold thousands of sysctls)."""
    shown = ", ".join(items[:QUOTED_ITEMS])
    return shown + (f" and {len(items) - QUOTED_ITEMS} more" if len(items) > QUOTED_ITEMS else "")


def _named(things: list[str], singular: str = "container", plural: str = "containers") -> str:
    """`container "a"` or `containers "a", "b"`, as upstream's pluralize + joinQuote."""
    return f"{_plural(singular, plural, len(things))} {_quoted(things)}"


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


@dataclass(frozen=True)
class _Container:
    name: str
    path: str  # e.g. spec.containers[0]
    body: Mapping[str, Any]

    @property
    def security(self) -> Mapping[str, Any]:
        return _map(self.body.get("securityContext"))


@dataclass(frozen=True)
class _Pod:
    meta: Mapping[str, Any]
    spec: Mapping[str, Any]
    prefix: str  # "" for a Pod, "spec.template." for a Deployment's template

    @property
    def security(self) -> Mapping[str, Any]:
        return _map(self.spec.get("securityContext"))

    def field(self, rest: str) -> str:
        return f"{self.prefix}spec.{rest}"

    def containers(self) -> Iterator[_Container]:
        for key in CONTAINER_LISTS:
            for index, container in enumerate(_list(self.spec.get(key))):
                body = _map(container)
                yield _Container(str(body.get("name", "")), f"{self.prefix}spec.{key}[{index}]", body)


Check = Callable[[_Pod], list[Violation]]


def _host_namespaces(pod: _Pod) -> list[Violation]:
    shared = sorted(key for key in ("hostIPC", "hostNetwork", "hostPID") if pod.spec.get(key) is True)
    if not shared:
        return []
    return [Violation("host namespaces", ", ".join(f"{key}=true" for key in shared),
                      tuple(pod.field(key) for key in shared),
                      "remove these fields (or set them to false): pods share nothing with the node")]


def _per_container(pod: _Pod, bad: Callable[[_Container], str | None]) -> tuple[list[str], list[str]]:
    """(names, fields) of the containers for which `bad` names a field."""
    names, fields = [], []
    for container in pod.containers():
        where = bad(container)
        if where is not None:
            names.append(container.name)
            fields.append(f"{container.path}.{where}")
    return names, fields


def _privileged(pod: _Pod) -> list[Violation]:
    names, fields = _per_container(
        pod, lambda c: "securityContext.privileged" if c.security.get("privileged") is True else None)
    if not names:
        return []
    return [Violation("privileged", f"{_named(names)} must not set securityContext.privileged=true",
                      tuple(fields), "remove securityContext.privileged or set it to false")]


def _host_path(pod: _Pod) -> list[Violation]:
    volumes = [(i, str(_map(v).get("name", ""))) for i, v in enumerate(_list(pod.spec.get("volumes")))
               if _map(v).get("hostPath") is not None]
    if not volumes:
        return []
    return [Violation("hostPath volumes", _named([name for _, name in volumes], "volume", "volumes"),
                      tuple(pod.field(f"volumes[{i}].hostPath") for i, _ in volumes),
                      "use a persistentVolumeClaim, emptyDir, configMap or secret volume instead of the node's files")]


def _volume_types(pod: _Pod) -> list[Violation]:
    names, fields = [], []
    for index, volume in enumerate(_list(pod.spec.get("volumes"))):
        body = _map(volume)
        if any(body.get(kind) is not None for kind in ALLOWED_VOLUME_TYPES):
            continue
        names.append(str(body.get("name", "")))
        kinds = [key for key in body if key != "name"] or ["(none)"]
        fields.append(pod.field(f"volumes[{index}].{kinds[0]}"))
    if not names:
        return []
    # Go's %q of a []string, as upstream prints it: ["a" "b"].
    listed = "[" + " ".join(f'"{name}"' for name in sorted(set(names))) + "]"
    return [Violation("restricted volume types", f"volumes {listed} have restricted types", tuple(fields),
                      f"use only {', '.join(ALLOWED_VOLUME_TYPES)} volumes (a persistentVolumeClaim for "
                      "other storage)")]


def _host_ports(pod: _Pod) -> list[Violation]:
    names, fields, ports = [], [], []
    for container in pod.containers():
        used = [(i, _map(p).get("hostPort")) for i, p in enumerate(_list(container.body.get("ports")))
                if _map(p).get("hostPort")]
        if used:
            names.append(container.name)
            fields += [f"{container.path}.ports[{i}].hostPort" for i, _ in used]
            ports += [str(port) for _, port in used]
    if not names:
        return []
    ports = sorted(set(ports))
    return [Violation("hostPort", f"{_named(names)} {_plural('uses', 'use', len(names))} "
                      f"{_plural('hostPort', 'hostPorts', len(ports))} {', '.join(ports)}", tuple(fields),
                      "remove hostPort: reach the container through a Service")]


def _apparmor(pod: _Pod) -> list[Violation]:
    bad = sorted(f"{key}={quoted(str(value))}" for key, value in _map(pod.meta.get("annotations")).items()
                 if key.startswith(APPARMOR_PREFIX) and value and value != "runtime/default"
                 and not str(value).startswith("localhost/"))
    if not bad:
        return []
    return [Violation(_plural("forbidden AppArmor profile", "forbidden AppArmor profiles", len(bad)), _listed(bad),
                      tuple(f"{pod.prefix}metadata.annotations[{item.split('=')[0]}]" for item in bad),
                      "use runtime/default or localhost/<profile>, or remove the annotation")]


def _selinux(pod: _Pod) -> list[Violation]:
    setters, fields, types = [], [], []
    user = role = False

    def judge(options: Mapping[str, Any], where: str) -> bool:
        nonlocal user, role
        ok = True
        if options.get("type", "") not in ALLOWED_SELINUX_TYPES:
            types.append(str(options.get("type")))
            fields.append(f"{where}.type")
            ok = False
        for key in ("user", "role"):
            if options.get(key):
                fields.append(f"{where}.{key}")
                user, role, ok = user or key == "user", role or key == "role", False
        return ok

    if "seLinuxOptions" in pod.security and not judge(_map(pod.security["seLinuxOptions"]),
                                                      pod.field("securityContext.seLinuxOptions")):
        setters.append("pod")
    bad = [c.name for c in pod.containers() if "seLinuxOptions" in c.security
           and not judge(_map(c.security["seLinuxOptions"]), f"{c.path}.securityContext.seLinuxOptions")]
    if bad:
        setters.append(_named(bad))
    if not setters:
        return []
    data = [f"{_plural('type', 'types', len(set(types)))} {_quoted(sorted(set(types)))}"] if types else []
    data += ["user may not be set"] * user + ["role may not be set"] * role
    return [Violation("seLinuxOptions", f"{' and '.join(setters)} set forbidden securityContext.seLinuxOptions: "
                      f"{'; '.join(data)}", tuple(fields),
                      "remove seLinuxOptions.user and .role; type may only be "
                      f"{', '.join(t for t in ALLOWED_SELINUX_TYPES if t)} or empty")]


def _proc_mount(pod: _Pod) -> list[Violation]:
    names, fields, values = [], [], []
    for container in pod.containers():
        value = container.security.get("procMount")
        if value is not None and value != "Default":
            names.append(container.name)
            fields.append(f"{container.path}.securityContext.procMount")
            values.append(str(value))
    if not names:
        return []
    return [Violation("procMount", f"{_named(names)} must not set securityContext.procMount to "
                      f"{_quoted(sorted(set(values)))}", tuple(fields),
                      "remove securityContext.procMount or set it to Default")]


def _sysctls(pod: _Pod) -> list[Violation]:
    bad = [(i, str(_map(s).get("name"))) for i, s in enumerate(_list(pod.security.get("sysctls")))
           if _map(s).get("name") not in ALLOWED_SYSCTLS]
    if not bad:
        return []
    return [Violation("forbidden sysctls", _listed([name for _, name in bad]),  # (names the API server checked)
                      tuple(pod.field(f"securityContext.sysctls[{i}].name") for i, _ in bad),
                      f"only {', '.join(ALLOWED_SYSCTLS)} may be set")]


def _host_process(pod: _Pod) -> list[Violation]:
    setters, fields = [], []
    if _map(pod.security.get("windowsOptions")).get("hostProcess") is True:
        setters.append("pod")
        fields.append(pod.field("securityContext.windowsOptions.hostProcess"))
    names, more = _per_container(pod, lambda c: "securityContext.windowsOptions.hostProcess"
                                 if _map(c.security.get("windowsOptions")).get("hostProcess") is True else None)
    if names:
        setters.append(_named(names))
    if not setters:
        return []
    return [Violation("hostProcess", f"{' and '.join(setters)} must not set "
                      "securityContext.windowsOptions.hostProcess=true", tuple(fields + more),
                      "remove windowsOptions.hostProcess")]


def _host_probes(pod: _Pod) -> list[Violation]:
    names, fields, hosts = [], [], []
    for container in pod.containers():
        found = False
        handlers = [(p, _map(container.body.get(p))) for p in PROBES]
        handlers += [(f"lifecycle.{h}", _map(_map(container.body.get("lifecycle")).get(h)))
                     for h in ("postStart", "preStop")]
        for where, handler in handlers:
            for action in ("httpGet", "tcpSocket"):
                host = _map(handler.get(action)).get("host")
                if host:
                    found = True
                    fields.append(f"{container.path}.{where}.{action}.host")
                    hosts.append(str(host))
        if found:
            names.append(container.name)
    if not names:
        return []
    return [Violation("probe or lifecycle host", f"{_named(names)} {_plural('uses', 'use', len(names))} "
                      f"{_plural('host', 'hosts', len(set(hosts)))} {_quoted(sorted(set(hosts)))}", tuple(fields),
                      "remove host: probes and hooks reach the pod's own address")]


def _privilege_escalation(pod: _Pod) -> list[Violation]:
    names, fields = _per_container(
        pod, lambda c: None if c.security.get("allowPrivilegeEscalation") is False
        else "securityContext.allowPrivilegeEscalation")
    if not names:
        return []
    return [Violation("allowPrivilegeEscalation != false",
                      f"{_named(names)} must set securityContext.allowPrivilegeEscalation=false", tuple(fields),
                      "set securityContext.allowPrivilegeEscalation: false in every container")]


@dataclass(frozen=True)
class _Setting:
    """A setting the pod makes for all its containers, or each container for itself."""

    setters: list[str]  # "pod" and/or `containers "a", "b"` that set a bad value
    bad_fields: list[str]
    values: list[Any]  # the bad values
    unset: list[str]  # containers that set nothing while the pod sets no good value
    unset_fields: list[str]


def _pod_or_containers(pod: _Pod, key: str, good: Callable[[Any], bool]) -> _Setting:
    setting = _Setting([], [], [], [], [])
    pod_ok = False
    if pod.security.get(key) is not None:
        if good(pod.security[key]):
            pod_ok = True
        else:
            setting.setters.append("pod")
            setting.bad_fields.append(pod.field(f"securityContext.{key}"))
            setting.values.append(pod.security[key])
    explicit = []
    for container in pod.containers():
        value = container.security.get(key)
        if value is not None and not good(value):
            explicit.append(container.name)
            setting.bad_fields.append(f"{container.path}.securityContext.{key}")
            setting.values.append(value)
        elif value is None and not pod_ok:
            setting.unset.append(container.name)
            setting.unset_fields.append(f"{container.path}.securityContext.{key}")
    if explicit:
        setting.setters.append(_named(explicit))
    return setting


def _run_as_non_root(pod: _Pod) -> list[Violation]:
    setting = _pod_or_containers(pod, "runAsNonRoot", lambda value: value is True)
    fix = "set spec.securityContext.runAsNonRoot: true (or in every container)"
    if setting.setters:
        return [Violation("runAsNonRoot != true", f"{' and '.join(setting.setters)} must not set "
                          "securityContext.runAsNonRoot=false", tuple(setting.bad_fields), fix)]
    if setting.unset:
        return [Violation("runAsNonRoot != true", f"pod or {_named(setting.unset)} must set "
                          "securityContext.runAsNonRoot=true",
                          (pod.field("securityContext.runAsNonRoot"), *setting.unset_fields), fix)]
    return []


def _run_as_user(pod: _Pod) -> list[Violation]:
    setters, fields = [], []
    if pod.security.get("runAsUser") == 0:
        setters.append("pod")
        fields.append(pod.field("securityContext.runAsUser"))
    names, more = _per_container(pod, lambda c: "securityContext.runAsUser" if c.security.get("runAsUser") == 0
                                 else None)
    if names:
        setters.append(_named(names))
    if not setters:
        return []
    return [Violation("runAsUser=0", f"{' and '.join(setters)} must not set runAsUser=0", tuple(fields + more),
                      "use a non-zero user id (or leave runAsUser unset and run an image with a non-root USER)")]


def _seccomp(pod: _Pod) -> list[Violation]:
    setting = _pod_or_containers(pod, "seccompProfile", lambda value: _map(value).get("type") in ALLOWED_SECCOMP)
    fix = "set spec.securityContext.seccompProfile.type: RuntimeDefault"
    found = []
    if setting.setters:
        bad = sorted({str(_map(v).get("type")) for v in setting.values})
        found.append(Violation("seccompProfile", f"{' and '.join(setting.setters)} must not set "
                               f"securityContext.seccompProfile.type to {_quoted(bad)}",
                               tuple(f + ".type" for f in setting.bad_fields), fix))
    elif setting.unset:
        found.append(Violation("seccompProfile", f"pod or {_named(setting.unset)} must set securityContext."
                               'seccompProfile.type to "RuntimeDefault" or "Localhost"',
                               tuple(f + ".type" for f in (pod.field("securityContext.seccompProfile"),
                                                           *setting.unset_fields)), fix))
    # The annotations that predate the field (still read by 1.20's kubelet when the field is unset).
    bad_annotations = sorted(f"{key}={quoted(str(value))}" for key, value in _map(pod.meta.get("annotations")).items()
                             if (key == SECCOMP_POD_ANNOTATION or key.startswith(SECCOMP_CONTAINER_PREFIX))
                             and value not in ("runtime/default", "docker/default")
                             and not str(value).startswith("localhost/"))
    if bad_annotations:
        found.append(Violation("seccompProfile", f"forbidden seccomp annotations {_listed(bad_annotations)}",
                               tuple(f"{pod.prefix}metadata.annotations[{item.split('=')[0]}]"
                                     for item in bad_annotations),
                               "remove the annotation and " + fix))
    return found


def _capabilities(pod: _Pod) -> list[Violation]:
    missing, adding, forbidden, fields = [], [], set(), []
    for container in pod.containers():
        caps = _map(container.security.get("capabilities"))
        if "ALL" not in _list(caps.get("drop")):
            missing.append(container.name)
            fields.append(f"{container.path}.securityContext.capabilities.drop")
        added = [str(cap) for cap in _list(caps.get("add")) if cap != ALLOWED_CAPABILITY]
        if added:
            adding.append(container.name)
            forbidden.update(added)
            fields.append(f"{container.path}.securityContext.capabilities.add")
    details = []
    if missing:
        details.append(f'{_named(missing)} must set securityContext.capabilities.drop=["ALL"]')
    if adding:
        details.append(f"{_named(adding)} must not include {_quoted(sorted(forbidden))} in "
                       "securityContext.capabilities.add")
    if not details:
        return []
    return [Violation("unrestricted capabilities", "; ".join(details), tuple(fields),
                      "set securityContext.capabilities.drop: [ALL] in every container; add only "
                      + ALLOWED_CAPABILITY)]


# Baseline checks first, then the restricted ones, as upstream reports them.
CHECKS: tuple[Check, ...] = (_host_namespaces, _privileged, _host_path, _host_ports, _apparmor, _selinux, _proc_mount,
                             _sysctls, _host_process, _host_probes, _volume_types, _privilege_escalation,
                             _run_as_non_root, _run_as_user, _seccomp, _capabilities)


def check_pod(metadata: Mapping[str, Any] | None, spec: Mapping[str, Any] | None, prefix: str = "") -> list[Violation]:
    """Every way a pod (or pod template, with its field prefix) breaks the restricted profile."""
    pod = _Pod(_map(metadata), _map(spec), prefix)
    return [violation for check in CHECKS for violation in check(pod)]


def pod_template(kind: str, obj: Mapping[str, Any]) -> tuple[Mapping[str, Any], Mapping[str, Any], str] | None:
    """(metadata, spec, field prefix) of the pod a kind runs, or None for kinds that run none."""
    if kind not in TEMPLATES:
        return None
    path = TEMPLATES[kind]
    template: Mapping[str, Any] = obj
    for key in path:
        template = _map(template.get(key))
    prefix = "".join(f"{key}." for key in path)
    return _map(template.get("metadata")), _map(template.get("spec")), prefix


def check_object(kind: str, obj: Mapping[str, Any]) -> list[Violation]:
    """The violations of a Pod or of the pod template of a workload kind ([] for other kinds)."""
    found = pod_template(kind, obj)
    if found is None:
        return []
    metadata, spec, prefix = found
    if kind == "ReplicationController" and not spec:
        return []  # a ReplicationController may have no template: it runs no pods then
    return check_pod(metadata, spec, prefix)


def template_changed(kind: str, old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> bool:
    """Whether an update changes what the pod runs (metadata-only updates, scaling and deletion pass)."""
    if old is None:
        return True
    before, after = pod_template(kind, old), pod_template(kind, new)
    if before is None or after is None:
        return before != after
    annotations = lambda meta: {k: v for k, v in _map(meta.get("annotations")).items()  # noqa: E731
                                if k.startswith((APPARMOR_PREFIX, SECCOMP_POD_ANNOTATION, SECCOMP_CONTAINER_PREFIX))}
    return before[1] != after[1] or annotations(before[0]) != annotations(after[0])


def refusal(kind: str, name: str, violations: list[Violation]) -> str:
    """What kubectl shows: `<kind> "<name>" violates PodSecurity "restricted:latest": ...`."""
    return f'{kind} "{name}" violates {POLICY}: ' + "; ".join(map(str, violations))


def summary(violations: list[Violation]) -> str:
    """Upstream's short form: `privileged (container "x" must not ...), host namespaces (hostPID=true)`."""
    return ", ".join(f"{v.check} ({v.detail})" for v in violations)


def is_tenant_namespace(labels: Mapping[str, str] | None) -> bool:
    """A namespace whose pods must meet the restricted profile (tenantry's tenant namespaces)."""
    labels = labels or {}
    return all(labels.get(key) == value for key, value in TENANT_NAMESPACE_LABELS.items())
