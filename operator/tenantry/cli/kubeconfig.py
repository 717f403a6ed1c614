"""Which cluster and credentials a `tenantry` command uses: kubectl's rules.

1. `--kubeconfig FILE` (one file);
2. else `KUBECONFIG`, a list of files separated by `:` (`;` on Windows), merged as kubectl merges
   them: for clusters, users and contexts the first file that names one wins, and the first file
   that sets `current-context` sets it; files that do not exist are skipped;
3. else `~/.kube/config`;
4. else, inside a pod, its ServiceAccount.

`--context NAME` picks a context instead of the current one. Every problem is a ConfigProblem with
one line that says what is wrong and how to fix it (the CLI prints it, no traceback).
"""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from lightkube.config.kubeconfig import KubeConfig, SingleConfig
from lightkube.core.exceptions import ConfigError

IN_CLUSTER = Path("/var/run/secrets/kubernetes.io/serviceaccount")
# Fields holding a path, which kubectl reads relative to the file that names it.
_PATHS = {"cluster": ("certificate-authority",), "user": ("client-certificate", "client-key", "tokenFile")}


class ConfigProblem(Exception):
    """No usable kubeconfig: the message is the one line the user sees."""


def _read(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text()) or {}
    except OSError as error:
        raise ConfigProblem(f"cannot read the kubeconfig {path}: {error.strerror or error}") from None
    except yaml.YAMLError as error:
        raise ConfigProblem(f"the kubeconfig {path} is not valid YAML: {str(error).splitlines()[0]}") from None
    if not isinstance(loaded, dict):
        raise ConfigProblem(f"the kubeconfig {path} is not a kubeconfig (no clusters, users or contexts)")
    return loaded


def _absolute(entry: Mapping[str, Any], kind: str, folder: Path) -> dict[str, Any]:
    body = dict(entry.get(kind) or {})
    for key in _PATHS.get(kind, ()):
        if isinstance(body.get(key), str) and not os.path.isabs(body[key]):
            body[key] = str(folder / body[key])
    return {**entry, kind: body}


def merged(paths: list[Path]) -> dict[str, Any]:
    """The files merged as kubectl merges a KUBECONFIG list (see the module's docstring)."""
    result: dict[str, Any] = {"clusters": [], "users": [], "contexts": []}
    seen: dict[str, set[str]] = {key: set() for key in result}
    for path in paths:
        if not path.is_file():
            continue
        config = _read(path)
        for key, kind in (("clusters", "cluster"), ("users", "user"), ("contexts", "context")):
            for entry in config.get(key) or []:
                if isinstance(entry, Mapping) and entry.get("name") not in seen[key]:
                    seen[key].add(entry.get("name"))
                    result[key].append(_absolute(entry, kind, path.parent.resolve()))
        if "current-context" not in result and config.get("current-context"):
            result["current-context"] = config["current-context"]
    return result


def load(kubeconfig: Path | None, context: str | None, env: Mapping[str, str] | None = None) -> SingleConfig:
    """The configuration a command uses (kubectl's precedence, see the module's docstring)."""
    env = os.environ if env is None else env
    if kubeconfig is not None:
        if not kubeconfig.is_file():
            raise ConfigProblem(f"--kubeconfig {kubeconfig}: no such file")
        paths, where = [kubeconfig], str(kubeconfig)
    elif env.get("KUBECONFIG"):
        paths = [Path(p).expanduser() for p in env["KUBECONFIG"].split(os.pathsep) if p]
        where = f"KUBECONFIG={env['KUBECONFIG']}"
    else:
        default = Path(env.get("HOME", "~")).expanduser() / ".kube" / "config"
        if not default.is_file():
            return _in_cluster(context)
        paths, where = [default], str(default)
    config = merged(paths)
    if not config["contexts"]:
        raise ConfigProblem(f"no contexts in {where}: give --kubeconfig, set KUBECONFIG, or run "
                            "`kubectl config set-context`")
    name = context or config.get("current-context")
    names = sorted(str(c.get("name")) for c in config["contexts"])
    if not name:
        raise ConfigProblem(f"no current context in {where}: give --context (one of {', '.join(names)})")
    if name not in names:
        raise ConfigProblem(f"context {name!r} is not in {where}: use one of {', '.join(names)}")
    try:
        single = KubeConfig.from_dict(config, fname=paths[0]).get(context_name=name)
    except (ConfigError, KeyError, TypeError) as error:
        raise ConfigProblem(f"the kubeconfig {where} is incomplete for context {name!r}: {error}") from None
    assert single is not None
    return single


def _in_cluster(context: str | None) -> SingleConfig:
    if context:
        raise ConfigProblem(f"--context {context}: there is no kubeconfig (~/.kube/config) to find it in")
    if not IN_CLUSTER.is_dir():
        raise ConfigProblem("no kubeconfig: give --kubeconfig FILE, set KUBECONFIG, or create ~/.kube/config")
    try:
        single = KubeConfig.from_service_account(service_account=IN_CLUSTER).get()
    except ConfigError as error:
        raise ConfigProblem(f"no kubeconfig, and this pod's ServiceAccount is not usable: {error}") from None
    assert single is not None
    return single


_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def token_namespace(token: str | None) -> str | None:
    """The namespace of a ServiceAccount token (`sub` is system:serviceaccount:<namespace>:<name>, in
    bound and legacy tokens alike), else None. Read, not verified: only a hint of where to look; the
    API server still decides what the token may read."""
    try:
        payload = (token or "").split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, TypeError):
        return None
    parts = str(claims.get("sub", "") if isinstance(claims, dict) else "").split(":")
    if len(parts) == 4 and parts[:2] == ["system", "serviceaccount"] and _DNS_LABEL.match(parts[2]):
        return parts[2]
    return None


def own_namespaces(config: SingleConfig) -> list[str]:
    """Where these credentials say they belong, in order: the context's namespace (in a pod, its
    ServiceAccount's), then a ServiceAccount token's own namespace. Empty when neither says."""
    found = [config.context.namespace] if config.context.namespace else []
    user = config.user
    token = user.token if user is not None else None
    if token is None and user is not None and user.token_file:
        try:
            token = Path(config.abs_file(user.token_file)).read_text()[:65536].strip()
        except (OSError, ConfigError):
            token = None
    namespace = token_namespace(token)
    return found + [namespace] if namespace and namespace not in found else found
