"""A package cache shaped like the one an air-gapped operator gives QWENFIX_SANDBOX_PACKAGE_CACHE:
`wheels/` (pip and uv find-links) and `npm/` (an npm cache), so the workflow corpus installs its
dependencies with no network in the sandbox.

It is made once per machine from PyPI and the npm registry through their ordinary clients (pip
download, npm install) and kept under ~/.cache/qwenfix-tests (QWENFIX_TEST_PACKAGE_CACHE to move it);
later runs reuse it. `npm_lock("jest")` is the package-lock.json that npm wrote for the cached tree
(with `resolved` URLs, which `npm ci --offline` needs), committed by the corpus's Node repository.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

VERSION = "v4"  # bump when the lists below change
CACHE = Path(os.environ.get("QWENFIX_TEST_PACKAGE_CACHE", Path.home() / ".cache" / "qwenfix-tests")) / VERSION
# For the sandbox image's CPython 3.11 on x86-64 Linux.
WHEELS = ["flake8==7.1.1", "tox==4.23.2", "nox==2024.10.9", "setuptools==75.6.0", "wheel==0.45.1",
          "uv==0.6.14", "pytest==8.3.4", "tabulate==0.9.0", "pre-commit==4.0.1",
          "poetry==2.1.2", "pipx==1.7.1", "pip==24.3.1",  # pipx upgrades its pip to >=23.1
          # Poetry locks for every Python and platform the project allows: pytest's markers' deps too
          "tomli==2.2.1", "exceptiongroup==1.2.2", "colorama==0.4.6"]
NPM = {"jest": {"jest": "29.7.0"}}


def _download_wheels(target: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "-d", str(target),
         "--only-binary=:all:", "--python-version", "3.11", "--implementation", "cp", "--abi", "cp311",
         "--platform", "manylinux2014_x86_64", "--platform", "manylinux_2_17_x86_64", "--platform", "any",
         *WHEELS], check=True)


def _npm_tree(cache: Path, locks: Path, name: str, dependencies: dict[str, str]) -> None:
    with tempfile.TemporaryDirectory() as project:
        manifest = {"name": f"corpus-{name}", "version": "1.0.0", "private": True, "devDependencies": dependencies}
        Path(project, "package.json").write_text(json.dumps(manifest))
        subprocess.run(["npm", "install", "--cache", str(cache), "--no-audit", "--no-fund", "--ignore-scripts",
                        "--omit-lockfile-registry-resolved=false"], cwd=project, check=True,
                       stdout=subprocess.DEVNULL)
        (locks / name).mkdir(parents=True, exist_ok=True)
        shutil.copy(Path(project, "package-lock.json"), locks / name / "package-lock.json")


def build(root: Path = CACHE) -> Path:
    if (root / "ready").is_file():
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    with open(root.parent / f"{root.name}.lock", "w") as lock:  # parallel test processes build it once
        fcntl.flock(lock, fcntl.LOCK_EX)
        return root if (root / "ready").is_file() else _build(root)


def _build(root: Path) -> Path:
    building = Path(tempfile.mkdtemp(prefix="building-", dir=root.parent))
    _download_wheels(building / "cache" / "wheels")
    for name, dependencies in NPM.items():
        _npm_tree(building / "cache" / "npm", building / "locks", name, dependencies)
    (building / "cache" / "ready").write_text("ok\n")
    shutil.move(str(building / "locks"), str(building / "cache" / "locks"))
    for path in [building / "cache", *(building / "cache").rglob("*")]:  # the sandbox user reads it
        path.chmod(path.stat().st_mode | 0o444 | (0o111 if path.is_dir() else 0))
    try:
        os.rename(building / "cache", root)
    except OSError:  # made meanwhile by another run
        pass
    shutil.rmtree(building, ignore_errors=True)
    return root


def npm_lock(name: str, root: Path = CACHE) -> str:
    return (root / "locks" / name / "package-lock.json").read_text()


@pytest.fixture(scope="session")
def package_cache() -> Path:
    try:
        return build()
    except (subprocess.CalledProcessError, OSError) as exc:
        pytest.fail(f"could not make the test package cache from PyPI and npm ({exc}); "
                    f"see tests/support/packages.py", pytrace=False)
