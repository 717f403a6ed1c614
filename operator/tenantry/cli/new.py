"""`tenantry new tenant`: the five-minute onboarding as a command.

Flags, or prompts for what is missing when a person is at the terminal; writes a valid
`tenants/<partner>/<slug>.yaml` (checked by the same rules as `tenantry validate`) and prints the
next steps, including the DNS records the customer must create.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tenantry.api.common import API_VERSION, DNS_LABEL
from tenantry.api.tenant import SLUG_MAX_LENGTH
from tenantry.cli import options
from tenantry.cli.sources import dump
from tenantry.cli.validate import Finding, validate

# (flag name, prompt, required)
FIELDS = (("partner", "Partner id (folder under tenants/)", True), ("slug", "Tenant name (slug)", True),
          ("company", "Company", True), ("contact_name", "Contact name", True),
          ("contact_email", "Contact e-mail", True), ("plan", "Plan (FeatureSet)", True),
          ("seats", "Seats", True), ("price", "Monthly price", False), ("currency", "Currency", False),
          ("branding", "Branding (empty: the partner's default)", False))


def manifest(values: dict[str, Any], namespace: str) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "company": values["company"],
        "contact": {"name": values["contact_name"], "email": values["contact_email"]},
        "plan": {"featureSet": values["plan"], "seats": int(values["seats"])},
    }
    if values.get("phone"):
        spec["contact"]["phone"] = values["phone"]
    if values.get("price") not in (None, ""):
        spec["plan"]["price"] = {"monthly": float(values["price"]), "currency": values.get("currency") or "EUR"}
    if values.get("branding"):
        spec["branding"] = values["branding"]
    if values.get("domains"):
        spec["domains"] = list(values["domains"])
    spec["admins"] = list(values.get("admins") or [values["contact_email"]])
    return {"apiVersion": API_VERSION, "kind": "Tenant",
            "metadata": {"name": values["slug"], "namespace": namespace}, "spec": spec}


def next_steps(path: Path, slug: str, domains: list[str], platform_domain: str) -> str:
    lines = [f"wrote {path}", "", "next steps:",
             f"  git add {path} && git commit -m 'Onboard {slug}' && git push   # then open a pull request",
             f"  the tenant will be reached at https://{slug}.{platform_domain}"]
    for domain in domains:
        lines += [f"  the customer creates for {domain}:",
                  f"    {domain}. CNAME {slug}.{platform_domain}.",
                  f"    _tenantry-challenge.{domain}. TXT <token: `tenantry status {slug}` shows it once applied>"]
    return "\n".join(lines)


def collect(args: argparse.Namespace, ask: Callable[[str], str] | None) -> tuple[dict[str, Any], list[str]]:
    """The values from flags, asking for missing ones when `ask` is given; and what is still missing."""
    values = {name: getattr(args, name) for name, _, _ in FIELDS}
    values.update(phone=args.phone, domains=args.domain or [], admins=args.admin or [])
    missing = []
    for name, prompt, required in FIELDS:
        if values[name] in (None, "") and ask is not None:
            values[name] = ask(f"{prompt}: ").strip() or None
        while ask is not None and (problem := number_problem(name, values[name])):
            print(problem, file=sys.stderr)  # asked again, not an internal error
            values[name] = ask(f"{prompt}: ").strip() or None
        if required and values[name] in (None, ""):
            missing.append("--" + name.replace("_", "-"))
    return values, missing


_NUMBERS = {"seats": (int, "a whole number (e.g. 25)"),
            "price": (float, "a number: use a dot for decimals (1.50)")}


def number_problem(name: str, value: str | None) -> str | None:
    """What is wrong with a typed number (seats, price), or None."""
    if name not in _NUMBERS or value in (None, ""):
        return None
    convert, words = _NUMBERS[name]
    try:
        if math.isfinite(convert(value)):
            return None
    except ValueError:
        pass
    return f"--{name}: {value!r} is not {words}"


# ASCII only: a fullwidth or Cyrillic look-alike letter is not a DNS label, and fullmatch (not `$`,
# which also matches before a final newline) takes the whole value.
_LABEL = re.compile(DNS_LABEL.strip("^$"), re.ASCII)


def unsafe_names(values: dict[str, Any], namespace: str) -> list[str]:
    """What is not a DNS label among the values that become folder, file and namespace names."""
    named = {"--partner": (values["partner"], 63), "--slug": (values["slug"], SLUG_MAX_LENGTH),
             "--namespace": (namespace, 63)}
    return [f"{flag} {value!r} is not a DNS label (lowercase a-z, 0-9 and '-', at most {most} characters)"
            for flag, (value, most) in named.items() if len(value) > most or not _LABEL.fullmatch(value)]


def output_path(repo: Path, partner: str, slug: str) -> Path | None:
    """tenants/<partner>/<slug>.yaml inside the repository, or None if it would resolve outside it."""
    path = repo / "tenants" / partner / f"{slug}.yaml"
    real_repo = Path(os.path.realpath(repo))
    real = Path(os.path.realpath(path))
    try:
        real.relative_to(real_repo / "tenants")
    except ValueError:
        return None
    return path


def run(args: argparse.Namespace) -> int:
    ask = input if sys.stdin.isatty() and not args.no_input else None
    values, missing = collect(args, ask)
    if missing:
        print(f"tenantry new tenant: missing {', '.join(missing)} (or run it in a terminal to be asked)",
              file=sys.stderr)
        return 2
    if wrong := [p for name in _NUMBERS if (p := number_problem(name, values[name]))]:
        for problem in wrong:
            print(f"tenantry new tenant: {problem}", file=sys.stderr)
        return 2
    repo = args.repo
    namespace = args.namespace or f"partner-{values['partner']}"
    refused = unsafe_names(values, namespace)
    path = None if refused else output_path(repo, values["partner"], values["slug"])
    if path is None:
        for reason in refused or [f"tenants/{values['partner']}/{values['slug']}.yaml resolves outside "
                                  f"{repo}/tenants/ (a symlink?)"]:
            print(f"tenantry new tenant: {reason}", file=sys.stderr)
        print("tenantry new tenant: nothing written", file=sys.stderr)
        return 2
    if path.is_symlink() or (path.exists() and not path.is_file()):
        print(f"tenantry new tenant: {path} is not a regular file; nothing written", file=sys.stderr)
        return 2
    if path.exists() and not args.force:
        print(f"tenantry new tenant: {path} exists; use --force to overwrite", file=sys.stderr)
        return 2
    path.parent.mkdir(parents=True, exist_ok=True)
    previous = path.read_text() if path.exists() else None
    path.write_text(dump([manifest(values, namespace)]))
    findings: list[Finding] = [f for f in validate([repo], args.platform_namespace, args.platform_domain, repo=repo)
                               if Path(f.file) == path]
    if findings:
        if previous is None:
            path.unlink()
        else:
            path.write_text(previous)  # --force never loses the file it was meant to replace
        for f in findings:
            print(f"{f.field}: {f.message}" + (f" ({f.hint})" if f.hint else ""), file=sys.stderr)
        print("tenantry new tenant: nothing written (any existing file is unchanged); fix the values above",
              file=sys.stderr)
        return 1
    print(next_steps(path, values["slug"], values["domains"], args.platform_domain or "<your platform domain>"))
    if not args.platform_domain:
        print("  (pass --platform-domain, or set TENANTRY_PLATFORM_DOMAIN, for the exact names)")
    return 0


def add_parser(commands: argparse._SubParsersAction) -> None:
    new = commands.add_parser("new", help="create files for the tenants repository")
    kinds = new.add_subparsers(dest="kind", required=True)
    tenant = kinds.add_parser("tenant", help="write tenants/<partner>/<slug>.yaml (asks for what is missing)")
    for name, prompt, _ in FIELDS:
        tenant.add_argument("--" + name.replace("_", "-"), dest=name, help=prompt)
    tenant.add_argument("--phone", help="contact phone, e.g. +49 521 12345678")
    tenant.add_argument("--domain", action="append", help="a custom domain (repeatable)")
    tenant.add_argument("--admin", action="append", help="an admin's e-mail (repeatable; default: the contact)")
    tenant.add_argument("--namespace", help="the partner namespace (default partner-<partner>)")
    tenant.add_argument("--repo", type=Path, default=Path("."), help="the tenants repository (default .)")
    options.add_platform_options(tenant, "for the DNS names in the next steps, and checked as in validate")
    tenant.add_argument("--no-input", action="store_true", help="never prompt")
    tenant.add_argument("--force", action="store_true", help="overwrite an existing file")
    tenant.set_defaults(run=run)
