"""Build the default sandbox image offline: debootstrap bookworm + ``docker import``.

No container registry is needed, only a Debian mirror (and PyPI for ruff, which bookworm does not
package). The result is equivalent to deploy/sandbox/Dockerfile, which users with a registry can
build instead. Usage::

    python -m workers.sandbox.image build [--tag qwenfix-sandbox:bookworm] [--force]
    python -m workers.sandbox.image exists [--tag ...]     # 0 current, 1 absent, 2 outdated
    python -m workers.sandbox.image toolchains [--tag ...] # the image's qwenfix.toolchains label
    python -m workers.sandbox.image version                # IMAGE_VERSION the code expects

What the image provides, like GitHub's setup-python / setup-node:

* ``python`` (and ``python3``, ``python3.11``) is a virtual environment, ``/opt/venv``, so ``pip
  install`` is not refused by Debian's PEP 668 marker. It is created with
  ``--system-site-packages`` and ``--without-pip`` and its own site-packages stays empty: pip,
  setuptools, wheel, pytest, black, isort (Debian packages) and ruff (PyPI, in
  /usr/local/lib/python3.11/dist-packages) are seen through the system site. Why: at run time the
  root filesystem is read-only and only ``$HOME`` (a tmpfs), ``/tmp`` and ``/workspace`` are
  writable. A venv *with* system site packages keeps the user site enabled, so a plain ``pip
  install X`` run as uid 1000 finds the venv not writable and falls back to a user install into
  ``$HOME/.local`` ("Defaulting to user installation"), which comes first on sys.path and so
  overrides the image's versions. No PIP_USER: ``--target``/``--prefix`` and venvs the project
  makes itself keep working. And pip refuses to user-install over a package in the venv's *own*
  site-packages ("lack sys.path precedence"): keeping that empty lets ``pip install -U pip
  setuptools pytest`` work. (A user base in /workspace would be executable and carried from the
  setup phase, but would end up in patches.) Limits of the $HOME tmpfs the worker mounts today
  (noexec, emptied between stages): compiled extensions installed there do not load and its
  scripts run only as ``python ~/.local/bin/X`` — tests/test_sandbox_docker.py has an xfail for it.
* The venv's bin is first on the image's PATH (after ``$HOME/.local/bin``, where user installs put
  their scripts). The worker's ``docker exec`` sets its own PATH (workers/sandbox/docker.py:
  SANDBOX_ENV) that starts with /usr/local/bin, so /usr/local/bin also carries the venv's
  commands: ``python*`` as tiny ``exec /opt/venv/bin/python "$@"`` scripts (a symlink to the
  venv's interpreter would not activate the venv), pip/pytest/black/isort as symlinks to scripts
  whose shebang is the venv's interpreter. No VIRTUAL_ENV is set: tools such as poetry would
  otherwise try to install into the read-only /opt/venv instead of making their own venv.
* Node.js and npm from Debian.
* ``/etc/qwenfix/toolchains.json`` and the label ``qwenfix.toolchains``: the same JSON, e.g.
  ``{"go":null,"java":null,"node":"18.20.4","npm":"9.2.0","pip":"23.0.1","python":"3.11.2",...}``
  (:func:`image_toolchains` reads the label).
* The label ``qwenfix.sandbox-image-version`` = :data:`IMAGE_VERSION`; an image with an older
  version (or none) counts as outdated and ``build`` / scripts/ensure-docker rebuild it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

DEFAULT_TAG = "qwenfix-sandbox:bookworm"
SUITE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
SANDBOX_UID = 1000
SANDBOX_HOME = "/home/sandbox"
IMAGE_LABEL = "qwenfix.sandbox-image"
# Bump whenever what the image contains changes: hosts (CI!) holding an image with an older
# version rebuild it (scripts/ensure-docker, `build`). deploy/sandbox/Dockerfile carries the same
# number (tests/test_sandbox_docker.py checks). Images without the label count as version 1.
IMAGE_VERSION = 2
VERSION_LABEL = "qwenfix.sandbox-image-version"
TOOLCHAINS_LABEL = "qwenfix.toolchains"
TOOLCHAINS_FILE = "/etc/qwenfix/toolchains.json"
VENV = "/opt/venv"

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

# The three scripts below run as root at build time, here in the chroot and verbatim in
# deploy/sandbox/Dockerfile (a test checks the Dockerfile contains them): one line each, no single
# quotes, so each fits in `sh -c '...'` / `python -c '...'`.
#
# Console scripts of pip, pytest, black and isort for the venv: same entry points as Debian's
# /usr/bin ones, but run by /opt/venv/bin/python (so sys.executable, `sys.executable -m pip` and
# the user site are the venv's).
SHIMS_SCRIPT = (
    r"import importlib.metadata as m,os;"
    r'[(open(p,"w").write(f"#!/opt/venv/bin/python\nimport sys\n'
    r'from {e.module} import {e.attr.split(chr(46))[0]}\nsys.exit({e.attr}())\n"),'
    r'os.chmod(p,0o755)) for d in ("pip","pytest","black","isort") '
    r"for e in m.distribution(d).entry_points "
    r'if e.group=="console_scripts" and e.name!="blackd" for p in ["/opt/venv/bin/"+e.name]]'
)
# /usr/local/bin (first on the worker's exec PATH) gets the venv's commands; ruff's binary, from
# PyPI into /usr/local, is linked into the venv's bin where `python -m ruff` looks for it.
WRAPPERS_SH = (
    r"ln -sf /usr/local/bin/ruff /opt/venv/bin/ruff && "
    r"for p in /opt/venv/bin/*; do n=${p##*/}; case $n in "
    r'python*) printf %s\\n "#!/bin/sh" "exec /opt/venv/bin/python \"\$@\"" >/usr/local/bin/$n'
    r" && chmod 755 /usr/local/bin/$n;; "
    r"activate*|Activate*) ;; "
    r"*) [ -e /usr/local/bin/$n ] || ln -s $p /usr/local/bin/$n;; esac; done"
)
# Prints the toolchains JSON (sorted keys, compact; null when absent), found through PATH.
PROBE_SCRIPT = (
    r"import json,re,subprocess as s;"
    r'P={"python":("python -V",r"Python (\S+)"),"pip":("pip -V",r"pip (\S+)"),'
    r'"node":("node -v",r"v(\S+)"),"npm":("npm -v",r"^(\d\S*)$"),'
    r'"go":("go version",r"go(\d\S*)"),"java":("java -version",r"version \"([^\"]+)\""),'
    r'"rust":("rustc -V",r"rustc (\S+)"),"ruby":("ruby -v",r"ruby (\d[^ p]*)")};'
    r"R=lambda r,p:(re.search(p,r.stdout,re.M) or [0,None])[1] if r.returncode==0 else None;"
    r"print(json.dumps({k:R(s.run(c,shell=True,stdout=s.PIPE,stderr=s.STDOUT,text=True,"
    r'stdin=s.DEVNULL),p) for k,(c,p) in P.items()},sort_keys=True,separators=(",",":")))'
)

ENV = {
    # $HOME/.local/bin: scripts of `pip install` (a user install, see above); then the venv.
    "PATH": f"{SANDBOX_HOME}/.local/bin:{VENV}/bin:"
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": SANDBOX_HOME,
    "LANG": "C.UTF-8",
    "PYTHONDONTWRITEBYTECODE": "1",
}

log = logging.getLogger(__name__)


def _client():
    import docker

    return docker.from_env()


def image_exists(tag: str = DEFAULT_TAG) -> bool:
    """True when the Docker engine is reachable and has ``tag`` (of any version)."""
    return image_version(tag) is not None


def image_version(tag: str = DEFAULT_TAG, client=None) -> int | None:
    """The ``qwenfix.sandbox-image-version`` of ``tag``: None when the image (or the engine) is
    not there, 1 for images made before the label existed."""
    import docker

    try:
        image = (client or _client()).images.get(tag)
    except docker.errors.DockerException:  # ImageNotFound, engine unreachable
        return None
    raw = (image.labels or {}).get(VERSION_LABEL, "")
    try:
        return int(raw)
    except ValueError:
        return 1


def image_is_current(tag: str = DEFAULT_TAG, client=None) -> bool:
    """True when ``tag`` is present and at least :data:`IMAGE_VERSION`."""
    version = image_version(tag, client)
    return version is not None and version >= IMAGE_VERSION


def image_toolchains(tag: str = DEFAULT_TAG, client=None) -> dict[str, str]:
    """Toolchains ``tag`` provides, from its ``qwenfix.toolchains`` label: e.g.
    ``{"python": "3.11.2", "pip": "23.0.1", "node": "18.20.4", "npm": "9.2.0"}``.

    Toolchains the image lacks (null in the label) are left out; an image without the label (built
    before it existed, or someone else's) gives ``{}``. Raises docker.errors.ImageNotFound when
    the image is not there.
    """
    image = (client or _client()).images.get(tag)
    raw = (image.labels or {}).get(TOOLCHAINS_LABEL)
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        log.warning("image %s: unreadable %s label %r", tag, TOOLCHAINS_LABEL, raw[:200])
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): v for k, v in data.items() if isinstance(v, str) and v}


def docker_changes(toolchains_json: str) -> list[str]:
    """Dockerfile instructions ``docker import`` applies (``toolchains_json``: PROBE_SCRIPT's)."""
    changes = [f"ENV {k}={v}" for k, v in ENV.items()]
    changes += [
        f"USER {SANDBOX_UID}:{SANDBOX_UID}",
        "WORKDIR /workspace",
        f'LABEL {IMAGE_LABEL}="{SUITE}"',
        f'LABEL {VERSION_LABEL}="{IMAGE_VERSION}"',
        # a double-quoted Dockerfile word: json.dumps escapes the JSON's quotes and backslashes
        f"LABEL {TOOLCHAINS_LABEL}={json.dumps(toolchains_json)}",
        'ENTRYPOINT ["/usr/bin/tini", "-s", "--"]',
        'CMD ["sleep", "infinity"]',
    ]
    return changes


def _run(cmd: list[str], **kw) -> None:
    log.info("+ %s", " ".join(cmd))
    print("+", " ".join(cmd), file=sys.stderr, flush=True)
    subprocess.run(cmd, check=True, **kw)


def _chroot_env(path: str = "/usr/sbin:/usr/bin:/sbin:/bin") -> dict[str, str]:
    return {"PATH": path, "DEBIAN_FRONTEND": "noninteractive", "LANG": "C.UTF-8", "HOME": "/root"}


def _chroot(rootfs: Path, *argv: str, path: str | None = None) -> None:
    env = _chroot_env(path) if path else _chroot_env()
    _run(["chroot", str(rootfs), *argv], env=env)


def _chroot_output(rootfs: Path, *argv: str, path: str | None = None) -> str:
    env = _chroot_env(path) if path else _chroot_env()
    log.info("+ chroot %s", " ".join(argv)[:200])
    return subprocess.run(
        ["chroot", str(rootfs), *argv], env=env, check=True, capture_output=True, text=True
    ).stdout.strip()


def _install_ruff(rootfs: Path) -> None:
    """ruff is not in bookworm: install the PyPI wheel with the host's pip into the rootfs."""
    pyver = _chroot_output(
        rootfs, "/usr/bin/python3", "-c", "import sys;print('%d.%d' % sys.version_info[:2])"
    )
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


def _setup_python(rootfs: Path) -> None:
    """The venv and its commands (module docstring); same steps as deploy/sandbox/Dockerfile."""
    _chroot(
        rootfs, "/usr/bin/python3", "-m", "venv", "--system-site-packages", "--without-pip", VENV
    )
    _chroot(rootfs, f"{VENV}/bin/python", "-c", SHIMS_SCRIPT)
    _chroot(rootfs, "/bin/sh", "-c", WRAPPERS_SH)


def probe_toolchains(rootfs: Path) -> str:
    """Run PROBE_SCRIPT in the finished rootfs with the image's PATH; returns its JSON text."""
    out = _chroot_output(rootfs, "/usr/bin/python3", "-c", PROBE_SCRIPT, path=ENV["PATH"])
    data = json.loads(out)
    if not data.get("python") or not data.get("node"):
        raise RuntimeError(f"toolchain probe found no python or node: {out}")
    return out


def build_rootfs(rootfs: Path, mirror: str = DEFAULT_MIRROR) -> str:
    """debootstrap a minimal bookworm into ``rootfs`` and install the CI toolset (needs root).

    Returns the toolchains JSON (also written to TOOLCHAINS_FILE in the rootfs)."""
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
        _install_ruff(rootfs)
        _setup_python(rootfs)
        toolchains = probe_toolchains(rootfs)
    finally:
        subprocess.run(["umount", "-l", str(proc)], check=False)
    tfile = rootfs / TOOLCHAINS_FILE.lstrip("/")
    tfile.parent.mkdir(parents=True, exist_ok=True)
    tfile.write_text(toolchains + "\n")
    tfile.chmod(0o644)
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
    return toolchains


def import_rootfs(rootfs: Path, tag: str = DEFAULT_TAG, toolchains_json: str = "{}") -> str:
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
            src=chunks(),
            repository=repository,
            tag=name_tag,
            changes=docker_changes(toolchains_json),
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
    """Build ``tag`` offline (debootstrap + docker import) unless it is present and current
    (version label >= IMAGE_VERSION); returns the image id. The image an outdated tag pointed
    to is removed afterwards unless a container still uses it."""
    say = progress or (lambda m: print(m, file=sys.stderr, flush=True))
    version = image_version(tag)
    if not force and version is not None and version >= IMAGE_VERSION:
        say(f"image {tag} already present (version {version})")
        return _client().images.get(tag).id
    if version is not None and version < IMAGE_VERSION:
        say(f"image {tag} is version {version}, the code expects {IMAGE_VERSION}: rebuilding")
    old_id = _client().images.get(tag).id if version is not None else None
    t0 = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="qwenfix-rootfs-", dir=workdir))
    try:
        rootfs = tmp / "rootfs"
        say(f"debootstrap {SUITE} into {rootfs}")
        toolchains = build_rootfs(rootfs, mirror)
        say(f"toolchains: {toolchains}")
        say(f"docker import -> {tag}")
        image_id = import_rootfs(rootfs, tag, toolchains)
        say(f"built {tag} {image_id} (version {IMAGE_VERSION}) in {time.monotonic() - t0:.0f}s")
        if old_id and old_id != image_id:
            _remove_quietly(old_id)
        return image_id
    finally:
        subprocess.run(["umount", "-l", str(tmp / "rootfs/proc")], check=False, capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


def _remove_quietly(image_id: str) -> None:
    import docker

    try:
        _client().images.remove(image_id)  # no force: refused while a container uses it
    except docker.errors.DockerException as e:
        log.info("kept previous image %s: %s", image_id[:19], e)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m workers.sandbox.image")
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="build the sandbox image offline with debootstrap")
    b.add_argument("--tag", default=DEFAULT_TAG)
    b.add_argument("--mirror", default=os.environ.get("QWENFIX_DEBIAN_MIRROR", DEFAULT_MIRROR))
    b.add_argument("--force", action="store_true", help="rebuild even if the tag exists")
    e = sub.add_parser(
        "exists", help="exit 0 if the image is present and current, 1 if absent, 2 if outdated"
    )
    e.add_argument("--tag", default=DEFAULT_TAG)
    t = sub.add_parser("toolchains", help="print the image's toolchains (its label) as JSON")
    t.add_argument("--tag", default=DEFAULT_TAG)
    sub.add_parser("version", help="print the image version this code expects")
    args = p.parse_args(argv)
    if args.cmd == "version":
        print(IMAGE_VERSION)
        return 0
    if args.cmd == "exists":
        version = image_version(args.tag)
        if version is None:
            print("absent")
            return 1
        if version < IMAGE_VERSION:
            print(f"outdated (version {version}, expected {IMAGE_VERSION})")
            return 2
        print(f"present (version {version})")
        return 0
    if args.cmd == "toolchains":
        print(json.dumps(image_toolchains(args.tag), sort_keys=True))
        return 0
    build_image(args.tag, mirror=args.mirror, force=args.force)
    return 0


if __name__ == "__main__":
    sys.exit(main())
