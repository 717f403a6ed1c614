"""`tenantry plan`: what applying the files would change in the cluster, before anything is applied.

Each Tenant, Branding, FeatureSet and Deal is sent as a server-side dry-run apply (the API server runs
its validation and defaulting, nothing is stored) and compared with what the cluster holds:
created, changed (with a field diff) or unchanged. For each Tenant it also shows what the
operator will derive: namespace, quota, DNS name, domains to verify, enabled features.
Exit codes: 0 nothing changes, 3 something changes, 1 invalid files or a refusal, 2 usage.

A plan runs in CI on files a pull-request author wrote and prints into a log that author reads,
so it shows only what the credentials' owner may see, and only for one partner:
- before anything is read, the credentials are checked with SelfSubjectAccessReviews: if they may
  read Tenants, Brandings, FeatureSets or Secrets in every namespace (a platform or admin
  kubeconfig), or the Tenants of more than one partner namespace (or of one outside --namespace),
  the plan refuses to run unless --allow-platform-credentials is given;
- objects outside --namespace are not sent or read at all, and an object the credentials may not
  read is reported as not planned, with why, and nothing of it is shown;
- only Tenants, Brandings, FeatureSets and Deals are ever read: never Secrets.
"""

from __future__ import annotations

import argparse
import datetime
import sys
from pathlib import Path
from typing import Any

from lightkube import Client, operators
from lightkube.core.exceptions import ApiError
from lightkube.models.authorization_v1 import ResourceAttributes, SelfSubjectAccessReviewSpec
from lightkube.resources.authorization_v1 import SelfSubjectAccessReview
from lightkube.resources.core_v1 import Namespace

from tenantry.adapters.kube import Branding, Deal, FeatureSet, Tenant
from tenantry.api.tenant import TenantSpec
from tenantry.cli import options
from tenantry.cli.terminal import shown
from tenantry.cli.validate import Validator, files_under
from tenantry.cli.views import add_cluster_options, client_for
from tenantry.domain import lifecycle
from tenantry.domain.children import quota_hard
from tenantry.domain.config import OperatorConfig
from tenantry.domain.features import Plan, effective_features, resolve_plan
from tenantry.domain.lifecycle import field_path
from tenantry.domain.naming import PARTNER_LABEL

RESOURCES = {"Tenant": Tenant, "Branding": Branding, "FeatureSet": FeatureSet, "Deal": Deal}  # never Secrets
NO_CHANGES, CHANGES, FAILED, USAGE = 0, 3, 1, 2
# (API group, resource): reading any of these in every namespace is a platform's credential.
CLUSTER_WIDE = (("tenantry.dev", "tenants"), ("tenantry.dev", "brandings"), ("tenantry.dev", "featuresets"),
                ("tenantry.dev", "deals"), ("", "secrets"))
ALLOW_HINT = ("plan with the partner's own credentials (its GitOps ServiceAccount), or pass "
              "--allow-platform-credentials where nobody but the platform team reads the output")


def may(client: Client, verb: str, group: str, resource: str, namespace: str) -> bool:
    """A SelfSubjectAccessReview: may these credentials do this? (namespace "": in every namespace)"""
    review = SelfSubjectAccessReview(spec=SelfSubjectAccessReviewSpec(resourceAttributes=ResourceAttributes(
        verb=verb, group=group, resource=resource, namespace=namespace)))
    return bool(client.create(review).status.allowed)


def partner_namespaces(client: Client, known: set[str]) -> set[str]:
    """The partner namespaces the files name, plus those the cluster lists, if these credentials may list them."""
    try:
        listed = client.list(Namespace, labels={PARTNER_LABEL: operators.exists()})
        return known | {ns.metadata.name for ns in listed}
    except ApiError:
        return known  # a partner's own credentials may not list namespaces: that is expected


def reach(client: Client, namespaces: set[str], scope: set[str] | None) -> tuple[list[str], set[str]]:
    """Why these credentials read more than one partner's objects (empty: they do not), and which of
    the partner namespaces they may read Tenants in.

    scope: the --namespace values (None: not given, then at most one partner namespace may be readable).
    """
    reasons = [f"they may list {resource} in every namespace"
               for group, resource in CLUSTER_WIDE if may(client, "list", group, resource, "")]
    readable = {ns for ns in sorted(namespaces) if may(client, "get", "tenantry.dev", "tenants", ns)}
    beyond = readable - scope if scope is not None else (readable if len(readable) > 1 else set())
    if beyond:
        reasons.append(f"they may read the Tenants of {', '.join(sorted(beyond))}"
                       + (", outside --namespace" if scope is not None else " (more than one partner)"))
    return reasons, readable


def diff(old: Any, new: Any, location: tuple = ()) -> list[str]:
    """Field-by-field differences, as `path: old -> new` lines; odd keys are quoted as validate
    quotes them (a key stored while the webhook was down may hold a newline, and this goes to CI logs)."""
    if isinstance(old, dict) and isinstance(new, dict):
        lines: list[str] = []
        for key in sorted(set(old) | set(new), key=str):
            lines += diff(old.get(key), new.get(key), (*location, key))
        return lines
    path = field_path(str(location[0]), location[1:]) if location else "(document)"
    return [] if old == new else [f"{path}: {old!r} -> {new!r}"]


def _derived(spec: dict[str, Any], slug: str, namespace: str, plans, config: OperatorConfig,
             trial_clock: str | None = None) -> list[str]:
    """What the operator derives for the Tenant; `trial_clock`: the stored Tenant's (a new one's
    starts now)."""
    tenant = TenantSpec.model_validate(spec)
    domain = config.platform_domain or "<platform domain>"  # --platform-domain not given
    lines = [f"namespace {config.namespace_prefix}{slug}", f"DNS name {slug}.{domain}"]
    plan = resolve_plan(tenant.plan.feature_set, plans, namespace, config.platform_namespace)
    if isinstance(plan, Plan):
        # The quota the operator would set now (a running trial is served as Active; one that has
        # ended as Suspended), clamped to the platform's ceiling.
        serving = lifecycle.effective_state(spec, datetime.datetime.now(datetime.UTC), trial_clock) in (
            "Active", "Trial")
        hard = quota_hard(plan.resources or config.default_resources, tenant.plan.seats, serving, config)
        lines.append("quota " + ", ".join(f"{k}={v}" for k, v in hard.items()
                                          if not k.startswith(("services", "count/"))))
        on = [k for k, f in effective_features(plan, tenant).items() if f.enabled]
        lines.append("features on: " + (", ".join(on) or "none"))
    else:
        lines.append(f"plan not resolved: {plan.message}")
    lines += [f"domain to verify: {d} (CNAME to {slug}.{domain} + TXT challenge)"
              for d in tenant.domains]
    return lines


def _plan_one(client: Client, obj, args: argparse.Namespace, plans, config: OperatorConfig) -> int:
    """Print one object's plan; CHANGES, NO_CHANGES, or FAILED when it was refused or not planned."""
    resource = RESOURCES[obj.kind]
    body = obj.document.data
    label = f"{obj.kind} {obj.namespace}/{obj.name}"
    try:
        current = client.get(resource, obj.name, namespace=obj.namespace).to_dict()
    except ApiError as error:
        if error.status.code == 403:
            print(f"! {label}: not planned: these credentials may not read namespace {obj.namespace} "
                  "(another partner's?), so nothing of it is shown")
            return FAILED
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
    outcome = CHANGES
    if current is None:
        print(f"+ {label} (created)")
    else:
        fields = diff({"spec": current.get("spec"), "labels": current["metadata"].get("labels")},
                      {"spec": planned.get("spec"), "labels": planned["metadata"].get("labels")})
        print(f"~ {label} (changed)" if fields else f"= {label} (unchanged)")
        outcome = CHANGES if fields else NO_CHANGES
        for line in fields:
            print(f"    {line}")
    if obj.kind == "Tenant" and args.derived:
        clock = lifecycle.trial_clock_of(current) if current is not None else None
        for line in _derived(body.get("spec") or {}, obj.name, obj.namespace, plans, config, clock):
            print(f"    -> {line}")
    return outcome


def run(args: argparse.Namespace) -> int:
    missing = [p for p in args.paths if not p.exists()]
    if missing:
        print(f"tenantry plan: no such file or folder: {', '.join(map(str, missing))}", file=sys.stderr)
        return USAGE
    checker = Validator(args.platform_namespace, args.platform_domain)
    findings = checker.run(files_under(args.paths, args.repo))
    if findings:
        for f in findings:
            print(shown(f"{f.file}:{f.line}: {f.field}: {f.message}"), file=sys.stderr)
        print("tenantry plan: the files are invalid; nothing was sent to the cluster", file=sys.stderr)
        return FAILED
    config = OperatorConfig(platform_namespace=args.platform_namespace, platform_domain=args.platform_domain)
    plans = checker.lookup("FeatureSet")
    scope = set(args.namespace) if args.namespace else None
    changes = refused = 0
    with client_for(args.kubeconfig, args.context) as client:
        try:
            known = set(checker.partner_namespaces.values()) | {o.namespace for o in checker.objects}
            reasons, readable = reach(client, partner_namespaces(client, known) - {args.platform_namespace}, scope)
        except ApiError as error:
            print(f"tenantry plan: cannot check what these credentials may read, so nothing is planned: "
                  f"{error.status.message}", file=sys.stderr)
            return FAILED
        if reasons and not args.allow_platform_credentials:
            print(f"tenantry plan: refused: these credentials read beyond one partner ({'; '.join(reasons)}), "
                  f"and a plan prints what it reads into a log the pull request's author sees: {ALLOW_HINT}",
                  file=sys.stderr)
            return FAILED
        if scope is None and not reasons:
            scope = readable  # the one partner namespace these credentials read (or none)
        for obj in checker.objects:
            if scope is not None and obj.namespace not in scope:
                print(f"- {obj.kind} {obj.namespace}/{obj.name}: not planned: namespace {obj.namespace} is outside "
                      f"this plan ({', '.join(sorted(scope)) or 'no partner namespace these credentials read'}); "
                      "nothing of it is read or shown")
                continue
            outcome = _plan_one(client, obj, args, plans, config)
            changes += outcome == CHANGES
            refused += outcome == FAILED
    if refused:
        print(f"tenantry plan: {refused} object(s) not planned (see the lines starting with !)", file=sys.stderr)
        return FAILED
    print(f"{changes} object(s) would change" if changes else "no changes", file=sys.stderr)
    return CHANGES if changes else NO_CHANGES


def add_parser(commands: argparse._SubParsersAction) -> None:
    plan = commands.add_parser("plan", help="server-side dry run: what applying the files would change "
                                            "(exit 0 none, 3 changes, 1 invalid, 2 usage)")
    plan.add_argument("paths", nargs="+", type=Path, help="files or folders of the tenants repository")
    add_cluster_options(plan)
    plan.add_argument("-n", "--namespace", action="append",
                      help="plan only objects in this namespace (repeatable); the credentials must not read "
                           "the Tenants of any other partner namespace")
    plan.add_argument("--allow-platform-credentials", action="store_true",
                      help="run even with credentials that read every namespace or several partners' "
                           "(only where nobody but the platform team reads the output)")
    plan.add_argument("--repo", type=Path, help="the repository's root folder (default: a folder argument "
                                                 "holding tenants/, partners/ or platform/, else the current folder)")
    options.add_platform_options(plan, "for the tenant URLs and records shown (not shown without it), and checked "
                                     "as in validate")
    plan.add_argument("--no-derived", dest="derived", action="store_false",
                      help="do not list what the operator derives for each tenant")
    plan.set_defaults(run=run)
