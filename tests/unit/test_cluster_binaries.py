"""Where the local control plane's binaries come from (no process is started here).

Tested here:
- KUBEBUILDER_ASSETS (the envtest convention) wins, with or without kube-controller-manager
- a KUBEBUILDER_ASSETS folder without kube-apiserver is a clear error
- the state directory and ports follow the TENANTRY_* environment variables
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tenantry.devtools import cluster


def _assets(tmp_path: Path, *names: str) -> Path:
    for name in names:
        (tmp_path / name).write_text("#!/bin/sh\n")
        (tmp_path / name).chmod(0o755)
    return tmp_path


def test_kubebuilder_assets_are_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(_assets(tmp_path, "etcd", "kube-apiserver",
                                                         "kube-controller-manager")))
    found = cluster.binaries()
    assert found == {name: tmp_path / name for name in cluster.PROCESSES}


def test_controller_manager_is_optional(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(_assets(tmp_path, "etcd", "kube-apiserver")))
    assert set(cluster.binaries()) == {"etcd", "kube-apiserver"}


def test_assets_without_apiserver_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(_assets(tmp_path, "etcd")))
    with pytest.raises(SystemExit, match="lacks kube-apiserver"):
        cluster.binaries()


def test_state_and_ports_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TENANTRY_CLUSTER_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("TENANTRY_APISERVER_PORT", "26443")
    local = cluster.default_cluster()
    assert local.server == "https://127.0.0.1:26443"
    assert local.kubeconfig == tmp_path / "state" / "kubeconfig"
    assert not cluster.healthy(local)
