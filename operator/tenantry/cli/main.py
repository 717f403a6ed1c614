"""`tenantry`: the command-line tool for partners (git, pull requests) and platform teams."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import traceback
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from lightkube.core.exceptions import ApiError

from tenantry import __version__
from tenantry.adapters.nesting import allow_kubernetes_nesting
from tenantry.cli import completion, new, options, plan, views
from tenantry.cli.kubeconfig import ConfigProblem, load
from tenantry.cli.terminal import shown
from tenantry.cli.validate import Finding, validate

# Exit codes: each kind of outcome its own, so that scripts and CI can tell them apart.
OK, FINDINGS, USAGE = 0, 1, 2  # (3: `plan` found changes)
NO_KUBECONFIG, CLUSTER_UNREACHABLE, CLUSTER_REFUSED = 4, 5, 6
INTERNAL_ERROR, INTERRUPTED = 70, 130
PIPE_CLOSED = 141  # as a shell reports a program its reader left (128 + SIGPIPE)


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
            # Escapes first, as in a terminal: the Actions log is one (colours, bidirectional reordering).
            print(f"::error file={_escape_property(shown(str(f.file)))},line={f.line},"
                  f"title={_escape_property(shown(f.field))}::{_escape_data(shown(f'{f.message}{hint}'))}")
        else:
            print(shown(f"{f.file}:{f.line}: {f.field}: {f.message}{hint}"))
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


EPILOG = """exit codes: 0 ok, 1 findings or not found, 2 usage, 3 plan has changes, 4 no usable kubeconfig,
5 cluster unreachable, 6 refused by the cluster, 70 internal error (TENANTRY_DEBUG=1 shows the traceback),
130 interrupted (Ctrl-C), 141 the reader of its output left (| head)"""


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="tenantry", description=__doc__, epilog=EPILOG,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    root.add_argument("--version", action="version", version=f"tenantry {__version__}")
    commands = root.add_subparsers(dest="command", required=True)
    check = commands.add_parser("validate", help="check tenant files offline (exit 0 ok, 1 findings, 2 usage)")
    check.add_argument("paths", nargs="+", type=Path, help="files or folders of the tenants repository")
    views.add_output_option(check, ["text", "json", "github"], "text")
    options.add_platform_options(check, "custom domains under it are refused (not checked without it)")
    check.add_argument("--repo", type=Path, help="the repository's root folder (default: a folder argument holding "
                                                  "tenants/, partners/ or platform/, else the current folder)")
    check.set_defaults(run=_validate)
    new.add_parser(commands)
    views.add_parsers(commands)
    plan.add_parser(commands)
    completion.add_parser(commands, root)
    return root


def _server(args: argparse.Namespace) -> str:
    try:
        return str(load(getattr(args, "kubeconfig", None), getattr(args, "context", None)).cluster.server)
    except Exception:  # noqa: BLE001  (only for the message)
        return "the cluster"


def _unreachable(error: BaseException) -> bool:
    """A network failure: the socket's own, or the HTTP client's (httpx, or httpx2 in lightkube 1.0)."""
    return isinstance(error, OSError) or type(error).__module__.split(".")[0] in ("httpx", "httpx2", "httpcore",
                                                                                   "httpcore2")


def main(argv: Sequence[str] | None = None) -> int:
    allow_kubernetes_nesting()  # a Tenant read from the cluster may be nested 10,000 levels deep
    args = parser().parse_args(argv)
    name = f"tenantry {args.command}"
    try:
        code = int(args.run(args))
        sys.stdout.flush()  # here, not at exit: a reader that left is a BrokenPipeError below
        return code
    except ConfigProblem as problem:
        print(f"{name}: {problem}", file=sys.stderr)
        return NO_KUBECONFIG
    except ApiError as error:
        print(f"{name}: the cluster refused: {error.status.message}", file=sys.stderr)
        return CLUSTER_REFUSED
    except views.ScopeProblem as problem:
        print(f"{name}: {problem}", file=sys.stderr)
        return CLUSTER_REFUSED
    except KeyboardInterrupt:
        return INTERRUPTED
    except BrokenPipeError:
        # The reader left (`| head`): nothing more to say, and nobody to say it to.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return PIPE_CLOSED
    except Exception as error:  # noqa: BLE001  (one line, never a traceback, unless asked for)
        if _unreachable(error):
            print(f"{name}: cannot reach {_server(args)}: {error or type(error).__name__}; is the cluster up, and "
                  "is this the right kubeconfig and context?", file=sys.stderr)
            return CLUSTER_UNREACHABLE
        if os.environ.get("TENANTRY_DEBUG") == "1":
            traceback.print_exc()
        print(f"{name}: internal error: {type(error).__name__}: {error} (please report it; TENANTRY_DEBUG=1 shows "
              "the traceback)", file=sys.stderr)
        return INTERNAL_ERROR


if __name__ == "__main__":
    sys.exit(main())
