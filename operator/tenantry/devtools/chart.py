"""The Helm charts on the local control plane: render them with the real Helm engine, apply parts
of them, and give one of their ServiceAccounts a kubeconfig of its own (a real token, no
impersonation).

Used by the integration tests (the operator runs as the chart's ServiceAccount, partners as
theirs, made by the tenantry-partners chart) and by `make demo`.
"""

from __future__ import annotations

import argparse
import copy
import json
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

CHARTS = Path(__file__).resolve().parents[3] / "charts"
CHART = CHARTS / "tenantry"
PARTNERS_CHART = CHARTS / "tenantry-partners"
# The chart requires operator.platformDomain; what render() passes when the values name none.
DEMO_DOMAIN = "platform.example"
RBAC_KINDS = frozenset({"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"})
# Helm's install order (InstallOrder in its kind sorter); other kinds come last.
INSTALL_ORDER = (
    "PriorityClass", "Namespace", "NetworkPolicy", "ResourceQuota", "LimitRange", "PodSecurityPolicy",
    "PodDisruptionBudget", "ServiceAccount", "Secret", "SecretList", "ConfigMap", "StorageClass",
    "PersistentVolume", "PersistentVolumeClaim", "CustomResourceDefinition", "ClusterRole", "ClusterRoleList",
    "ClusterRoleBinding", "ClusterRoleBindingList", "Role", "RoleList", "RoleBinding", "RoleBindingList",
    "Service", "DaemonSet", "Pod", "ReplicationController", "ReplicaSet", "Deployment", "HorizontalPodAutoscaler",
    "StatefulSet", "Job", "CronJob", "IngressClass", "Ingress", "APIService", "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
)


def _order(obj: dict[str, Any]) -> int:
    kind = obj.get("kind", "")
    return INSTALL_ORDER.index(kind) if kind in INSTALL_ORDER else len(INSTALL_ORDER)


def manifests(values: dict[str, Any] | None = None, name: str = "tenantry", namespace: str = "tenantry-system", *,
              platform_domain: str | None = DEMO_DOMAIN, kube_version: str | None = None,
              chart: Path = CHART) -> dict[str, str]:
    """Helm's output for these values (merged over values.yaml): template path -> text, NOTES.txt included.

    platform_domain: operator.platformDomain when the values have none (the tenantry chart requires
    one; None passes none). kube_version: the Kubernetes version Helm assumes (.Capabilities),
    e.g. "v1.20.2"; None: Helm's default for offline rendering (a current release).
    Raises helm.HelmError when values.schema.json refuses the values or a template fails.
    """
    import helm_python as helm  # the Helm engine is a test/dev dependency, not one of the operator

    values = copy.deepcopy(values or {})
    if chart == CHART and platform_domain and "platformDomain" not in values.get("operator", {}):
        values.setdefault("operator", {})["platformDomain"] = platform_domain
    loaded = helm.Chart.load(str(chart))
    try:
        if kube_version is None:
            return loaded.render(values, name=name, namespace=namespace)
        # helm-python's Chart.render does not pass the kube version its library accepts.
        from helm_python import _native
        options = {"name": name, "namespace": namespace, "kube_version": kube_version}
        return json.loads(_native.call_string("helm_render", loaded._raw(), json.dumps(values), json.dumps(options)))
    finally:
        loaded.close()


def _objects(texts: dict[str, str]) -> list[dict[str, Any]]:
    objects = [doc for path, text in sorted(texts.items()) if path.endswith((".yaml", ".yml"))
               for doc in yaml.safe_load_all(text) if doc]
    return sorted(objects, key=_order)


def _is_hook(obj: dict[str, Any]) -> bool:
    return "helm.sh/hook" in (obj["metadata"].get("annotations") or {})


def render(values: dict[str, Any] | None = None, name: str = "tenantry", namespace: str = "tenantry-system",
           **options: Any) -> list[dict[str, Any]]:
    """The objects `helm install` creates for these values, in Helm's install order: CRDs excluded
    (see `crds`), and the `helm test` hooks (see `hooks`). Options as `manifests`."""
    return [o for o in _objects(manifests(values, name, namespace, **options))
            if o["kind"] != "CustomResourceDefinition" and not _is_hook(o)]


def crds(values: dict[str, Any] | None = None, name: str = "tenantry", namespace: str = "tenantry-system",
         **options: Any) -> list[dict[str, Any]]:
    """The CustomResourceDefinitions the chart installs and upgrades (templates/crds/, crds.install)."""
    return [o for o in _objects(manifests(values, name, namespace, **options))
            if o["kind"] == "CustomResourceDefinition"]


def hooks(values: dict[str, Any] | None = None, name: str = "tenantry", namespace: str = "tenantry-system",
          **options: Any) -> list[dict[str, Any]]:
    """The chart's hooks: the `helm test` pod (tests.enabled)."""
    return [o for o in _objects(manifests(values, name, namespace, **options)) if _is_hook(o)]


def notes(values: dict[str, Any] | None = None, name: str = "tenantry", namespace: str = "tenantry-system",
          **options: Any) -> str:
    """What `helm install` prints after installing (templates/NOTES.txt)."""
    texts = manifests(values, name, namespace, **options)
    return next((text for path, text in texts.items() if path.endswith("/NOTES.txt")), "")


def render_partners(partners: list[dict[str, Any]], name: str = "partners", namespace: str = "tenantry-system",
                    **values: Any) -> list[dict[str, Any]]:
    """The objects of a tenantry-partners release with these partners (and other values)."""
    return render({"partners": partners, **values}, name, namespace, chart=PARTNERS_CHART)


def kubectl(kubeconfig: Path, *args: str, input: str | None = None) -> str:
    result = subprocess.run(["kubectl", "--kubeconfig", str(kubeconfig), *args], input=input,
                            capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


def server_version(kubeconfig: Path) -> str:
    """The cluster's Kubernetes version (e.g. v1.20.2), for rendering as `helm install` would there."""
    return json.loads(kubectl(kubeconfig, "version", "-o", "json"))["serverVersion"]["gitVersion"]


def apply(kubeconfig: Path, objects: Iterable[dict[str, Any]]) -> None:
    """Server-side apply, as `helm install` would create them."""
    text = yaml.safe_dump_all(list(objects))
    kubectl(kubeconfig, "apply", "--server-side", "--force-conflicts", "--field-manager=helm", "-f", "-",
            input=text)


def service_account_kubeconfig(admin_kubeconfig: Path, namespace: str, name: str, out: Path,
                               hours: int = 24) -> Path:
    """A kubeconfig that authenticates as the ServiceAccount with a TokenRequest token."""
    token = kubectl(admin_kubeconfig, "create", "token", name, "-n", namespace, f"--duration={hours}h").strip()
    admin = yaml.safe_load(admin_kubeconfig.read_text())
    cluster = admin["clusters"][0]
    config = {"apiVersion": "v1", "kind": "Config", "clusters": [cluster],
              "users": [{"name": name, "user": {"token": token}}],
              "contexts": [{"name": name, "context": {"cluster": cluster["name"], "user": name}}],
              "current-context": name}
    out.write_text(yaml.safe_dump(config))
    out.chmod(0o600)
    return out


def install_identities(kubeconfig: Path, partners: list[str], out: Path,
                       namespace: str = "tenantry-system") -> Path:
    """The chart's RBAC and partner namespaces on a cluster, and a kubeconfig for the operator's account."""
    apply_partners(kubeconfig, partners, namespace)
    return service_account_kubeconfig(kubeconfig, namespace, "tenantry", out)


def apply_partners(kubeconfig: Path, partners: list[str], namespace: str = "tenantry-system") -> None:
    """The chart's RBAC, and the partners' namespaces, accounts and bindings as a release of the
    tenantry-partners chart would make them, rendered and applied."""
    rbac = [o for o in render(namespace=namespace) if o["kind"] in RBAC_KINDS]
    partner_objects = render_partners([{"id": partner} for partner in partners], namespace=namespace)
    apply(kubeconfig, sorted(rbac + partner_objects, key=_order))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tenantry.devtools.chart",
        description="Apply the chart's RBAC and partners; write the operator's kubeconfig.")
    parser.add_argument("--kubeconfig", type=Path, required=True, help="an admin kubeconfig")
    parser.add_argument("--partners", default="", help="comma-separated partner ids")
    parser.add_argument("--out", type=Path, required=True, help="where to write the operator's kubeconfig")
    args = parser.parse_args(argv)
    partners = [p.strip() for p in args.partners.split(",") if p.strip()]
    print(install_identities(args.kubeconfig, partners, args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
