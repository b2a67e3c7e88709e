"""bubblewrap sandbox engine: for hosts without Docker. One bwrap process per command.

* Root filesystem: the host's ``/usr`` (and the usual ``/bin``, ``/lib*``, ``/sbin`` symlinks or
  binds) read-only plus a small allow-list of ``/etc`` (dynamic loader, certificates,
  alternatives...), or the same directories from an extracted image ``rootfs`` when one is given.
  Nothing else of the host is visible: no ``/home``, ``/root``, ``/var``, ``/run``, docker socket.
  ``/`` is remounted read-only; ``/tmp`` and ``$HOME`` are fresh tmpfs for every command.
* ``--unshare-all`` (user, pid, net, ipc, uts, cgroup namespaces), ``--die-with-parent``,
  ``--new-session``, ``--clearenv`` + a fixed environment. Never network: bubblewrap could only
  share the host's network namespace (its loopback services, the metadata service), so a sandbox
  asked for with ``Limits.network`` is refused (:class:`SetupNetworkRefused`).
* User: when the worker is root, bwrap itself is started as uid/gid 1000 (no capabilities on the
  host, so only world-readable host files are readable) and the workspace is chowned to 1000; a
  non-root worker runs the sandbox as itself.
* Limits: when the worker is root and cgroup v1 is writable, each sandbox gets memory (+swap),
  pids and CPU cgroups nested under the worker's own; OOM kills are read from
  ``memory.oom_control``. Otherwise rlimits: RLIMIT_AS (memory, per process), RLIMIT_NPROC
  (pids, per uid), RLIMIT_CPU.
* When the command exits, bwrap (pid 1 of the sandbox's pid namespace) exits and the kernel kills
  every process left in the namespace; on timeout the whole session is SIGKILLed.
"""

from __future__ import annotations

import logging
import os
import resource
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path

from workers.sandbox import (
    WORKSPACE_MOUNT,
    ExecResult,
    Limits,
    Mount,
    command_in_workspace,
    with_checkout_git,
)
from workers.sandbox.disk import DiskBudget
from workers.sandbox.docker import HOME, SANDBOX_ENV, SANDBOX_UID, chown_tree, pid_alive
from workers.sandbox.output import NOTE_RESERVE, OutputCap, result
from workers.sandbox.policy import SetupNetworkRefused, setup_network

log = logging.getLogger(__name__)

ETC_ALLOW = [
    "alternatives",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "ssl",
    "ca-certificates",
    "ca-certificates.conf",
    "nsswitch.conf",
    "localtime",
    "debian_version",
    "os-release",
    "python3",
    "python3.11",
    "python3.12",
    "gitconfig",
    "mime.types",
    "timezone",
    "protocols",
    "services",
]
ROOT_DIRS = ["usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32"]
CGROUP_V1 = Path("/sys/fs/cgroup")
CGROUP_PREFIX = "qwenfix-"  # qwenfix-<worker pid>-<sandbox id>


def bwrap_path() -> str | None:
    return shutil.which("bwrap")


def _own_cgroup(controller: str) -> str:
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, ctrls, path = line.split(":", 2)
            if controller in ctrls.split(","):
                return path.lstrip("/")
    except OSError:
        pass
    return ""


_CLONE_NEWNS = 0x00020000
_MS_REC, _MS_PRIVATE, _MS_BIND = 0x4000, 0x40000, 0x1000


def _private_bind(src: str, dst: str) -> None:
    """unshare(CLONE_NEWNS); make / private; bind src on dst (runs in the child, as root)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(_CLONE_NEWNS) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNS)")
    if libc.mount(None, b"/", None, _MS_REC | _MS_PRIVATE, None) != 0:
        raise OSError(ctypes.get_errno(), "mount --make-rprivate /")
    if libc.mount(src.encode(), dst.encode(), None, _MS_BIND | _MS_REC, None) != 0:
        raise OSError(ctypes.get_errno(), f"mount --bind {src} {dst}")


def _bind(src: str, dst: str) -> None:
    """bind src on dst in the mount namespace `_private_bind` made (runs in the child, as root)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.mount(src.encode(), dst.encode(), None, _MS_BIND | _MS_REC, None) != 0:
        raise OSError(ctypes.get_errno(), f"mount --bind {src} {dst}")


class _Cgroups:
    """Per-sandbox cgroup v1 directories (memory, pids, cpu) under the worker's own cgroups."""

    CONTROLLERS = ("memory", "pids", "cpu")

    def __init__(self, name: str, limits: Limits) -> None:
        self.dirs: dict[str, Path] = {}
        for ctrl in self.CONTROLLERS:
            d = CGROUP_V1 / ctrl / _own_cgroup(ctrl) / name
            d.mkdir()
            self.dirs[ctrl] = d
        mem = self.dirs["memory"]
        (mem / "memory.limit_in_bytes").write_text(str(limits.memory_mb * 1024 * 1024))
        memsw = mem / "memory.memsw.limit_in_bytes"
        if memsw.exists():
            memsw.write_text(str(limits.memory_mb * 1024 * 1024))
        (self.dirs["pids"] / "pids.max").write_text(str(limits.pids))
        period = 100_000
        (self.dirs["cpu"] / "cpu.cfs_period_us").write_text(str(period))
        (self.dirs["cpu"] / "cpu.cfs_quota_us").write_text(str(int(limits.cpus * period)))
        self.procs_files = [str(d / "cgroup.procs") for d in self.dirs.values()]

    @staticmethod
    def usable() -> tuple[bool, str]:
        if os.geteuid() != 0:
            return False, "worker is not root"
        for ctrl in _Cgroups.CONTROLLERS:
            d = CGROUP_V1 / ctrl
            if not (d / "cgroup.procs").exists():
                return False, f"cgroup v1 controller {ctrl} not mounted at {d}"
            if not os.access(d / _own_cgroup(ctrl), os.W_OK):
                return False, f"cgroup v1 {ctrl} not writable"
        return True, "cgroup v1 memory/pids/cpu"

    def oom_kills(self) -> int:
        try:
            for line in (self.dirs["memory"] / "memory.oom_control").read_text().splitlines():
                k, _, v = line.partition(" ")
                if k == "oom_kill":
                    return int(v)
        except (OSError, ValueError):
            pass
        return 0

    def kill_all(self) -> None:
        for _ in range(50):
            pids = set()
            for f in self.procs_files:
                try:
                    pids.update(int(p) for p in Path(f).read_text().split())
                except OSError:
                    pass
            if not pids:
                return
            for p in pids:
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.02)

    def remove(self) -> None:
        self.kill_all()
        for d in self.dirs.values():
            for _ in range(50):
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)


class BwrapSandbox:
    def __init__(
        self,
        engine: BwrapEngine,
        workspace: Path,
        limits: Limits,
        uid: int,
        gid: int,
        labels: dict[str, str],
        disk: DiskBudget | None = None,
        mounts: tuple[Mount, ...] = (),
    ) -> None:
        self.engine = engine
        self.mounts = mounts
        self.workspace = workspace
        self.limits = limits
        self.uid, self.gid = uid, gid
        self.labels = labels
        self.id = uuid.uuid4().hex[:12]
        self._lock = threading.Lock()
        self._stopped = False
        self._proc: subprocess.Popen | None = None
        self._disk = disk.watch(workspace) if disk is not None else None
        self._state = Path(tempfile.mkdtemp(prefix=f"qwenfix-bwrap-{self.id}-"))
        (self._state / "passwd").write_text(
            f"root:x:0:0:root:/root:/usr/sbin/nologin\n"
            f"sandbox:x:{uid}:{gid}:sandbox:{HOME}:/bin/bash\n"
            f"nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
        )
        (self._state / "group").write_text(f"root:x:0:\nsandbox:x:{gid}:\nnogroup:x:65534:\n")
        (self._state / "hosts").write_text("127.0.0.1 localhost sandbox\n::1 localhost\n")
        for f in ("passwd", "group", "hosts"):
            (self._state / f).chmod(0o644)
        self._state.chmod(0o755)
        # root worker: a staging mountpoint, bound to the workspace in each command's mount ns
        self._ws_source = self.workspace
        self._mount_sources = [Path(m.source) for m in mounts]
        if os.geteuid() == 0:
            self._ws_source = self._state / "workspace"
            self._ws_source.mkdir(mode=0o755)
            # like the workspace, mounts are staged where uid 1000 can reach them
            self._mount_sources = [self._state / f"mount-{i}" for i in range(len(mounts))]
            for staged in self._mount_sources:
                staged.mkdir(mode=0o755)
        self.cgroups: _Cgroups | None = None
        if engine.use_cgroups:
            try:
                self.cgroups = _Cgroups(f"{CGROUP_PREFIX}{os.getpid()}-{self.id}", limits)
            except OSError as e:
                log.warning("bwrap sandbox: cgroups unavailable (%s), using rlimits", e)

    def _argv(self, argv: list[str], workdir: str) -> list[str]:
        root = self.engine.rootfs
        a = [
            self.engine.bwrap,
            "--unshare-all",
            "--die-with-parent",
            "--new-session",
            "--clearenv",
            "--unshare-user",
            "--uid",
            str(self.uid),
            "--gid",
            str(self.gid),
            "--disable-userns",
            "--cap-drop",
            "ALL",
            "--hostname",
            "sandbox",
        ]
        for d in ROOT_DIRS:
            src = root / d
            if src.is_symlink():
                a += ["--symlink", os.readlink(src), f"/{d}"]
            elif src.is_dir():
                a += ["--ro-bind", str(src), f"/{d}"]
        a += ["--dir", "/etc"]
        for name in ETC_ALLOW:
            src = root / "etc" / name
            if src.exists():
                a += ["--ro-bind", str(src), f"/etc/{name}"]
        for name in ("passwd", "group", "hosts"):
            a += ["--ro-bind", str(self._state / name), f"/etc/{name}"]
        a += [
            "--dev",
            "/dev",
            "--proc",
            "/proc",
            "--size",
            str(1 << 30),
            "--tmpfs",
            "/tmp",
            "--perms",
            "0700",
            "--size",
            str(512 << 20),
            "--tmpfs",
            HOME,
            "--bind",
            str(self._ws_source),
            WORKSPACE_MOUNT,
        ]
        for mount, source in zip(self.mounts, self._mount_sources, strict=True):
            a += ["--ro-bind" if mount.read_only else "--bind", str(source), mount.target]
        a += [
            "--remount-ro",
            "/",
            "--chdir",
            workdir,
        ]
        for k, v in SANDBOX_ENV.items():
            a += ["--setenv", k, v]
        return a + ["--", *argv]

    def _preexec(self):
        limits = self.limits
        procs = self.cgroups.procs_files if self.cgroups else []
        drop = os.geteuid() == 0
        uid, gid = self.uid, self.gid
        fsize = self._disk.budget.limit_bytes if self._disk is not None else None
        workspace, staging = self.workspace, self._ws_source
        mounts = list(zip(self.mounts, self._mount_sources, strict=True)) if drop else []

        def fn() -> None:
            me = str(os.getpid())
            for f in procs:
                with open(f, "w") as fh:
                    fh.write(me)
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            if fsize is not None:  # no single file larger than the job's disk budget
                resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
            if not procs:
                mem = limits.memory_mb * 1024 * 1024
                resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
                resource.setrlimit(resource.RLIMIT_NPROC, (limits.pids, limits.pids))
            if drop:
                # The workspace may sit below a directory uid 1000 cannot traverse (pytest's
                # 0700 tmp, /root...): bind it, in a mount namespace private to this command,
                # onto a traversable staging directory while we are still root.
                _private_bind(str(workspace), str(staging))
                for mount, source in mounts:
                    _bind(str(mount.source), str(source))
                os.setgroups([])
                os.setgid(gid)
                os.setuid(uid)

        return fn

    def exec(
        self, command: str | list[str], cwd: str = ".", timeout: float | None = None
    ) -> ExecResult:
        if self._stopped:
            raise RuntimeError("sandbox is stopped")
        argv, workdir = command_in_workspace(command, cwd)
        limit = self.limits.timeout_s if timeout is None else timeout
        with self._lock:
            return self._exec(argv, workdir, limit)

    def _exec(self, argv: list[str], workdir: str, limit: float) -> ExecResult:
        cap = OutputCap(self.limits.output_bytes - NOTE_RESERVE)
        t0 = time.monotonic()
        oom_before = self.cgroups.oom_kills() if self.cgroups else 0
        if self._disk is not None:
            self._disk.begin()
        if not self.cgroups:
            cpu = int(limit * max(self.limits.cpus, 1)) + 5
        proc = subprocess.Popen(
            self._argv(argv, workdir),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env={},
            cwd="/",
            start_new_session=True,
            preexec_fn=self._preexec(),
            close_fds=True,
        )
        self._proc = proc
        if not self.cgroups:
            try:
                resource.prlimit(proc.pid, resource.RLIMIT_CPU, (cpu, cpu))
            except OSError:
                pass
        assert proc.stdout is not None

        def pump() -> None:
            fd = proc.stdout.fileno()
            while True:
                try:
                    buf = os.read(fd, 65536)
                except OSError:
                    return
                if not buf:
                    return
                cap.write(buf)

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        timed_out = disk_over = False
        deadline = t0 + limit
        while True:
            try:
                proc.wait(timeout=max(0.0, min(0.25, deadline - time.monotonic())))
                break
            except subprocess.TimeoutExpired:
                timed_out = time.monotonic() >= deadline
                disk_over = not timed_out and self._disk is not None and self._disk.exceeded()
                if timed_out or disk_over:
                    self._kill(proc)
                    proc.wait()
                    break
        if self.cgroups:
            self.cgroups.kill_all()
        reader.join(timeout=5)
        if reader.is_alive():  # something still holds the pipe: kill the session
            self._kill(proc)
            reader.join(timeout=5)
        proc.stdout.close()
        self._proc = None
        duration = time.monotonic() - t0
        code = proc.returncode
        exit_code = 128 - code if code < 0 else code  # -9 -> 137 like a shell
        oom = bool(self.cgroups and self.cgroups.oom_kills() > oom_before)
        if self._disk is not None:  # what it left (also catches a command faster than the watch)
            disk_over = self._disk.exceeded(force=True) or disk_over
        return result(cap, exit_code or (137 if disk_over else 0), duration, timed_out, oom,
                      self.limits.memory_mb, limit, disk_exceeded_mb=self._disk.budget.limit_mb if disk_over else 0)

    def _kill(self, proc: subprocess.Popen) -> None:
        inits = _children(proc.pid)  # bwrap's child is the pid namespace's init
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if self.cgroups:
            self.cgroups.kill_all()
        # The kernel kills what is left in the namespace (a `setsid` escapee too) as its init dies,
        # and the init is gone only once they are: wait for that, so nothing outlives the command.
        deadline = time.monotonic() + 5
        while any(pid_alive(pid) for pid in inits) and time.monotonic() < deadline:  # a zombie is done
            time.sleep(0.01)

    def refresh(self) -> None:
        """Every command already gets new /tmp and $HOME and leaves no process: only ownership."""
        if self._stopped:
            raise RuntimeError("sandbox is stopped")
        if os.geteuid() == 0:
            chown_tree(self.workspace, self.uid, self.gid)
        if self._disk is not None:
            self._disk.rebase()

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self._disk is not None:
            self._disk.close()
        if self._proc is not None:
            self._kill(self._proc)
        if self.cgroups:
            self.cgroups.remove()
        shutil.rmtree(self._state, ignore_errors=True)

    def __enter__(self) -> BwrapSandbox:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except (OSError, ValueError):
        return []


class BwrapEngine:
    name = "bwrap"

    def __init__(self, rootfs: Path | str = "/", use_cgroups: bool | None = None) -> None:
        self.rootfs = Path(rootfs)
        self.bwrap = bwrap_path() or "bwrap"
        if use_cgroups is None:
            use_cgroups = _Cgroups.usable()[0]
        self.use_cgroups = use_cgroups

    def available(self) -> tuple[bool, str]:
        """Actually start a tiny sandbox: bwrap may be installed but forbidden (no userns)."""
        if not bwrap_path():
            return False, "bwrap not installed (apt-get install bubblewrap)"
        with tempfile.TemporaryDirectory() as tmp:
            ws = Path(tmp)
            try:
                sb = self.start(ws, "", Limits(timeout_s=10))
            except Exception as e:
                return False, f"bwrap cannot start a sandbox: {e}"
            try:
                r = sb.exec(["true"])
            finally:
                sb.stop()
        if r.exit_code != 0:
            return False, f"bwrap cannot run a sandbox here: {r.output.strip()[:300]}"
        how = _Cgroups.usable()[1] if self.use_cgroups else "rlimits (per process / per uid)"
        return True, f"bubblewrap works; limits via {how}"

    def start(
        self,
        workspace: Path,
        image: str = "",
        limits: Limits | None = None,
        labels: dict[str, str] | None = None,
        disk: DiskBudget | None = None,
        mounts: tuple[Mount, ...] = (),
    ) -> BwrapSandbox:
        """``image`` is ignored: the root filesystem is ``self.rootfs`` (the host by default)."""
        if limits is not None and limits.network:
            raise SetupNetworkRefused(setup_network(True, self.name).reason)
        workspace = Path(workspace).resolve()
        if not workspace.is_dir():
            raise FileNotFoundError(f"workspace {workspace} is not a directory")
        if os.geteuid() == 0:
            uid = gid = SANDBOX_UID
            chown_tree(workspace, uid, gid)
        else:
            uid, gid = os.getuid(), os.getgid()
        mounts = with_checkout_git(workspace, mounts, uid, gid)
        for mount in mounts:
            if not Path(mount.source).is_dir():
                raise FileNotFoundError(f"mount source {mount.source} is not a directory")
            if not mount.read_only and os.geteuid() == 0:
                os.chown(mount.source, uid, gid, follow_symlinks=False)
        return BwrapSandbox(self, workspace, limits or Limits(), uid, gid, dict(labels or {}), disk, tuple(mounts))


def sweep_orphans() -> list[str]:
    """Remove cgroups left by bwrap sandboxes of workers that died (their pid is gone)."""
    removed: list[str] = []
    for ctrl in _Cgroups.CONTROLLERS:
        base = CGROUP_V1 / ctrl / _own_cgroup(ctrl)
        if not base.is_dir():
            continue
        for d in base.glob(f"{CGROUP_PREFIX}*"):
            pid = d.name[len(CGROUP_PREFIX) :].split("-", 1)[0]
            if not pid.isdigit() or pid_alive(int(pid)):
                continue
            for p in (d / "cgroup.procs").read_text().split():
                try:
                    os.kill(int(p), signal.SIGKILL)
                except ProcessLookupError:
                    pass
            for _ in range(50):
                try:
                    d.rmdir()
                    removed.append(str(d))
                    break
                except OSError:
                    time.sleep(0.02)
    return removed
