"""`tenantry`: the command-line tool for partners (git, pull requests) and platform teams."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from tenantry.cli import new, plan, views
from tenantry.cli.validate import Finding, validate

OK, FINDINGS, USAGE = 0, 1, 2


def _escape_data(text: str) -> str:
    """A GitHub workflow command's message, as @actions/core's escapeData does."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    """A workflow command's property (file, title): a file name from a pull request must not end
    the command and start one of its own (`::stop-commands::` would hide every later finding)."""
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _print_findings(findings: list[Finding], form: str) -> None:
    if form == "json":
        print(json.dumps([asdict(f) for f in findings], indent=2))
        return
    for f in findings:
        hint = f" ({f.hint})" if f.hint else ""
        if form == "github":
            # GitHub workflow commands: an annotation on the pull request's changed line.
            print(f"::error file={_escape_property(str(f.file))},line={f.line},title={_escape_property(f.field)}"
                  f"::{_escape_data(f'{f.message}{hint}')}")
        else:
            print(f"{f.file}:{f.line}: {f.field}: {f.message}{hint}")
    if form == "text":
        files = len({f.file for f in findings})
        print(f"{len(findings)} finding(s) in {files} file(s)" if findings else "no findings", file=sys.stderr)


def _validate(args: argparse.Namespace) -> int:
    missing = [p for p in args.paths if not p.exists()]
    if missing:
        print(f"tenantry validate: no such file or folder: {', '.join(map(str, missing))}", file=sys.stderr)
        return USAGE
    findings = validate(args.paths, args.platform_namespace, args.platform_domain, args.repo)
    _print_findings(findings, args.format)
    return FINDINGS if findings else OK


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="tenantry", description=__doc__)
    commands = root.add_subparsers(dest="command", required=True)
    check = commands.add_parser("validate", help="check tenant files offline (exit 0 ok, 1 findings, 2 usage)")
    check.add_argument("paths", nargs="+", type=Path, help="files or folders of the tenants repository")
    check.add_argument("--format", choices=["text", "json", "github"], default="text",
                       help="text (default), json, or GitHub annotations")
    check.add_argument("--platform-namespace", default="tenantry-system",
                       help="where platform-wide FeatureSets and Brandings live (default tenantry-system)")
    check.add_argument("--platform-domain", default="",
                       help="the platform's domain: custom domains under it are refused (default: not checked)")
    check.add_argument("--repo", type=Path, help="the repository's root folder (default: a folder argument holding "
                                                  "tenants/, partners/ or platform/, else the current folder)")
    check.set_defaults(run=_validate)
    new.add_parser(commands)
    views.add_parsers(commands)
    plan.add_parser(commands)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
