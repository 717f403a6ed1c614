"""`tenantry report` and `tenantry status`: what the cluster says about a partner's customers.

Read-only; uses the caller's kubeconfig (or --kubeconfig), so RBAC decides which partners one sees.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import io
import json
import sys
from pathlib import Path
from typing import Any

import jinja2
import yaml
from lightkube import Client, operators
from lightkube.core.exceptions import ApiError
from lightkube.resources.core_v1 import Namespace

from tenantry.adapters.kube import Tenant
from tenantry.cli import kubeconfig as kubeconfig_rules
from tenantry.cli.terminal import markdown_cell, shown
from tenantry.domain.lifecycle import effective_state, trial_clock_of
from tenantry.domain.naming import PARTNER_LABEL, TENANT_LABEL
from tenantry.domain.spreadsheet import cell

COLUMNS = ("partner", "tenant", "company", "state", "plan", "users", "seats", "mrr", "commission", "currency",
           "ready", "domains_pending", "signals")


def client_for(kubeconfig: Path | None, context: str | None = None) -> Client:
    """A client by kubectl's rules (cli/kubeconfig): --kubeconfig, KUBECONFIG, ~/.kube/config, in-cluster."""
    return Client(config=kubeconfig_rules.load(kubeconfig, context), field_manager="tenantry-cli")


def add_cluster_options(command: argparse.ArgumentParser) -> None:
    """kubectl's --kubeconfig and --context."""
    command.add_argument("--kubeconfig", type=Path, help="the kubeconfig file (default: KUBECONFIG, a list "
                         "separated by ':', else ~/.kube/config, else the pod's ServiceAccount)")
    command.add_argument("--context", help="the kubeconfig context to use (default: its current context)")


def add_output_option(command: argparse.ArgumentParser, choices: list[str], default: str) -> None:
    """kubectl's -o/--output; --format is kept as another name for it."""
    command.add_argument("-o", "--output", "--format", dest="format", choices=choices, default=default,
                         help=f"output format: {', '.join(choices)} (default {default})")


def _condition(body: dict[str, Any], kind: str) -> dict[str, Any]:
    return next((c for c in (body.get("status") or {}).get("conditions", []) if c.get("type") == kind), {})


def state_of(body: dict[str, Any], now: datetime.datetime | None = None) -> str:
    """The state in effect (an ended trial is Suspended, whatever git says), as the operator and
    the metrics count it (lifecycle.effective_state), at `now` (default: this moment)."""
    return effective_state(body.get("spec") or {}, now or datetime.datetime.now(datetime.UTC), trial_clock_of(body))


def signals(body: dict[str, Any], now: datetime.datetime | None = None) -> list[str]:
    """Where a partner should act: upsell, churn risk, or something broken."""
    spec, status = body.get("spec") or {}, body.get("status") or {}
    seats = (spec.get("plan") or {}).get("seats") or 0
    active = (status.get("usage") or {}).get("activeUsers")
    out = []
    if active is not None and seats and active / seats > 0.9:
        out.append(f"upsell: {active}/{seats} seats in use")
    if active == 0 and state_of(body, now) == "Active":
        out.append("churn risk: no active users")
    ready = _condition(body, "Ready")
    if ready and ready.get("status") != "True":
        out.append(f"not ready: {ready.get('reason')}")
    return out


def row(body: dict[str, Any], commission_rate: float | None = None, now: datetime.datetime | None = None
        ) -> dict[str, Any]:
    """One customer, in the state in effect at `now` (default: this moment). The commission uses
    `commission_rate` when given (a what-if), else the rate the operator counts for this tenant's
    partner (status.commissionRate), else the platform default."""
    spec, status = body.get("spec") or {}, body.get("status") or {}
    plan = spec.get("plan") or {}
    price = plan.get("price") or {}
    mrr = float(price.get("monthly", 0.0))
    state = state_of(body, now)
    # Billed as the operator bills (its metrics, the portal): Active, and holding its namespace. A
    # Tenant refused (over the partner's cap, a slug another holds) bills nothing.
    active = state == "Active" and bool(status.get("namespace"))
    # None: no rate recorded yet (a tenant not reconciled since an upgrade): unknown, not a guess.
    rate = commission_rate if commission_rate is not None else status.get("commissionRate")
    return {
        "partner": status.get("partner") or body["metadata"]["namespace"],
        "tenant": body["metadata"]["name"],
        "company": spec.get("company", ""),
        "state": state,
        "plan": plan.get("featureSet", ""),
        "users": (status.get("usage") or {}).get("activeUsers", 0),
        "seats": plan.get("seats", 0),
        "mrr": mrr if active else 0.0,
        "commission": (round(mrr * rate, 2) if rate is not None else None) if active else 0.0,
        # The currency fixed at provisioning (what the metrics use), else the one the spec asks for.
        "currency": status.get("currency") or price.get("currency", "EUR"),
        "ready": _condition(body, "Ready").get("status", "Unknown"),
        "domains_pending": sum(1 for d in status.get("domains", []) if not d.get("verified")),
        "signals": "; ".join(signals(body, now)),
    }


def _forbidden(error: ApiError) -> bool:
    return error.status.code == 403


class ScopeProblem(Exception):
    """No namespace these credentials may read Tenants in: the message says what to pass instead."""


def _readable(client: Client, namespace: str, fields: dict[str, str] | None) -> list[dict[str, Any]] | None:
    """The Tenants of a namespace, or None when the credentials may not list them there."""
    try:
        return [t.to_dict() for t in client.list(Tenant, namespace=namespace, fields=fields)]
    except ApiError as error:
        if not _forbidden(error):
            raise
        return None


def _namespace_labels(client: Client, namespace: str) -> dict[str, str] | None:
    """The namespace's labels, or None when these credentials may not read it (a partner's own
    token usually may not). A namespace that does not exist has no labels."""
    try:
        return dict(client.get(Namespace, name=namespace).metadata.labels or {})
    except ApiError as error:
        if error.status.code == 404:
            return {}
        if not _forbidden(error):
            raise
        return None


def _partners(namespace: str, found: list[dict[str, Any]], partner: str, client: Client) -> str | None:
    """Why a readable namespace is not partner `partner`'s, or None when it is: it must carry the
    label tenantry.dev/partner=<partner> (and not be a tenant's namespace) or be named
    partner-<partner>; when the namespace itself cannot be read, its name or its Tenants' status
    (naming this partner, as the operator records it) must say so. An empty namespace, or one of
    unreconciled Tenants only, is not taken as the partner's on trust."""
    if namespace == f"partner-{partner}":
        return None
    labels = _namespace_labels(client, namespace)
    if labels is None:
        if any((b.get("status") or {}).get("partner") == partner for b in found):
            return None
        return f"no Tenant whose status names partner {partner!r}, and the namespace itself is not readable"
    if labels.get(PARTNER_LABEL) == partner and TENANT_LABEL not in labels:
        return None
    return f"not labelled {PARTNER_LABEL}={partner}"


def _first_readable(client: Client, candidates: list[str], fields: dict[str, str] | None,
                    partner: str | None) -> list[dict[str, Any]]:
    """The Tenants of the first candidate namespace these credentials may read that holds no other
    partner's Tenants (their status.partner, as the operator records it) and, with --partner, is
    that partner's (see _partners)."""
    tried = []
    for namespace in dict.fromkeys(candidates):
        found = _readable(client, namespace, fields)
        if found is None:
            tried.append(f"{namespace} (refused)")
            continue
        others = {(b.get("status") or {}).get("partner") for b in found} - {None, partner}
        if partner and others:
            tried.append(f"{namespace} (partner {', '.join(sorted(others))})")
            continue
        why = _partners(namespace, found, partner, client) if partner else None
        if why:
            tried.append(f"{namespace} ({why})")
            continue
        return found
    what = f"partner {partner!r}'s namespace" if partner else "a namespace"
    raise ScopeProblem(f"cannot find {what} with these credentials (tried {', '.join(tried) or 'none'}): name it "
                       "with -n <namespace>, or set it as the kubeconfig context's namespace")


def _tenants(client: Client, partner: str | None, namespace: str | None,
             fields: dict[str, str] | None = None, own: list[str] | None = None) -> list[dict[str, Any]]:
    """The Tenants one may see. -n: that namespace. --partner: the namespaces labelled as that
    partner's; a partner's own credentials may not list namespaces, so then the first it may read of
    its own (`own`: the kubeconfig context's, the ServiceAccount token's) and `partner-<id>`.
    Neither: every namespace for platform credentials, else the first readable of `own` (or the
    client's default namespace)."""
    own = own or []
    if namespace:
        found = [t.to_dict() for t in client.list(Tenant, namespace=namespace, fields=fields)]
    elif partner:
        try:
            labelled = [ns.metadata.name for ns in client.list(Namespace, labels={PARTNER_LABEL: partner})
                        if TENANT_LABEL not in (ns.metadata.labels or {})]
        except ApiError as error:
            if not _forbidden(error):
                raise
            found = _first_readable(client, [*own, f"partner-{partner}"], fields, partner)
        else:
            if not labelled:
                # A mistyped partner id would read as a partner without customers: say so instead.
                known = sorted({(ns.metadata.labels or {}).get(PARTNER_LABEL, "") for ns in client.list(
                    Namespace, labels={PARTNER_LABEL: operators.exists()})} - {""})
                raise ScopeProblem(f"no namespace is labelled {PARTNER_LABEL}={partner}; the partners here: "
                                   f"{', '.join(known[:20]) or 'none'}" + (" ..." if len(known) > 20 else ""))
            found = [t.to_dict() for ns in labelled for t in client.list(Tenant, namespace=ns, fields=fields)]
    else:
        try:
            found = [t.to_dict() for t in client.list(Tenant, namespace="*", fields=fields)]
        except ApiError as error:
            if not _forbidden(error):
                raise
            found = _first_readable(client, own or [client.namespace], fields, None)
    return sorted(found, key=lambda b: (b["metadata"]["namespace"], b["metadata"]["name"]))


def render(rows: list[dict[str, Any]], form: str) -> str:
    if form == "json":
        return json.dumps(rows, indent=2, ensure_ascii=False)
    if form == "yaml":
        return yaml.safe_dump(rows, sort_keys=False, allow_unicode=True)
    if form == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=COLUMNS)
        writer.writeheader()
        # What a partner wrote (a company "=HYPERLINK(...)") opens as text in a spreadsheet.
        writer.writerows({k: cell(v) if isinstance(v, str) else v for k, v in r.items()} for r in rows)
        return out.getvalue()
    cells = [["?" if r[c] is None else str(r[c]) for c in COLUMNS] for r in rows]
    footer = (f"{len(rows)} customers, {sum(r['users'] for r in rows)} active users, MRR {_sums(rows, 'mrr')}, "
              f"commission {_sums(rows, 'commission')}, annual revenue (12 x MRR) {_sums(rows, 'mrr', 12)}, "
              f"annual commission (12 x commission) {_sums(rows, 'commission', 12)}")
    if form == "html":
        return _html(rows, footer)
    if form == "markdown":
        lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
        lines += ["| " + " | ".join(markdown_cell(c) for c in r) + " |" for r in cells]
        return "\n".join(lines) + f"\n\n{footer}\n"
    cells = [[shown(c) for c in r] for r in cells]  # a partner's company name may hold escape sequences
    widths = [max(len(c), *(len(r[i]) for r in cells)) if cells else len(c) for i, c in enumerate(COLUMNS)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(COLUMNS, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(lines) + f"\n{footer}\n"


def _sums(rows: list[dict[str, Any]], column: str, factor: float = 1) -> str:
    """A money column's total per currency ("2000.00 EUR + 700.00 USD"): currencies are never added."""
    totals: dict[str, float] = {}
    for r in rows:
        totals[r["currency"]] = totals.get(r["currency"], 0.0) + (r[column] or 0.0) * factor
    text = " + ".join(f"{amount:.2f} {currency}" for currency, amount in sorted(totals.items())) or "0.00"
    unknown = sum(1 for r in rows if r[column] is None)
    return f"{text} (not counting {unknown} without a recorded commission rate)" if unknown else text


def _html(rows: list[dict[str, Any]], footer: str) -> str:
    """The customers overview as one static page (every value escaped; no script, no external file)."""
    environment = jinja2.Environment(loader=jinja2.PackageLoader("tenantry.cli", "templates"), autoescape=True)
    return environment.get_template("report.html").render(columns=COLUMNS, rows=rows, footer=footer)


def _visible(args: argparse.Namespace, fields: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """The Tenants the command's credentials may see, scoped by --partner and -n (see _tenants)."""
    config = kubeconfig_rules.load(args.kubeconfig, args.context)
    with Client(config=config, field_manager="tenantry-cli") as client:
        return _tenants(client, args.partner, args.namespace, fields, kubeconfig_rules.own_namespaces(config))


def report(args: argparse.Namespace) -> int:
    # A refusal (403) or an unreachable cluster: one line and its own exit code, from cli/main.
    rows = [row(b, args.commission_rate) for b in _visible(args)]
    print(render(rows, args.format), end="")
    return 0


def checklist_lines(items: list[dict[str, Any]]) -> list[str]:
    """The go-live checklist of a tenant's status: done steps with their time, open ones with what they wait for."""
    width = max((len(str(item.get("name", ""))) for item in items), default=0)
    return [f"  [{'x' if item.get('done') else ' '}] {str(item.get('name', '')):<{width}}  "
            f"{item.get('at') if item.get('done') else item.get('message', '')}" for item in items]


def _state_text(body: dict[str, Any], now: datetime.datetime | None = None) -> str:
    """The state in effect, and the spec's own when they differ: `Suspended (spec.state Trial: the trial ended)`."""
    shown, wanted = state_of(body, now), (body.get("spec") or {}).get("state") or "Active"
    return shown if shown == wanted else f"{shown} (spec.state {wanted}: the trial ended)"


def status(args: argparse.Namespace) -> int:
    found = _visible(args, {"metadata.name": args.slug})
    if not found:
        print(f"tenantry status: no tenant {args.slug!r} that you may see", file=sys.stderr)
        return 1
    body = found[0]
    spec, state = body.get("spec") or {}, body.get("status") or {}
    if args.format in ("json", "yaml"):
        # What kubectl -o would show, without kopf's bookkeeping and the managed fields.
        kept = {"metadata": {k: body["metadata"].get(k) for k in ("name", "namespace", "generation")},
                "spec": spec, "status": {k: v for k, v in state.items() if k != "kopf"}}
        print(json.dumps(kept, indent=2, ensure_ascii=False) if args.format == "json" else
              yaml.safe_dump(kept, sort_keys=False, allow_unicode=True), end="\n" if args.format == "json" else "")
        return 0
    # What a partner wrote (the company) and what the status quotes of it reach the terminal escaped.
    lines = [f"{body['metadata']['name']}  ({spec.get('company')}, partner {state.get('partner', '?')}, "
             f"{_state_text(body)}, plan {(spec.get('plan') or {}).get('featureSet')})"]
    if state.get("url"):
        lines.append(f"url: {state['url']}")
    lines.append("conditions:")
    lines += [f"  {c['type']:<17} {c['status']:<8} {c['reason']}: {c.get('message', '')}"
              for c in state.get("conditions", [])]
    if state.get("onboarding"):
        lines += ["go-live:", *checklist_lines(state["onboarding"])]
    pending = [d for d in state.get("domains", []) if not d.get("verified")]
    if pending:
        lines.append("the customer must create:")
        lines += [f"  {record['name']}. {record['type']} {record['value']}"
                  for domain in pending for record in domain.get("records", [])]
    failing = [c for c in state.get("conditions", []) if c["status"] == "False" and c["type"] != "Ready"]
    lines.append("to do: " + ("; ".join(f"{c['type']}: {c['message']}" for c in failing) if failing else "nothing"))
    print("\n".join(shown(line) for line in lines))
    return 0


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a share between 0 and 1, e.g. 0.2 for 20 %")
    return value


def add_parsers(commands: argparse._SubParsersAction) -> None:
    rep = commands.add_parser("report", help="all customers of one or all partners: users, revenue, signals")
    rep.add_argument("--partner", help="partner id (default: every partner you may see; with a partner's own "
                                       "kubeconfig, its namespace)")
    rep.add_argument("-n", "--namespace", help="the partner namespace to report (default: see --partner)")
    add_output_option(rep, ["table", "csv", "json", "yaml", "markdown", "html"], "table")
    rep.add_argument("--commission-rate", type=_rate, default=None,
                     help="share of MRR credited to the partner, for a what-if (default: the rate the operator "
                          "counts for each partner, shown in the Tenant's status.commissionRate)")
    add_cluster_options(rep)
    rep.set_defaults(run=report)
    sta = commands.add_parser("status", help="one tenant: conditions, the go-live checklist, what the customer must do")
    sta.add_argument("slug", help="the tenant's name")
    sta.add_argument("--partner", help="partner id (a partner's own kubeconfig: its namespace is searched)")
    sta.add_argument("-n", "--namespace", help="the partner namespace to search (default: every one you may read)")
    add_output_option(sta, ["table", "json", "yaml"], "table")
    add_cluster_options(sta)
    sta.set_defaults(run=status)
