"""A real local Kubernetes control plane: etcd + kube-apiserver + kube-controller-manager.

    python -m tenantry.devtools.cluster up      # start (idempotent), write .local/kubeconfig
    python -m tenantry.devtools.cluster down    # stop the processes we started, remove the data
    python -m tenantry.devtools.cluster status

Binaries come from $KUBEBUILDER_ASSETS (the envtest convention) when set, otherwise from a one-off
build of Debian's `kubernetes` source package (hack/build-kube.sh, cached in ~/.cache/tenantry).
The pytest fixtures and `make demo` call `up()` too, so everyone runs the same code path.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
KUBE_VERSION = "1.20.2"
BUILD_SCRIPT = REPO_ROOT / "hack" / "build-kube.sh"
PROCESSES = ("etcd", "kube-apiserver", "kube-controller-manager")


@dataclass(frozen=True)
class Cluster:
    """Where one local control plane keeps its state, and its ports."""

    state_dir: Path
    apiserver_port: int = 16443
    etcd_port: int = 23790

    @property
    def kubeconfig(self) -> Path:
        # The default cluster's is the well-known .local/kubeconfig; others keep theirs inside.
        if self.state_dir == REPO_ROOT / ".local" / "cluster":
            return self.state_dir.parent / "kubeconfig"
        return self.state_dir / "kubeconfig"

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.apiserver_port}"

    @property
    def pki(self) -> Path:
        return self.state_dir / "pki"

    @property
    def admin_token(self) -> str:
        return (self.pki / "admin.token").read_text().strip()

    def pid_file(self, name: str) -> Path:
        return self.state_dir / f"{name}.pid"

    def log_file(self, name: str) -> Path:
        return self.state_dir / "logs" / f"{name}.log"


def default_cluster() -> Cluster:
    """The cluster of this checkout: state in .local/, ports overridable by environment."""
    return Cluster(
        state_dir=Path(os.environ.get("TENANTRY_CLUSTER_DIR", REPO_ROOT / ".local" / "cluster")),
        apiserver_port=int(os.environ.get("TENANTRY_APISERVER_PORT", "16443")),
        etcd_port=int(os.environ.get("TENANTRY_ETCD_PORT", "23790")),
    )


def log(message: str) -> None:
    print(f"[cluster] {message}", file=sys.stderr, flush=True)


def binaries() -> dict[str, Path]:
    """Paths of etcd, kube-apiserver and kube-controller-manager; builds them when missing."""
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    if assets:
        found = {name: Path(assets) / name for name in PROCESSES}
        missing = [n for n in ("etcd", "kube-apiserver") if not found[n].exists()]
        if missing:
            raise SystemExit(f"KUBEBUILDER_ASSETS={assets} lacks {', '.join(missing)}")
        if not found["kube-controller-manager"].exists():
            log("KUBEBUILDER_ASSETS has no kube-controller-manager: namespaces will not finish "
                "deleting and quota usage stays empty")
            del found["kube-controller-manager"]
        return found
    cache = Path(os.environ.get("TENANTRY_KUBE_BIN", Path.home() / ".cache" / "tenantry" /
                                f"kube-{KUBE_VERSION}" / "bin"))
    if not (cache / "kube-apiserver").exists() or not (cache / "kube-controller-manager").exists():
        log(f"kube-apiserver {KUBE_VERSION} not cached in {cache}: building it from Debian's "
            "kubernetes source package (first time only, takes minutes)")
        subprocess.run(["bash", str(BUILD_SCRIPT)], check=True, env={**os.environ, "OUT": str(cache)})
    etcd = shutil.which("etcd")
    if etcd is None:
        log("installing Debian's etcd-server")
        subprocess.run(["apt-get", "install", "-y", "-qq", "etcd-server"], check=True,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
                       stdout=subprocess.DEVNULL)
        etcd = shutil.which("etcd") or "/usr/bin/etcd"
    return {"etcd": Path(etcd), "kube-apiserver": cache / "kube-apiserver",
            "kube-controller-manager": cache / "kube-controller-manager"}


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _make_pki(pki: Path) -> None:
    """A CA, a serving certificate for 127.0.0.1/localhost, a service-account key and a token."""
    if (pki / "admin.token").exists():
        return
    pki.mkdir(parents=True, exist_ok=True)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650",
             "-keyout", str(pki / "ca.key"), "-out", str(pki / "ca.crt"), "-subj", "/CN=tenantry-local-ca")
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(pki / "apiserver.key"),
             "-out", str(pki / "apiserver.csr"), "-subj", "/CN=kube-apiserver")
    (pki / "san.ext").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default\n")
    _openssl("x509", "-req", "-in", str(pki / "apiserver.csr"), "-CA", str(pki / "ca.crt"),
             "-CAkey", str(pki / "ca.key"), "-CAcreateserial", "-days", "3650",
             "-extfile", str(pki / "san.ext"), "-out", str(pki / "apiserver.crt"))
    _openssl("genrsa", "-out", str(pki / "sa.key"), "2048")
    _openssl("rsa", "-in", str(pki / "sa.key"), "-pubout", "-out", str(pki / "sa.pub"))
    token = os.urandom(24).hex()
    (pki / "tokens.csv").write_text(f'{token},admin,admin,"system:masters"\n')
    (pki / "admin.token").write_text(token)


def _kubeconfig_text(cluster: Cluster) -> str:
    return f"""apiVersion: v1
kind: Config
clusters:
- name: tenantry-local
  cluster:
    server: {cluster.server}
    certificate-authority: {cluster.pki / 'ca.crt'}
users:
- name: admin
  user:
    token: {cluster.admin_token}
contexts:
- name: tenantry-local
  context: {{cluster: tenantry-local, user: admin}}
current-context: tenantry-local
"""


def _write_kubeconfig(cluster: Cluster) -> None:
    cluster.kubeconfig.parent.mkdir(parents=True, exist_ok=True)
    cluster.kubeconfig.write_text(_kubeconfig_text(cluster))
    cluster.kubeconfig.chmod(0o600)


def _alive(pid_file: Path) -> bool:
    try:
        pid = int(pid_file.read_text())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return False
    try:
        # A killed child of this very process (tests start the cluster themselves) stays a zombie
        # until reaped: reap it, and count it as gone.
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass  # not our child: its parent reaps it
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][:1] != "Z"
    except OSError:
        return False


def _port_in_use(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _ports(cluster: Cluster, name: str) -> tuple[int, ...]:
    """The ports one component listens on."""
    if name == "etcd":
        return cluster.etcd_port, cluster.etcd_port + 10
    if name == "kube-apiserver":
        return (cluster.apiserver_port,)
    return (cluster.apiserver_port + 1,)


def _spawn(cluster: Cluster, name: str, argv: list[str]) -> None:
    cluster.log_file(name).parent.mkdir(parents=True, exist_ok=True)
    with cluster.log_file(name).open("ab") as out:
        # A new session: the processes outlive `make cluster` and are stopped by pid later.
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    cluster.pid_file(name).write_text(str(proc.pid))


def _get(cluster: Cluster, path: str, timeout: float = 2.0) -> tuple[int, bytes]:
    context = ssl.create_default_context(cafile=str(cluster.pki / "ca.crt"))
    request = urllib.request.Request(cluster.server + path,
                                     headers={"Authorization": f"Bearer {cluster.admin_token}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def healthy(cluster: Cluster) -> bool:
    """Whether the API server answers /readyz with ok."""
    if not (cluster.pki / "admin.token").exists():
        return False
    try:
        status, _ = _get(cluster, "/readyz")
    except OSError:
        return False
    return status == 200


def _wait(cluster: Cluster, what: str, check, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        for name in PROCESSES:
            if cluster.pid_file(name).exists() and not _alive(cluster.pid_file(name)):
                tail = cluster.log_file(name).read_text(errors="replace")[-3000:]
                raise SystemExit(f"{name} exited while waiting for {what}; its log ends:\n{tail}")
        time.sleep(0.3)
    raise SystemExit(f"timed out after {timeout:.0f}s waiting for {what}; logs in {cluster.state_dir / 'logs'}")


def running(cluster: Cluster) -> bool:
    """Whether this checkout's control plane is up and answering."""
    return any(_alive(cluster.pid_file(n)) for n in PROCESSES) and healthy(cluster)


def _argv(cluster: Cluster, bins: dict[str, Path], name: str) -> list[str]:
    """The command line of one component of the local control plane."""
    pki = cluster.pki
    if name == "etcd":
        return [
            str(bins["etcd"]), "--name", "tenantry", "--data-dir", str(cluster.state_dir / "etcd-data"),
            "--listen-client-urls", f"http://127.0.0.1:{cluster.etcd_port}",
            "--advertise-client-urls", f"http://127.0.0.1:{cluster.etcd_port}",
            "--listen-peer-urls", f"http://127.0.0.1:{cluster.etcd_port + 10}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{cluster.etcd_port + 10}",
            "--initial-cluster", f"tenantry=http://127.0.0.1:{cluster.etcd_port + 10}",
            "--quota-backend-bytes", str(4 * 1024**3), "--log-level", "warn",
        ]
    if name == "kube-apiserver":
        return [
            str(bins["kube-apiserver"]),
            "--etcd-servers", f"http://127.0.0.1:{cluster.etcd_port}",
            "--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1",
            "--secure-port", str(cluster.apiserver_port),
            "--cert-dir", str(pki),
            "--tls-cert-file", str(pki / "apiserver.crt"), "--tls-private-key-file", str(pki / "apiserver.key"),
            "--client-ca-file", str(pki / "ca.crt"),
            "--token-auth-file", str(pki / "tokens.csv"),
            "--service-account-key-file", str(pki / "sa.pub"),
            "--service-account-signing-key-file", str(pki / "sa.key"),
            "--service-account-issuer", "https://kubernetes.default.svc",
            "--service-cluster-ip-range", "10.96.0.0/16",
            "--authorization-mode", "RBAC",
            "--allow-privileged=false",
            # Local and single-user: generous client limits keep benchmarks about the operator.
            "--max-requests-inflight", "1600", "--max-mutating-requests-inflight", "800",
            "--v", "1",
        ]
    return [
        str(bins["kube-controller-manager"]),
        "--kubeconfig", str(cluster.kubeconfig),
        "--bind-address", "127.0.0.1", "--port", "0", "--secure-port", str(cluster.apiserver_port + 1),
        "--leader-elect=false",
        "--controllers", "namespace,garbagecollector,resourcequota,serviceaccount,serviceaccount-token",
        "--service-account-private-key-file", str(pki / "sa.key"),
        "--root-ca-file", str(pki / "ca.crt"),
        "--use-service-account-credentials=false",
        "--concurrent-namespace-syncs", "4", "--concurrent-resource-quota-syncs", "4",
        "--v", "1",
    ]


def up(cluster: Cluster | None = None) -> Cluster:
    """Start the control plane unless it already runs; return it once it answers."""
    cluster = cluster or default_cluster()
    running = [n for n in PROCESSES if _alive(cluster.pid_file(n))]
    if running and healthy(cluster):
        _write_kubeconfig(cluster)
        log(f"already running at {cluster.server} (kubeconfig: {cluster.kubeconfig})")
        return cluster
    if running:
        log("found a half-started control plane; restarting it")
        down(cluster, remove_data=False)
    for port in (port for name in PROCESSES for port in _ports(cluster, name)):
        if _port_in_use(port):
            raise SystemExit(f"port {port} is in use by another program: stop it, or choose other ports "
                             "with TENANTRY_APISERVER_PORT (the controller manager takes the next one) and "
                             "TENANTRY_ETCD_PORT (etcd's peers take that one + 10)")
    bins = binaries()
    _make_pki(cluster.pki)
    started = time.monotonic()
    _spawn(cluster, "etcd", _argv(cluster, bins, "etcd"))
    _spawn(cluster, "kube-apiserver", _argv(cluster, bins, "kube-apiserver"))
    _wait(cluster, "kube-apiserver /readyz", lambda: healthy(cluster), timeout=120)
    _write_kubeconfig(cluster)
    if "kube-controller-manager" in bins:
        _spawn(cluster, "kube-controller-manager", _argv(cluster, bins, "kube-controller-manager"))
        # Up, not just started: without it namespaces never finish deleting and quotas count nothing.
        port = _ports(cluster, "kube-controller-manager")[0]
        _wait(cluster, f"kube-controller-manager on port {port}", lambda: _port_in_use(port), timeout=60)
    log(f"ready at {cluster.server} in {time.monotonic() - started:.1f}s; "
        f"export KUBECONFIG={cluster.kubeconfig}")
    return cluster


def down(cluster: Cluster | None = None, remove_data: bool = True) -> None:
    """Stop the processes this script started (by their pid files) and remove the data."""
    cluster = cluster or default_cluster()
    for name in reversed(PROCESSES):
        pid_file = cluster.pid_file(name)
        if not pid_file.exists():
            continue
        if _alive(pid_file):
            pid = int(pid_file.read_text())
            os.kill(pid, signal.SIGTERM)
            for _ in range(50):
                if not _alive(pid_file):
                    break
                time.sleep(0.1)
            else:
                os.kill(pid, signal.SIGKILL)
            log(f"stopped {name} (pid {pid})")
        pid_file.unlink()
    if remove_data:
        cluster.kubeconfig.unlink(missing_ok=True)
        shutil.rmtree(cluster.state_dir, ignore_errors=True)
        log(f"removed {cluster.state_dir}")


def restart_process(cluster: Cluster, name: str) -> None:
    """SIGKILL one component and start just that one again (for restart tests); return once healthy."""
    pid_file = cluster.pid_file(name)
    if _alive(pid_file):
        os.kill(int(pid_file.read_text()), signal.SIGKILL)
        while _alive(pid_file):
            time.sleep(0.05)
    # A killed Go process shows as a zombie while its other threads still hold the listening sockets:
    # starting the new one at once can fail with "address already in use".
    deadline = time.monotonic() + 30
    while any(_port_in_use(port) for port in _ports(cluster, name)) and time.monotonic() < deadline:
        time.sleep(0.05)
    _spawn(cluster, name, _argv(cluster, binaries(), name))
    _wait(cluster, "kube-apiserver /readyz", lambda: healthy(cluster), timeout=120)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tenantry-cluster", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["up", "down", "status", "build"])
    args = parser.parse_args(argv)
    cluster = default_cluster()
    if args.command == "up":
        up(cluster)
    elif args.command == "down":
        down(cluster)
    elif args.command == "build":
        binaries()
    else:
        ok = healthy(cluster)
        print(f"{'running' if ok else 'not running'}: {cluster.server} kubeconfig={cluster.kubeconfig}")
        return 0 if ok else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
