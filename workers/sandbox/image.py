"""Build the default sandbox image offline: debootstrap bookworm + ``docker import``.

No container registry is needed, only a Debian mirror (and PyPI for ruff, which bookworm does not
package). The result is equivalent to deploy/sandbox/Dockerfile, which users with a registry can
build instead. Usage::

    python -m workers.sandbox.image build [--tag qwenfix-sandbox:bookworm] [--force]
    python -m workers.sandbox.image exists [--tag ...]     # exit 0 when present
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

DEFAULT_TAG = "qwenfix-sandbox:bookworm"
SUITE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
SANDBOX_UID = 1000
SANDBOX_HOME = "/home/sandbox"
IMAGE_LABEL = "qwenfix.sandbox-image"

# What CI environments usually have; keep in sync with deploy/sandbox/Dockerfile.
PACKAGES = [
    "ca-certificates",
    "python3",
    "python3-dev",
    "python3-pip",
    "python3-venv",
    "python3-pytest",
    "black",
    "isort",
    "git",
    "ripgrep",
    "build-essential",
    "nodejs",
    "npm",
    "procps",
    "tini",
    "patch",
    "unzip",
    "xz-utils",
    "less",
]
PIP_PACKAGES = ["ruff"]

ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": SANDBOX_HOME,
    "LANG": "C.UTF-8",
    "PYTHONDONTWRITEBYTECODE": "1",
}

log = logging.getLogger(__name__)


def _client():
    import docker

    return docker.from_env()


def image_exists(tag: str = DEFAULT_TAG) -> bool:
    """True when the Docker engine is reachable and has ``tag``."""
    import docker

    try:
        client = _client()
        client.images.get(tag)
        return True
    except docker.errors.ImageNotFound:
        return False
    except docker.errors.DockerException:
        return False


def docker_changes() -> list[str]:
    changes = [f"ENV {k}={v}" for k, v in ENV.items()]
    changes += [
        f"USER {SANDBOX_UID}:{SANDBOX_UID}",
        "WORKDIR /workspace",
        f'LABEL {IMAGE_LABEL}="{SUITE}"',
        'ENTRYPOINT ["/usr/bin/tini", "-s", "--"]',
        'CMD ["sleep", "infinity"]',
    ]
    return changes


def _run(cmd: list[str], **kw) -> None:
    log.info("+ %s", " ".join(cmd))
    print("+", " ".join(cmd), file=sys.stderr, flush=True)
    subprocess.run(cmd, check=True, **kw)


def _chroot(rootfs: Path, *argv: str) -> None:
    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "DEBIAN_FRONTEND": "noninteractive",
        "LANG": "C.UTF-8",
        "HOME": "/root",
    }
    _run(["chroot", str(rootfs), *argv], env=env)


def _install_ruff(rootfs: Path) -> None:
    """ruff is not in bookworm: install the PyPI wheel with the host's pip into the rootfs."""
    pyver = subprocess.run(
        [
            "chroot",
            str(rootfs),
            "python3",
            "-c",
            "import sys;print('%d.%d' % sys.version_info[:2])",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    machine = platform.machine()
    target = rootfs / "usr/local/lib" / f"python{pyver}" / "dist-packages"
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        _run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-deps",
                "--only-binary",
                ":all:",
                "--no-compile",
                "--platform",
                f"manylinux_2_17_{machine}",
                "--python-version",
                pyver,
                "--target",
                tmp,
                *PIP_PACKAGES,
            ]
        )
        bindir = Path(tmp) / "bin"
        if bindir.is_dir():
            for exe in bindir.iterdir():
                dst = rootfs / "usr/local/bin" / exe.name
                shutil.copy2(exe, dst)
                dst.chmod(0o755)
            shutil.rmtree(bindir)
        for entry in Path(tmp).iterdir():
            dst = target / entry.name
            if entry.is_dir():
                shutil.copytree(entry, dst, dirs_exist_ok=True)
            else:
                shutil.copy2(entry, dst)


def build_rootfs(rootfs: Path, mirror: str = DEFAULT_MIRROR) -> None:
    """debootstrap a minimal bookworm into ``rootfs`` and install the CI toolset (needs root)."""
    if os.geteuid() != 0:
        raise PermissionError("building the sandbox image with debootstrap needs root")
    if not shutil.which("debootstrap"):
        raise FileNotFoundError("debootstrap not found: apt-get install debootstrap")
    _run(["debootstrap", "--variant=minbase", "--components=main", SUITE, str(rootfs), mirror])
    # no daemons start inside the chroot
    policy = rootfs / "usr/sbin/policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)
    (rootfs / "etc/resolv.conf").write_text(Path("/etc/resolv.conf").read_text())
    proc = rootfs / "proc"
    _run(["mount", "-t", "proc", "proc", str(proc)])
    try:
        _chroot(rootfs, "apt-get", "update", "-q")
        _chroot(
            rootfs,
            "apt-get",
            "install",
            "-y",
            "-q",
            "--no-install-recommends",
            "-o",
            "Dpkg::Options::=--force-unsafe-io",
            *PACKAGES,
        )
        _chroot(rootfs, "apt-get", "clean")
        _chroot(
            rootfs,
            "useradd",
            "--uid",
            str(SANDBOX_UID),
            "--user-group",
            "--create-home",
            "--home-dir",
            SANDBOX_HOME,
            "--shell",
            "/bin/bash",
            "sandbox",
        )
    finally:
        subprocess.run(["umount", "-l", str(proc)], check=False)
    _install_ruff(rootfs)
    policy.unlink()
    (rootfs / "etc/resolv.conf").write_text("")  # docker bind-mounts its own
    shutil.rmtree(rootfs / "var/lib/apt/lists", ignore_errors=True)
    (rootfs / "var/lib/apt/lists/partial").mkdir(parents=True, exist_ok=True)
    for d in ("var/cache/apt", "var/log"):
        for p in (rootfs / d).glob("**/*"):
            if p.is_file() and (p.suffix in (".bin", ".deb", ".log") or "apt" in p.parts):
                p.unlink(missing_ok=True)
    ws = rootfs / "workspace"
    ws.mkdir(exist_ok=True)
    os.chown(ws, SANDBOX_UID, SANDBOX_UID)


def import_rootfs(rootfs: Path, tag: str = DEFAULT_TAG) -> str:
    """``tar -C rootfs -c . | docker import`` through the Docker API; returns the image id."""
    repository, _, name_tag = (
        tag.rpartition(":") if ":" in tag.split("/")[-1] else (tag, "", "latest")
    )
    client = _client()
    tar = subprocess.Popen(
        ["tar", "-C", str(rootfs), "--numeric-owner", "--xattrs", "-c", "."],
        stdout=subprocess.PIPE,
    )
    assert tar.stdout is not None

    def chunks():
        while True:
            buf = tar.stdout.read(1 << 20)
            if not buf:
                return
            yield buf

    try:
        client.api.import_image(
            src=chunks(), repository=repository, tag=name_tag, changes=docker_changes()
        )
    finally:
        tar.stdout.close()
        if tar.wait() != 0:
            raise RuntimeError(f"tar exited with {tar.returncode}")
    return client.images.get(tag).id


def build_image(
    tag: str = DEFAULT_TAG,
    mirror: str = DEFAULT_MIRROR,
    force: bool = False,
    workdir: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> str:
    """Build ``tag`` offline (debootstrap + docker import) unless present; returns the image id."""
    say = progress or (lambda m: print(m, file=sys.stderr, flush=True))
    if not force and image_exists(tag):
        say(f"image {tag} already present")
        return _client().images.get(tag).id
    tmp = Path(tempfile.mkdtemp(prefix="qwenfix-rootfs-", dir=workdir))
    try:
        rootfs = tmp / "rootfs"
        say(f"debootstrap {SUITE} into {rootfs}")
        build_rootfs(rootfs, mirror)
        say(f"docker import -> {tag}")
        image_id = import_rootfs(rootfs, tag)
        say(f"built {tag} {image_id}")
        return image_id
    finally:
        subprocess.run(["umount", "-l", str(tmp / "rootfs/proc")], check=False, capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m workers.sandbox.image")
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="build the sandbox image offline with debootstrap")
    b.add_argument("--tag", default=DEFAULT_TAG)
    b.add_argument("--mirror", default=os.environ.get("QWENFIX_DEBIAN_MIRROR", DEFAULT_MIRROR))
    b.add_argument("--force", action="store_true", help="rebuild even if the tag exists")
    e = sub.add_parser("exists", help="exit 0 if the image is present")
    e.add_argument("--tag", default=DEFAULT_TAG)
    args = p.parse_args(argv)
    if args.cmd == "exists":
        ok = image_exists(args.tag)
        print("present" if ok else "absent")
        return 0 if ok else 1
    build_image(args.tag, mirror=args.mirror, force=args.force)
    return 0


if __name__ == "__main__":
    sys.exit(main())
