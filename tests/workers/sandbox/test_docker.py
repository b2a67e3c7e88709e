"""Sandbox break-out tests on the real Docker engine (and, via SandboxContract, on bubblewrap).

Every attempt must be contained *and* reported (exit code, timed_out, oom_killed, truncated).
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path

import pytest

from workers.sandbox import Limits, Mount
from workers.sandbox.output import OutputCap

ROOT = Path(__file__).resolve().parents[3]
SMALL = Limits(memory_mb=256, cpus=1.0, pids=64, timeout_s=30.0, output_bytes=4000)


class _Listener:
    """A TCP server on the host's 127.0.0.1 that records whether anybody connected."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self._stop = True
        self.thread.join(2)
        self.sock.close()


def _ws(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "README").write_text("hello\n")
    return ws


class SandboxContract:
    """Tests every engine must pass. Subclasses provide the ``make`` fixture."""

    @pytest.fixture
    def make(self):  # pragma: no cover - overridden
        raise NotImplementedError

    # -- identity and filesystem ---------------------------------------------------------
    def test_non_root_readonly_root_writable_workspace(self, make, tmp_path):
        ws = _ws(tmp_path)
        sb = make(ws, SMALL)
        r = sb.exec(["id", "-u"])
        assert r.ok and r.output.strip() == "1000", r
        for path in ("/x", "/etc/x", "/usr/x", "/usr/bin/x"):
            r = sb.exec(["touch", path])
            assert r.exit_code != 0 and "Read-only file system" in r.output, (path, r)
        r = sb.exec("cat README && echo made-inside > sub.txt && mkdir -p d/e && touch d/e/f")
        assert r.ok and "hello" in r.output, r
        assert (ws / "sub.txt").read_text() == "made-inside\n"
        assert (ws / "d/e/f").exists()
        r = sb.exec("pwd", cwd="d/e")
        assert r.output.strip() == "/workspace/d/e"
        with pytest.raises(ValueError):
            sb.exec("true", cwd="../..")
        r = sb.exec("touch /tmp/t $HOME/h && echo ok")
        assert r.ok and "ok" in r.output, r

    # -- network -------------------------------------------------------------------------
    def test_mounts_are_read_only_unless_made_writable(self, make, tmp_path):
        ro, rw = tmp_path / "packages", tmp_path / "env"
        ro.mkdir()
        rw.mkdir()
        (ro / "f").write_text("data")
        sb = make(_ws(tmp_path), mounts=(Mount(ro, "/opt/qwenfix/packages"),
                                         Mount(rw, "/opt/qwenfix/env", read_only=False)))
        r = sb.exec("cat /opt/qwenfix/packages/f; touch /opt/qwenfix/packages/x 2>/dev/null || echo ro-refused; "
                    "echo w > /opt/qwenfix/env/w && echo rw-ok")
        assert "data" in r.output and "ro-refused" in r.output and "rw-ok" in r.output, r.output
        assert (rw / "w").read_text() == "w\n" and not (ro / "x").exists()
        for bad in ("/workspace/x", "relative", "/", "/opt/../workspace"):
            with pytest.raises(ValueError, match="outside the workspace"):
                Mount(ro, bad)

    def test_no_network_to_host_loopback_or_dns(self, make, tmp_path):
        listener = _Listener()
        try:
            sb = make(_ws(tmp_path), SMALL)
            probe = textwrap.dedent(f"""
                import socket
                for target in [("127.0.0.1", {listener.port}), ("deb.debian.org", 80)]:
                    try:
                        socket.create_connection(target, timeout=3).close()
                        print("CONNECTED", target)
                    except OSError as e:
                        print("BLOCKED", target, type(e).__name__)
                try:
                    print("RESOLVED", socket.getaddrinfo("pypi.org", 443))
                except OSError as e:
                    print("NO-DNS", e)
            """)
            r = sb.exec(["python3", "-c", probe], timeout=20)
            assert "CONNECTED" not in r.output and "RESOLVED" not in r.output, r.output
            assert r.output.count("BLOCKED") == 2 and "NO-DNS" in r.output, r.output
            r = sb.exec("cat /proc/net/dev")
            ifaces = [ln.split(":")[0].strip() for ln in r.output.splitlines() if ":" in ln]
            assert ifaces == ["lo"], r.output
            time.sleep(0.3)
            assert listener.accepted == 0
        finally:
            listener.close()

    # -- secrets -------------------------------------------------------------------------
    def test_worker_env_and_token_files_invisible(self, make, tmp_path, monkeypatch):
        secret = f"ghs_fake_{uuid.uuid4().hex}"
        monkeypatch.setenv("QWENFIX_TEST_SECRET", secret)
        monkeypatch.setenv("GITHUB_TOKEN", secret)
        token_in_tmp = tmp_path / "installation-token"
        token_in_tmp.write_text(secret)
        home_token = Path.home() / f".qwenfix-test-token-{uuid.uuid4().hex[:8]}"
        home_token.write_text(secret)
        try:
            sb = make(_ws(tmp_path), SMALL)
            r = sb.exec(
                f"env; cat /proc/*/environ 2>/dev/null | tr '\\0' '\\n'; "
                f"cat {token_in_tmp} {home_token} 2>&1; ls -a ~ {Path.home()} 2>&1; "
                f"ls /var/run/docker.sock /run/docker.sock 2>&1; "
                f"grep -rl {secret} /etc /tmp /home 2>/dev/null; echo done"
            )
            assert "done" in r.output
            assert secret not in r.output, r.output
            assert "QWENFIX_TEST_SECRET" not in r.output and "GITHUB_TOKEN" not in r.output
            assert "docker.sock" in r.output and "No such file" in r.output
        finally:
            home_token.unlink()

    # -- limits --------------------------------------------------------------------------
    def test_fork_bomb_is_contained(self, make, tmp_path):
        sb = make(_ws(tmp_path), SMALL)
        r = sb.exec(["bash", "-c", ":(){ :|:& };:; sleep 1"], timeout=5)
        assert "Resource temporarily unavailable" in r.output or r.timed_out, r
        r = sb.exec("echo alive; ps -e --no-headers | wc -l")
        assert r.ok and "alive" in r.output, r
        assert int(r.output.split()[-1]) < 10, r.output  # the bomb is gone

    def test_memory_hog_is_oom_killed(self, make, tmp_path):
        sb = make(_ws(tmp_path), SMALL)
        r = sb.exec(
            ["python3", "-c", "a=[]\nwhile True: a.append(bytearray(16 << 20))"], timeout=30
        )
        assert not r.ok
        assert r.oom_killed, r
        assert "out of memory" in r.output
        r = sb.exec("echo still-usable")
        assert r.ok and not r.oom_killed and "still-usable" in r.output

    def test_endless_output_is_capped(self, make, tmp_path):
        sb = make(_ws(tmp_path), SMALL)
        r = sb.exec("echo FIRST-LINE; yes | head -c 3000000; echo; echo LAST-LINE")
        assert r.ok and r.truncated, r.exit_code
        assert len(r.output.encode()) <= SMALL.output_bytes
        assert r.output.startswith("FIRST-LINE")
        assert r.output.rstrip().endswith("LAST-LINE")
        assert "bytes of output omitted" in r.output
        t0 = time.monotonic()
        r = sb.exec(["yes"], timeout=2)
        assert r.timed_out and r.truncated and not r.ok
        assert len(r.output.encode()) <= SMALL.output_bytes
        assert "timed out" in r.output
        assert time.monotonic() - t0 < 8

    def test_timeout_kills_quickly(self, make, tmp_path):
        sb = make(_ws(tmp_path), SMALL)
        t0 = time.monotonic()
        r = sb.exec("sleep 3600", timeout=2)
        took = time.monotonic() - t0
        assert r.timed_out and not r.ok and r.exit_code != 0, r
        assert 1.9 <= took < 6, took
        assert sb.exec("echo next").ok

    def test_no_process_outlives_its_command(self, make, tmp_path):
        sb = make(_ws(tmp_path), SMALL)
        t0 = time.monotonic()
        r = sb.exec("(sleep 3517 &); (setsid sleep 3518 > /dev/null 2>&1 &); echo started")
        assert r.ok and "started" in r.output and time.monotonic() - t0 < 5, r
        r = sb.exec("sh -c 'sleep 3519 & setsid sleep 3520 & sleep 3600'", timeout=2)
        assert r.timed_out
        r = sb.exec("ps -eo user,args --no-headers")
        assert "sleep 35" not in r.output and "sleep 3600" not in r.output, r.output
        host = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
        for n in ("3517", "3518", "3519", "3520"):
            assert f"sleep {n}" not in host


class TestDockerSandbox(SandboxContract):
    pytestmark = pytest.mark.docker

    @pytest.fixture
    def make(self, sandbox_factory):
        return sandbox_factory

    def test_container_is_locked_down(self, docker_engine, sandbox_factory, tmp_path):
        sb = sandbox_factory(_ws(tmp_path), SMALL, labels={"qwenfix.extra": "x"})
        attrs = docker_engine.client.api.inspect_container(sb.id)
        hc = attrs["HostConfig"]
        assert hc["NetworkMode"] == "none"
        assert hc["ReadonlyRootfs"] is True
        assert hc["CapDrop"] == ["ALL"] and not hc.get("CapAdd")
        assert "no-new-privileges" in hc["SecurityOpt"]
        assert hc["PidsLimit"] == SMALL.pids
        assert hc["Memory"] == hc["MemorySwap"] == SMALL.memory_mb << 20
        assert hc["NanoCpus"] == int(SMALL.cpus * 1e9)
        assert not hc.get("Privileged")
        labels = attrs["Config"]["Labels"]
        assert labels["qwenfix"] == "1" and labels["qwenfix.extra"] == "x"
        assert labels["qwenfix.job"].startswith("test:")
        assert not any(k.startswith("QWENFIX_") for k in attrs["Config"]["Env"])
        mounts = {m["Destination"]: m for m in attrs["Mounts"]}
        assert mounts["/workspace"]["RW"] is True and set(mounts) == {"/workspace"}

    def test_stop_removes_container(self, docker_engine, sandbox_factory, tmp_path):
        import docker

        sb = sandbox_factory(_ws(tmp_path), SMALL)
        cid = sb.id
        sb.stop()
        with pytest.raises(docker.errors.NotFound):
            docker_engine.client.containers.get(cid)
        sb.stop()  # idempotent

    def test_worker_killed_mid_command_then_sweep(self, docker_engine, sandbox_factory, tmp_path):
        from workers.sandbox.docker import sweep_orphans

        marker = uuid.uuid4().hex
        ws = _ws(tmp_path)
        live = sandbox_factory(ws, SMALL, labels={"qwenfix.test": marker})
        script = textwrap.dedent(f"""
            import sys
            from pathlib import Path
            from workers.sandbox import Limits
            from workers.sandbox.docker import DockerEngine
            sb = DockerEngine().start(Path({str(ws)!r}), {docker_engine.image!r}, Limits(),
                                      {{"qwenfix.job": "crash-{marker}", "qwenfix.test": "{marker}"}})
            print(sb.id, flush=True)
            sb.exec("sleep 3600")
        """)
        worker = subprocess.Popen(
            [sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, text=True
        )
        cid = worker.stdout.readline().strip()
        assert cid, "worker did not start a sandbox"
        time.sleep(0.5)
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
        c = docker_engine.client.containers.get(cid)
        assert c.status == "running"  # left behind by the crash
        # its job runs on (taken over by another worker), but its creator is dead: an orphan
        removed = sweep_orphans(alive_job_ids={f"crash-{marker}"}, labels={"qwenfix.test": marker})
        assert removed == [cid]
        left = docker_engine.client.containers.list(
            all=True, filters={"label": f"qwenfix.test={marker}"}
        )
        assert [x.id for x in left] == [live.id]  # our worker is alive: its sandbox stays
        # the periodic sweep: only jobs the database says are alive survive
        assert (
            sweep_orphans(
                alive_job_ids={live.container.labels["qwenfix.job"]},
                labels={"qwenfix.test": marker},
            )
            == []
        )
        # even when the database knows no such job, a sandbox whose process is alive on this host
        # (a local `qwenfix repair`, another deployment sharing the engine) is never pulled away
        assert sweep_orphans(alive_job_ids=set(), labels={"qwenfix.test": marker}) == []
        assert docker_engine.client.containers.get(live.id).status == "running"


def test_output_cap_unit():
    cap = OutputCap(1000)
    cap.write(b"A" * 100)
    assert not cap.truncated and cap.text() == "A" * 100
    for _ in range(1000):
        cap.write(b"x" * 997)
    cap.write(b"THE-END")
    text = cap.text()
    assert cap.truncated and len(text) <= 1000
    assert text.startswith("A" * 100) and text.endswith("THE-END")
    assert len(cap.tail) <= 2 * cap.tail_cap + 997  # memory stays bounded
    assert f"{cap.dropped} bytes of output omitted" in text


# -- the default image: what GitHub's setup-python / setup-node provide ----------------------

_TINY_PYPROJECT = """\
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "{name}"
version = "1.0"

[project.scripts]
{name} = "{module}:main"

[tool.setuptools]
py-modules = ["{module}"]
"""


def _tiny_project(path: Path, name: str) -> None:
    module = name.replace("-", "_")
    path.mkdir(parents=True)
    (path / "pyproject.toml").write_text(_TINY_PYPROJECT.format(name=name, module=module))
    (path / f"{module}.py").write_text(f"def main():\n    print('{name} runs')\n")


@pytest.mark.docker
def test_image_python_pip_node_like_setup_actions(sandbox_factory, tmp_path):
    """Run the way the app runs commands (its exec PATH, read-only rootfs, network none, uid 1000):
    `python`/`pip` are the image's venv and `pip install` works, offline, into $HOME/.local."""
    ws = _ws(tmp_path)
    _tiny_project(ws / "tiny", "qwenfix-tiny")
    _tiny_project(ws / "edit", "qwenfix-edit")
    sb = sandbox_factory(ws)

    def ok(cmd: str) -> str:
        r = sb.exec(cmd)
        assert r.ok, (cmd, r)
        assert "externally-managed-environment" not in r.output, (cmd, r)
        return r.output

    assert ok("python --version").startswith("Python 3.")
    for py in ("python", "python3"):
        out = ok(f'{py} -c "import sys; print(sys.prefix, sys.executable)"')
        prefix, executable = out.split()
        assert prefix == "/opt/venv" and executable.startswith("/opt/venv/bin/python"), (py, out)
    assert ok("pip --version").startswith("pip ")
    assert ok("python -m pip --version").startswith("pip ")
    assert "pytest" in ok("python -m pytest --version")
    assert "pytest" in ok("pytest --version")
    assert ok("ruff --version").startswith("ruff ")
    assert ok("python -m ruff --version").startswith("ruff ")
    assert "black" in ok("black --version")
    assert "isort" in ok("python -m isort --version").lower()
    node = ok("node --version").strip()
    assert node.startswith("v"), node
    assert ok("npm --version").strip()[:1].isdigit()
    # the root filesystem (and so the venv) is read-only
    r = sb.exec("touch /opt/venv/x")
    assert r.exit_code != 0 and "Read-only file system" in r.output, r

    # a wheel built offline from a local project, installed from a local directory
    ok("pip wheel --no-deps --no-index --no-build-isolation -w /workspace/wheels ./tiny")
    out = ok("pip install --no-index --find-links /workspace/wheels qwenfix-tiny")
    assert "Successfully installed qwenfix-tiny-1.0" in out, out
    out = ok('python -c "import qwenfix_tiny; print(qwenfix_tiny.__file__)"')
    assert out.strip().startswith("/home/sandbox/.local/lib/python3"), out
    # its script is there; the app mounts $HOME noexec, so run it through python
    assert "qwenfix-tiny runs" in ok("python $HOME/.local/bin/qwenfix-tiny")
    # an editable install of a project with no dependencies
    out = ok("pip install --no-index --no-build-isolation -e ./edit")
    assert "Successfully installed qwenfix-edit-1.0" in out, out
    out = ok('python -c "import qwenfix_edit; print(qwenfix_edit.__file__)"')
    assert out.strip() == "/workspace/edit/qwenfix_edit.py", out
    # reinstalling / upgrading something the image has (`pip install -U pip`) goes to the user
    # site, which comes first on sys.path
    out = ok(
        "python -m pip install --no-index --find-links /usr/share/python-wheels "
        "--force-reinstall pip"
    )
    assert "Successfully installed pip-" in out, out
    assert "/home/sandbox/.local/lib/python3" in ok("python -m pip --version")
    # a venv the project makes itself works too
    out = ok("python -m venv .venv && .venv/bin/pip --version")
    assert "/workspace/.venv/lib/python3" in out, out


@pytest.mark.docker
def test_image_own_path_and_toolchains(docker_engine, sandbox_factory, tmp_path):
    """The image's own environment (plain `docker run`, here with an exec $HOME tmpfs) puts the
    scripts of user installs and the venv first on PATH; /etc/qwenfix/toolchains.json, the
    qwenfix.toolchains label and the versions actually on PATH agree."""
    import json
    import os

    from tests.support.docker import SANDBOX_IMAGE
    from workers.sandbox.docker import chown_tree, sandbox_user_for
    from workers.sandbox.image import TOOLCHAINS_LABEL, image_toolchains

    client = docker_engine.client
    ws = _ws(tmp_path)
    _tiny_project(ws / "tiny", "qwenfix-tiny")
    uid, gid = sandbox_user_for(ws)  # as DockerEngine.start does
    if os.geteuid() == 0:
        chown_tree(ws, uid, gid)
    script = (
        "set -e; echo PATH=$PATH; for c in python pip pytest; do command -v $c; done; "
        "pip install -q --no-index --no-build-isolation ./tiny >/dev/null 2>&1; "
        "command -v qwenfix-tiny; qwenfix-tiny"
    )
    out = client.containers.run(
        SANDBOX_IMAGE,
        ["sh", "-c", script],
        remove=True,
        network_mode="none",
        read_only=True,
        user=f"{uid}:{gid}",
        cap_drop=["ALL"],
        security_opt=["no-new-privileges"],
        tmpfs={"/tmp": "rw,mode=1777", "/home/sandbox": f"rw,exec,mode=0700,uid={uid},gid={gid}"},
        volumes={str(ws): {"bind": "/workspace", "mode": "rw"}},
        working_dir="/workspace",
    ).decode()
    lines = out.splitlines()
    assert lines[0].startswith("PATH=/home/sandbox/.local/bin:/opt/venv/bin:"), out
    assert lines[1:4] == ["/opt/venv/bin/python", "/opt/venv/bin/pip", "/opt/venv/bin/pytest"], out
    assert lines[4:] == ["/home/sandbox/.local/bin/qwenfix-tiny", "qwenfix-tiny runs"], out

    label = client.images.get(SANDBOX_IMAGE).labels[TOOLCHAINS_LABEL]
    sb = sandbox_factory(ws)
    r = sb.exec("cat /etc/qwenfix/toolchains.json")
    assert r.ok and r.output.strip() == label, (r, label)
    data = json.loads(label)
    assert set(data) >= {"python", "pip", "node", "npm", "go"} and data["go"] is None, data
    tc = image_toolchains(SANDBOX_IMAGE)
    assert tc == {k: v for k, v in data.items() if v is not None}, tc
    assert sb.exec("python -V").output.strip() == f"Python {tc['python']}"
    assert sb.exec("node -v").output.strip() == f"v{tc['node']}"
    assert sb.exec("npm -v").output.strip() == tc["npm"]


@pytest.mark.docker
def test_image_version_label_and_dockerfile_in_sync(docker_engine):
    """The built image is current, and deploy/sandbox/Dockerfile builds the same thing: same
    version label, packages, PATH, the three build scripts verbatim, the same toolchains."""
    from tests.support.docker import SANDBOX_IMAGE
    from workers.sandbox import image as im

    assert im.image_version(SANDBOX_IMAGE) == im.IMAGE_VERSION
    assert im.image_is_current(SANDBOX_IMAGE)
    dockerfile = (ROOT / "deploy/sandbox/Dockerfile").read_text()
    assert f'qwenfix.sandbox-image-version="{im.IMAGE_VERSION}"' in dockerfile
    for script in (im.SHIMS_SCRIPT, im.WRAPPERS_SH, im.PROBE_SCRIPT):
        assert script in dockerfile, script[:60]
    apt = dockerfile[dockerfile.index("apt-get install") : dockerfile.index("rm -rf /var/lib/apt")]
    assert set(im.PACKAGES) <= set(apt.replace("\\", " ").split()), apt
    assert f"PATH={im.ENV['PATH']} " in dockerfile
    for pkg in im.PIP_PACKAGES:
        assert f"pip install --no-cache-dir --break-system-packages {pkg}" in dockerfile
    default = dockerfile.split("ARG TOOLCHAINS='", 1)[1].split("'", 1)[0]
    assert default == docker_engine.client.images.get(SANDBOX_IMAGE).labels[im.TOOLCHAINS_LABEL]


@pytest.mark.docker
def test_image_exists_reports_outdated_images(docker_engine, capsys):
    """`python -m workers.sandbox.image exists` (what scripts/ensure-docker asks): 0 current,
    1 absent, 2 outdated — an image of an older version, or one made before the label existed."""
    import io
    import tarfile

    import docker

    from workers.sandbox import image as im

    client = docker_engine.client
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("marker")
        tar.addfile(info, io.BytesIO(b""))
    repo = f"qwenfix-test-image-{uuid.uuid4().hex[:8]}"
    made = []
    try:
        for name, changes in {
            "old": [f'LABEL {im.VERSION_LABEL}="{im.IMAGE_VERSION - 1}"'],
            "unlabelled": [],
            "current": [
                f'LABEL {im.VERSION_LABEL}="{im.IMAGE_VERSION}"',
                f'LABEL {im.TOOLCHAINS_LABEL}="{{\\"node\\":null,\\"python\\":\\"3.9.1\\"}}"',
            ],
        }.items():
            client.api.import_image(src=buf.getvalue(), repository=repo, tag=name, changes=changes)
            made.append(f"{repo}:{name}")
        assert im.main(["exists", "--tag", f"{repo}:old"]) == 2
        assert "outdated" in capsys.readouterr().out
        assert im.main(["exists", "--tag", f"{repo}:unlabelled"]) == 2
        assert im.image_version(f"{repo}:unlabelled") == 1
        assert im.image_toolchains(f"{repo}:unlabelled") == {}
        assert im.main(["exists", "--tag", f"{repo}:current"]) == 0
        assert im.image_toolchains(f"{repo}:current") == {"python": "3.9.1"}
        assert im.main(["exists", "--tag", f"{repo}:absent"]) == 1
        assert im.image_version(f"{repo}:absent") is None and not im.image_exists(f"{repo}:absent")
        with pytest.raises(docker.errors.ImageNotFound):
            im.image_toolchains(f"{repo}:absent")
        r = subprocess.run(
            [sys.executable, "-m", "workers.sandbox.image", "exists", "--tag", f"{repo}:old"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        assert r.returncode == 2, r
    finally:
        for tag in made:
            try:
                client.images.remove(tag, force=True)
            except docker.errors.DockerException:
                pass


_CEXT_C = """\
#include <Python.h>
static struct PyModuleDef mod = {PyModuleDef_HEAD_INIT, "qwenfix_cext", NULL, -1, NULL};
PyMODINIT_FUNC PyInit_qwenfix_cext(void) { return PyModule_Create(&mod); }
"""


@pytest.mark.docker
def test_image_pip_installed_compiled_extension_imports(sandbox_factory, tmp_path):
    ws = _ws(tmp_path)
    proj = ws / "cext"
    proj.mkdir()
    (proj / "qwenfix_cext.c").write_text(_CEXT_C)
    (proj / "setup.py").write_text(
        "from setuptools import Extension, setup\n"
        "setup(name='qwenfix-cext', version='1.0',\n"
        "      ext_modules=[Extension('qwenfix_cext', ['qwenfix_cext.c'])])\n"
    )
    sb = sandbox_factory(ws)
    r = sb.exec("pip install --no-index --no-build-isolation ./cext")
    assert r.ok and "Successfully installed qwenfix-cext-1.0" in r.output, r  # builds, installs
    r = sb.exec('python -c "import qwenfix_cext; print(qwenfix_cext.__file__)"')
    assert r.ok and r.output.startswith("/home/sandbox/.local/lib/python3"), r
