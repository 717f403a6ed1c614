"""The Helm chart on the local control plane: render it with the real Helm engine, apply parts of
it, and give one of its ServiceAccounts a kubeconfig of its own (a real token, no impersonation).

Used by the integration tests (the operator runs as the chart's ServiceAccount, partners as
theirs) and by `make demo`.
"""

from __future__ import annotations

import argparse
import copy
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

CHART = Path(__file__).resolve().parents[3] / "charts" / "tenantry"
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


def render(values: dict[str, Any] | None = None, name: str = "tenantry",
           namespace: str = "tenantry-system") -> list[dict[str, Any]]:
    """The chart's objects for these values (merged over values.yaml), in Helm's install order.

    CRDs excluded (see `crds`). Raises helm.HelmError when values.schema.json refuses the values.
    """
    import helm_python as helm  # the Helm engine is a test/dev dependency, not one of the operator

    chart = helm.Chart.load(str(CHART))
    try:
        out = chart.render(copy.deepcopy(values or {}), name=name, namespace=namespace)
    finally:
        chart.close()
    objects = [doc for _, text in sorted(out.items()) for doc in yaml.safe_load_all(text) if doc]
    return sorted(objects, key=_order)


def crds() -> list[dict[str, Any]]:
    """The CustomResourceDefinitions Helm installs from the chart's crds/ folder before the templates."""
    return [yaml.safe_load(path.read_text()) for path in sorted((CHART / "crds").glob("*.yaml"))]


def kubectl(kubeconfig: Path, *args: str, input: str | None = None) -> str:
    result = subprocess.run(["kubectl", "--kubeconfig", str(kubeconfig), *args], input=input,
                            capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


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
    """The chart's RBAC and the partners' namespaces, accounts and bindings, rendered and applied."""
    objects = render({"partners": [{"id": partner} for partner in partners]}, namespace=namespace)
    apply(kubeconfig, [o for o in objects if o["kind"] in RBAC_KINDS | {"Namespace"}])


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
