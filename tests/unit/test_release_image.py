"""NETWORK: what the Dockerfile does, in fresh virtualenvs, since no image can be built here.

This test needs the package index (pip downloads the locked files; its cache makes a second run
fast). It runs the Dockerfile's two stages with the same commands:
- stage `wheel`: the build backend from requirements/build.lock (--require-hashes --no-deps), then
  `pip wheel --no-deps --no-build-isolation` of a copy of what the Dockerfile copies
- the image: requirements/operator.lock with --require-hashes --no-deps, the wheel with --no-deps,
  `pip check` (the lock is complete: no package misses a dependency), and nothing else installed
then runs what the image runs: `tenantry --version`, and `tenantry-operator` (the ENTRYPOINT),
which imports every module of the operator before it refuses a bad setting with exit code 2;
every module of the package imports (but the developer tools and the dashboards-as-code, which
need the test extra).

The lock is written for the image's Python (3.12); this machine's Python is 3.11. The lock has
the hashes of every file of each pinned version, and the resolution is the same for both (no
dependency of the operator depends on the Python minor), so pip installs it here too.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

import tenantry
from tests.unit.test_release import BUILD_LOCK, LOCK, REPO, parse_lock

# The image's environment: no pip configuration of this machine, no bytecode written.
ENV = {**os.environ, "PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1",
       "PYTHONDONTWRITEBYTECODE": "1"}
ENV.pop("PYTHONPATH", None)
NEEDS_TEST_EXTRA = ("tenantry.devtools", "tenantry.dashboards.build")


def run(*args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None,
        check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(a) for a in args], capture_output=True, text=True, cwd=cwd, env=env or ENV,
                            timeout=900)
    if check and result.returncode != 0:
        command = " ".join(map(str, args))
        raise AssertionError(f"{command} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


def new_venv(path: Path) -> Path:
    venv.EnvBuilder(with_pip=True, clear=True).create(path)
    return path / "bin"


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bin/ of a virtualenv installed as the image is; returns it."""
    root = tmp_path_factory.mktemp("image")
    # stage `wheel`: COPY pyproject.toml README.md LICENSE ./ and COPY operator/ operator/
    src = root / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(REPO / name, src / name)
    shutil.copytree(REPO / "operator", src / "operator",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
    build = new_venv(root / "build")
    run(build / "python", "-m", "pip", "install", "--require-hashes", "--no-deps", "--no-compile",
        "-r", BUILD_LOCK)
    wheels = root / "wheels"
    run(build / "python", "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--wheel-dir", wheels, ".",
        cwd=src)
    (wheel,) = wheels.glob("tenantry-*.whl")
    assert wheel.name == f"tenantry-{tenantry.__version__}-py3-none-any.whl"
    # the image: the lock, the wheel, pip check
    bin_ = new_venv(root / "image")
    run(bin_ / "python", "-m", "pip", "install", "--require-hashes", "--no-deps", "--no-compile", "-r", LOCK)
    run(bin_ / "python", "-m", "pip", "install", "--no-deps", "--no-compile", wheel)
    run(bin_ / "python", "-m", "pip", "check")
    return bin_


def test_exactly_the_lock_and_the_operator_are_installed(image: Path) -> None:
    frozen = run(image / "python", "-m", "pip", "freeze").stdout.splitlines()
    installed = {canonicalize_name(line.split("==")[0].split(" @ ")[0]) for line in frozen}
    assert installed == set(parse_lock(LOCK)) | {"tenantry"}


def test_the_cli_answers_its_version(image: Path) -> None:
    result = run(image / "tenantry", "--version", cwd=image)
    assert result.stdout.strip() == f"tenantry {tenantry.__version__}"


def test_the_entry_point_imports_everything_and_refuses_a_bad_setting(image: Path) -> None:
    result = run(image / "tenantry-operator", cwd=image, env={**ENV, "TENANTRY_WORKERS": "0"}, check=False)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith("tenantry: cannot start: TENANTRY_WORKERS"), result.stderr


def test_every_module_imports_from_the_locked_packages(image: Path) -> None:
    code = ("import importlib, pkgutil, sys, tenantry\n"
            f"skip = {NEEDS_TEST_EXTRA!r}\n"
            "names = [m.name for m in pkgutil.walk_packages(tenantry.__path__, 'tenantry.')\n"
            "         if not m.name.startswith(skip)]\n"
            "for name in names:\n"
            "    importlib.import_module(name)\n"
            "assert 'site-packages' in tenantry.__file__, tenantry.__file__\n"
            "print(len(names))\n")
    result = run(image / "python", "-c", code, cwd=image)
    assert int(result.stdout) > 50


def test_this_python_resolves_the_lock_as_the_image_does() -> None:
    """The premise of this module: the image's Python and this one install the same packages."""
    assert sys.version_info[:2] >= (3, 11)
    for name, pin in parse_lock(LOCK).items():
        assert pin["marker"] is None, f"{name} is pinned with a marker ({pin['marker']}): check it on this Python"
