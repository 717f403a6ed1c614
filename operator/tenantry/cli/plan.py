"""`tenantry plan`: what applying the files would change in the cluster, before anything is applied.

Each Tenant, Branding and FeatureSet is sent as a server-side dry-run apply (the API server runs
its validation and defaulting, nothing is stored) and compared with what the cluster holds:
created, changed (with a field diff) or unchanged. For each Tenant it also shows what the
operator will derive: namespace, quota, DNS name, domains to verify, enabled features.
Exit codes: 0 nothing changes, 3 something changes, 1 invalid files or a refusal, 2 usage.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from lightkube.core.exceptions import ApiError

from tenantry.adapters.kube import Branding, FeatureSet, Tenant
from tenantry.api.tenant import TenantSpec
from tenantry.cli.validate import Validator, files_under
from tenantry.cli.views import client_for
from tenantry.domain.children import quota_hard
from tenantry.domain.config import OperatorConfig
from tenantry.domain.features import Plan, effective_features, resolve_plan

RESOURCES = {"Tenant": Tenant, "Branding": Branding, "FeatureSet": FeatureSet}
NO_CHANGES, CHANGES, FAILED, USAGE = 0, 3, 1, 2


def diff(old: Any, new: Any, path: str = "") -> list[str]:
    """Field-by-field differences, as `path: old -> new` lines."""
    if isinstance(old, dict) and isinstance(new, dict):
        lines: list[str] = []
        for key in sorted(set(old) | set(new)):
            lines += diff(old.get(key), new.get(key), f"{path}.{key}" if path else key)
        return lines
    return [] if old == new else [f"{path}: {old!r} -> {new!r}"]


def _derived(spec: dict[str, Any], slug: str, namespace: str, plans, config: OperatorConfig) -> list[str]:
    tenant = TenantSpec.model_validate(spec)
    lines = [f"namespace {config.namespace_prefix}{slug}", f"DNS name {slug}.{config.platform_domain}"]
    plan = resolve_plan(tenant.plan.feature_set, plans, namespace, config.platform_namespace)
    if isinstance(plan, Plan):
        hard = quota_hard(plan.resources or config.default_resources, tenant.plan.seats, tenant.state == "Active",
                          config)  # the quota the operator would set: clamped to the platform's ceiling
        lines.append("quota " + ", ".join(f"{k}={v}" for k, v in hard.items()
                                          if not k.startswith(("services", "count/"))))
        on = [k for k, f in effective_features(plan, tenant).items() if f.enabled]
        lines.append("features on: " + (", ".join(on) or "none"))
    else:
        lines.append(f"plan not resolved: {plan.message}")
    lines += [f"domain to verify: {d} (CNAME to {slug}.{config.platform_domain} + TXT challenge)"
              for d in tenant.domains]
    return lines


def run(args: argparse.Namespace) -> int:
    missing = [p for p in args.paths if not p.exists()]
    if missing:
        print(f"tenantry plan: no such file or folder: {', '.join(map(str, missing))}", file=sys.stderr)
        return USAGE
    checker = Validator(args.platform_namespace)
    findings = checker.run(files_under(args.paths))
    if findings:
        for f in findings:
            print(f"{f.file}:{f.line}: {f.field}: {f.message}", file=sys.stderr)
        print("tenantry plan: the files are invalid; nothing was sent to the cluster", file=sys.stderr)
        return FAILED
    config = OperatorConfig(platform_namespace=args.platform_namespace, platform_domain=args.platform_domain)
    plans = checker.lookup("FeatureSet")
    changes = 0
    with client_for(args.kubeconfig) as client:
        for obj in checker.objects:
            resource = RESOURCES[obj.kind]
            body = obj.document.data
            label = f"{obj.kind} {obj.namespace}/{obj.name}"
            try:
                current = client.get(resource, obj.name, namespace=obj.namespace).to_dict()
            except ApiError as error:
                if error.status.code != 404:
                    print(f"! {label}: {error.status.message}")
                    return FAILED
                current = None
            try:
                planned = client.apply(resource.from_dict(body), namespace=obj.namespace, dry_run=True,
                                       field_manager="tenantry-plan", force=True).to_dict()
            except ApiError as error:
                print(f"! {label}: the API server refuses it: {error.status.message}")
                return FAILED
            if current is None:
                changes += 1
                print(f"+ {label} (created)")
            else:
                fields = diff({"spec": current.get("spec"), "labels": current["metadata"].get("labels")},
                              {"spec": planned.get("spec"), "labels": planned["metadata"].get("labels")})
                print(f"~ {label} (changed)" if fields else f"= {label} (unchanged)")
                changes += bool(fields)
                for line in fields:
                    print(f"    {line}")
            if obj.kind == "Tenant" and args.derived:
                for line in _derived(body.get("spec") or {}, obj.name, obj.namespace, plans, config):
                    print(f"    -> {line}")
    print(f"{changes} object(s) would change" if changes else "no changes", file=sys.stderr)
    return CHANGES if changes else NO_CHANGES


def add_parser(commands: argparse._SubParsersAction) -> None:
    plan = commands.add_parser("plan", help="server-side dry run: what applying the files would change "
                                            "(exit 0 none, 3 changes, 1 invalid, 2 usage)")
    plan.add_argument("paths", nargs="+", type=Path, help="files or folders of the tenants repository")
    plan.add_argument("--kubeconfig", type=Path)
    plan.add_argument("--platform-namespace", default="tenantry-system")
    plan.add_argument("--platform-domain", default="platform.example")
    plan.add_argument("--no-derived", dest="derived", action="store_false",
                      help="do not list what the operator derives for each tenant")
    plan.set_defaults(run=run)
