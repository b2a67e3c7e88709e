"""Docker sandbox engine: one long-lived, locked-down container per job.

Container layout (see also DESIGN.md, "Rules that keep users safe"):

* network ``none`` (``Limits.network=True`` attaches ``DockerEngine.network``, default "bridge";
  never "host"), and then, before anything runs in it, routes to the metadata service and to every
  address of the worker's host are blackholed inside the container's own network namespace by a
  short-lived helper container that shares only that namespace (``NET_ADMIN`` there, no files of
  the job); if that fails the sandbox is removed and :class:`SetupNetworkRefused` raised;
* read-only root filesystem, tmpfs ``/tmp`` and ``$HOME`` (``/home/sandbox``), the worktree
  bind-mounted read-write at ``/workspace``;
* ``cap_drop=ALL``, ``no-new-privileges``, pids / memory (= memory+swap) / CPU limits;
* a fixed, minimal environment: nothing from the worker's environment reaches the container;
* labels ``qwenfix=1``, ``qwenfix.job=<job id>``, ``qwenfix.worker=<host:pid>`` and the caller's,
  so :func:`sweep_orphans` can find containers left behind by a crashed worker.

Users: the idle process (docker-init + ``sleep infinity``) runs as ``nobody`` (65534), commands run
as the *sandbox user*. When the worker runs as root the sandbox user is uid/gid 1000 and the
workspace tree is chowned to 1000:1000 at start (the worker, being root, can still read and write
it; git in the worker needs ``safe.directory`` for it). When the worker is not root, commands run
with the workspace owner's uid/gid and nothing is chowned. Because the idle process belongs to
another uid, ``kill -KILL -1`` issued as the sandbox user after every command removes every
process the command left behind (daemons, ``(sleep &)``, fork bombs) without killing the
container.
"""

from __future__ import annotations

import logging
import os
import socket
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
from workers.sandbox.output import NOTE_RESERVE, OutputCap, result
from workers.sandbox.policy import SetupNetworkRefused, local_addresses, setup_network
from workers.workspace import confined

log = logging.getLogger(__name__)

LABEL = "qwenfix"
LABEL_JOB = "qwenfix.job"
LABEL_WORKER = "qwenfix.worker"
LABEL_HOST = "qwenfix.host"
LABEL_PID = "qwenfix.pid"
SANDBOX_UID = 1000
IDLE_UID = 65534  # nobody: owns the container's idle process, out of reach of `kill -1`
HOME = "/home/sandbox"
SANDBOX_ENV = {
    # like a CI runner: what `pip install` put in $HOME first, then the image's Python venv
    "PATH": f"{HOME}/.local/bin:/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": HOME,
    "USER": "sandbox",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "TERM": "dumb",
    "CI": "true",
    # what a GitHub-hosted runner tells every step, and scripts read: `cd "$GITHUB_WORKSPACE"`
    "GITHUB_ACTIONS": "true",
    "GITHUB_WORKSPACE": WORKSPACE_MOUNT,
    "RUNNER_OS": "Linux",
    "RUNNER_TEMP": "/tmp",
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONUNBUFFERED": "1",
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    "npm_config_update_notifier": "false",
    "TMPDIR": "/tmp",
}
# Housekeeping scripts take their tools from the read-only image only: $HOME/.local/bin is the
# sandbox's to write, and a planted `find` or `kill` there must not run in their place.
HOUSEKEEPING_ENV = {**SANDBOX_ENV, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
# Run as the sandbox user after every command: kill what is left, then report OOM counters
# (cgroup v1 memory.oom_control "oom_kill N", cgroup v2 memory.events "oom_kill N").
_REAP = (
    "kill -KILL -1 2>/dev/null; "
    "cat /sys/fs/cgroup/memory/memory.oom_control /sys/fs/cgroup/memory.events 2>/dev/null; true"
)


# Run as the sandbox user to hand a used sandbox to the next stage: nothing running, nothing kept.
_WIPE = (
    "kill -KILL -1 2>/dev/null; chmod -R u+rwX /tmp /home/sandbox 2>/dev/null; "
    "find /tmp /home/sandbox -mindepth 1 -maxdepth 1 -exec rm -rf {} + 2>/dev/null; "
    'test -z "$(find /tmp /home/sandbox -mindepth 1 -print -quit)"'
)


# Run by the helper container (python3 -I from the sandbox image, root with NET_ADMIN only, in the
# sandbox's network namespace): one RTM_NEWROUTE blackhole route per CIDR in argv, over netlink.
_BLACKHOLE = r"""
import ipaddress, os, socket, struct, sys
v6_off = not os.path.exists("/proc/net/if_inet6")
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
s.bind((0, 0))
for seq, cidr in enumerate(sys.argv[1:], 1):
    net = ipaddress.ip_network(cidr)
    if net.version == 6 and v6_off:
        continue
    dst = net.network_address.packed
    family = socket.AF_INET if net.version == 4 else socket.AF_INET6
    body = struct.pack("BBBBBBBBI", family, net.prefixlen, 0, 0, 254, 4, 0, 6, 0)
    body += struct.pack("HH", 4 + len(dst), 1) + dst
    s.send(struct.pack("IHHII", 16 + len(body), 24, 0x1 | 0x4 | 0x100 | 0x400, seq, 0) + body)
    reply = s.recv(65536)
    kind, err = struct.unpack("H", reply[4:6])[0], struct.unpack("i", reply[16:20])[0]
    if kind == 2 and err:
        sys.exit(f"{cidr}: {os.strerror(-err)}")
print("blackholed", len(sys.argv) - 1)
"""


def _client():
    import docker

    return docker.from_env(timeout=120)


def sandbox_user_for(workspace: Path) -> tuple[int, int]:
    """uid/gid commands run as: the workspace owner when the worker isn't root, else 1000."""
    if os.geteuid() != 0:
        st = workspace.stat()
        return st.st_uid, st.st_gid
    return SANDBOX_UID, SANDBOX_UID


def chown_tree(path: Path, uid: int, gid: int) -> None:
    """Give the sandbox user the workspace: never through a link or a hard link (see confined)."""
    confined.chown_tree(path, uid, gid)


def _parse_oom(text: str) -> int | None:
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == "oom_kill" and parts[1].isdigit():
            return int(parts[1])
    return None


def _worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class DockerSandbox:
    """A running sandbox container. Commands run one at a time."""

    def __init__(
        self, engine: DockerEngine, container, workspace: Path, limits: Limits, uid: int, gid: int,
        disk: DiskBudget | None = None,
    ) -> None:
        self.engine = engine
        self.container = container
        self.id: str = container.id
        self.workspace = workspace
        self.limits = limits
        self.uid, self.gid = uid, gid
        self._lock = threading.Lock()
        self._oom_count = 0
        self._oom_flag = False
        self._stopped = False
        self.restarts = 0
        self._disk = disk.watch(workspace) if disk is not None else None

    # -- helpers -----------------------------------------------------------------------------
    def _api(self):
        return self.engine.client.api

    def _reap(self) -> int | None:
        """Kill every process the sandbox user has in the container; return the OOM counter.

        Retries for a few seconds (a fork bomb or an OOM in progress can make one exec fail);
        as a last resort restarts the container, which kills everything: the workspace
        survives, /tmp and $HOME do not (``self.restarts`` counts those).
        """
        last = ""
        deadline = time.monotonic() + 6
        attempt = 0
        while True:
            attempt += 1
            try:
                code, out = self._quick(_REAP)
                if code == 0:
                    return _parse_oom(out)
                last = f"exit {code}: {out.strip()[:200]}"
            except Exception as e:  # pids exhausted, OOM in progress, daemon busy...
                last = f"{type(e).__name__}: {e}"
            log.info("sandbox %s: reap attempt %d failed: %s", self.id[:12], attempt, last)
            if time.monotonic() >= deadline:
                break
            time.sleep(min(0.1 * attempt, 1.0))
        log.warning(
            "sandbox %s: could not reap processes (%s), restarting the container",
            self.id[:12],
            last,
        )
        self.container.restart(timeout=0)
        self.restarts += 1
        self._oom_count = 0  # the container's cgroup is new
        return None

    def _quick(self, script: str) -> tuple[int | None, str]:
        """(exit code, output) of a short housekeeping script run as the sandbox user."""
        api = self._api()
        ex = api.exec_create(self.id, ["sh", "-c", script], user=f"{self.uid}:{self.gid}",
                             environment=HOUSEKEEPING_ENV)
        out = api.exec_start(ex["Id"]).decode("utf-8", "replace")
        return api.exec_inspect(ex["Id"]).get("ExitCode"), out

    def _oom_flag_now(self) -> bool:
        try:
            return bool(self._api().inspect_container(self.id)["State"].get("OOMKilled"))
        except Exception:
            return False

    # -- protocol ----------------------------------------------------------------------------
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
        api = self._api()
        cap = OutputCap(self.limits.output_bytes - NOTE_RESERVE)
        t0 = time.monotonic()
        if self._disk is not None:
            self._disk.begin()
        try:
            ex = api.exec_create(
                self.id,
                argv,
                user=f"{self.uid}:{self.gid}",
                environment=SANDBOX_ENV,
                workdir=workdir,
            )
            stream = api.exec_start(ex["Id"], stream=True)
        except Exception as e:
            # e.g. the pids limit is exhausted, or the binary does not exist
            return ExecResult(
                exit_code=127,
                output=f"qwenfix: could not start command: {e}",
                duration_s=time.monotonic() - t0,
            )
        exec_id = ex["Id"]

        def pump() -> None:
            try:
                for chunk in stream:
                    cap.write(chunk)
            except Exception as e:  # connection closed under us after a restart
                log.debug("exec stream ended: %s", e)

        reader = threading.Thread(target=pump, daemon=True, name=f"sandbox-out-{self.id[:8]}")
        reader.start()
        deadline = t0 + limit
        timed_out = disk_over = False
        exit_code: int | None = None
        poll = 0.02
        while True:
            reader.join(timeout=max(0.0, min(poll, deadline - time.monotonic())))
            if not reader.is_alive():
                break
            if time.monotonic() >= deadline:
                timed_out = True
                break
            if self._disk is not None and self._disk.exceeded():
                disk_over = True
                break
            poll = min(poll * 2, 0.5)
            info = api.exec_inspect(exec_id)
            if not info.get("Running"):
                # The command is done but something it started still holds the output pipe.
                exit_code = info.get("ExitCode")
                reader.join(timeout=0.2)
                break
        restarts = self.restarts
        oom_count = self._reap()  # kills leftovers, which also closes the stream
        reader.join(timeout=10)
        if self._disk is not None:  # what it left (also catches a command faster than the watch)
            disk_over = self._disk.exceeded(force=True) or disk_over
        duration = time.monotonic() - t0
        if exit_code is None:
            try:
                exit_code = api.exec_inspect(exec_id).get("ExitCode")
            except Exception:  # exec instances are gone after a restart
                exit_code = None
        if exit_code is None:
            exit_code = 137 if timed_out else -1
        if timed_out:
            exit_code = 124 if exit_code in (None, -1, 0) else exit_code
        if disk_over and exit_code in (None, -1, 0):
            exit_code = 137
        oom = False
        if oom_count is not None:
            oom = oom_count > self._oom_count
            self._oom_count = oom_count
        if oom_count is None:  # no cgroup counter readable: fall back to the container's flag
            flag = self._oom_flag_now()
            if flag and not self._oom_flag:
                oom = True
            self._oom_flag = flag
        restarted = self.restarts != restarts
        note = "\n[qwenfix: the sandbox had to be restarted; /tmp and $HOME were reset]\n" if restarted else ""
        return result(cap, exit_code, duration, timed_out, oom, self.limits.memory_mb, limit, note,
                      self._disk.budget.limit_mb if disk_over and self._disk is not None else 0)

    def refresh(self) -> None:
        if self._stopped:
            raise RuntimeError("sandbox is stopped")
        if os.geteuid() == 0:
            chown_tree(self.workspace, self.uid, self.gid)
        with self._lock:
            code, out = self._quick(_WIPE)
        if code != 0:
            raise RuntimeError(f"could not empty /tmp and $HOME (exit {code}): {out.strip()[-300:]}")
        if self._disk is not None:
            self._disk.rebase()

    def stop(self) -> None:
        self._stopped = True
        if self._disk is not None:
            self._disk.close()
        try:
            self.container.remove(force=True)
        except Exception as e:
            import docker

            if not isinstance(e, docker.errors.NotFound):
                raise

    def __enter__(self) -> DockerSandbox:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


class DockerEngine:
    name = "docker"

    def __init__(self, client=None, network: str = "bridge") -> None:
        self._client = client
        self.network = network  # only used when Limits.network is True; never "host"
        if network == "host":
            raise ValueError("the host network namespace is never given to a sandbox")

    @property
    def client(self):
        if self._client is None:
            self._client = _client()
        return self._client

    def available(self) -> tuple[bool, str]:
        try:
            v = self.client.version()
            return True, f"Docker engine {v.get('Version')} reachable"
        except Exception as e:
            return False, f"Docker engine not reachable: {e}"

    def start(
        self, workspace: Path, image: str, limits: Limits, labels: dict[str, str] | None = None,
        disk: DiskBudget | None = None,
        mounts: tuple[Mount, ...] = (),
    ) -> DockerSandbox:
        workspace = Path(workspace).resolve()
        if not workspace.is_dir():
            raise FileNotFoundError(f"workspace {workspace} is not a directory")
        uid, gid = sandbox_user_for(workspace)
        if os.geteuid() == 0:
            chown_tree(workspace, uid, gid)
        volumes = {str(workspace): {"bind": WORKSPACE_MOUNT, "mode": "rw"}}
        for mount in with_checkout_git(workspace, mounts, uid, gid):
            source = Path(mount.source).resolve()
            if not source.is_dir():
                raise FileNotFoundError(f"mount source {source} is not a directory")
            if not mount.read_only and os.geteuid() == 0:
                os.chown(source, uid, gid, follow_symlinks=False)  # the sandbox user writes there
            volumes[str(source)] = {"bind": mount.target, "mode": "ro" if mount.read_only else "rw"}
        all_labels = {
            LABEL: "1",
            LABEL_JOB: (labels or {}).get(LABEL_JOB, ""),
            LABEL_WORKER: _worker_id(),
            LABEL_HOST: socket.gethostname(),
            LABEL_PID: str(os.getpid()),
            "qwenfix.workspace": str(workspace),
            **(labels or {}),
        }
        if limits.network and self.network == "host":
            raise ValueError("the host network namespace is never given to a sandbox")
        from docker.types import Ulimit

        mem = f"{int(limits.memory_mb)}m"
        container = self.client.containers.run(
            image,
            entrypoint=["sleep", "infinity"],
            command=[],
            init=True,
            detach=True,
            name=f"qwenfix-{uuid.uuid4().hex[:12]}",
            hostname="sandbox",
            user=f"{IDLE_UID}:{IDLE_UID}",
            working_dir=WORKSPACE_MOUNT,
            environment=SANDBOX_ENV,
            labels=all_labels,
            network_mode=self.network if limits.network else "none",
            read_only=True,
            tmpfs={
                # exec, as on CI runners: pip puts compiled extensions and scripts in $HOME
                "/tmp": "rw,exec,nosuid,nodev,size=1g,mode=1777",
                HOME: f"rw,exec,nosuid,nodev,size=512m,mode=0700,uid={uid},gid={gid}",
            },
            volumes=volumes,
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            pids_limit=int(limits.pids),
            mem_limit=mem,
            memswap_limit=mem,
            nano_cpus=int(limits.cpus * 1e9),
            ulimits=[
                Ulimit(name="core", soft=0, hard=0),
                Ulimit(name="nofile", soft=4096, hard=4096),
                # no single file larger than the job's whole disk budget (see workers/sandbox/disk.py)
                *([Ulimit(name="fsize", soft=disk.limit_bytes, hard=disk.limit_bytes)] if disk else []),
            ],
            ipc_mode="private",
            stop_signal="SIGKILL",
        )
        if limits.network:
            try:
                self._block_host_and_metadata(container, image, all_labels)
            except Exception:
                container.remove(force=True)
                raise
        return DockerSandbox(self, container, workspace, limits, uid, gid, disk)

    def _block_host_and_metadata(self, container, image: str, labels: dict[str, str]) -> None:
        """Blackhole the setup policy's destinations (and the bridge's gateway, the host's end)
        in the sandbox's network namespace before any command runs there."""
        container.reload()
        networks = (container.attrs.get("NetworkSettings") or {}).get("Networks") or {}
        gateways = [v for n in networks.values() for v in (n.get("Gateway"), n.get("IPv6Gateway")) if v]
        blocked = setup_network(True, self.name, [*local_addresses(), *gateways]).blocked
        helper = self.client.containers.create(
            image, entrypoint=["python3", "-I", "-c", _BLACKHOLE], command=list(blocked),
            network_mode=f"container:{container.id}", user="0:0", working_dir="/", environment={},
            cap_drop=["ALL"], cap_add=["NET_ADMIN"], security_opt=["no-new-privileges"],
            read_only=True, labels={**labels, "qwenfix.role": "network-policy"}, pids_limit=16, mem_limit="64m",
        )
        try:
            helper.start()
            status = helper.wait(timeout=60).get("StatusCode")
            detail = helper.logs(stdout=True, stderr=True).decode("utf-8", "replace")
        except Exception as exc:  # noqa: BLE001 — no python3 in the image, a hung helper: no network then
            status, detail = None, f"{type(exc).__name__}: {exc}"
        finally:
            helper.remove(force=True)
        if status != 0:
            raise SetupNetworkRefused(
                f"could not block the metadata service and the host's addresses in the setup sandbox "
                f"({detail.strip()[-300:]}), so it gets no network")


def list_sandboxes(client=None) -> list:
    client = client or _client()
    # a sandbox removed between the listing and its inspection (its job ended meanwhile) is left out
    return client.containers.list(all=True, filters={"label": f"{LABEL}=1"}, ignore_removed=True)


def sweep_orphans(
    max_age_s: float = 0.0,
    alive_job_ids: set[str] | frozenset[str] | None = None,
    client=None,
    labels: dict[str, str] | None = None,
) -> list[str]:
    """Remove qwenfix sandbox containers whose job is not alive; returns removed container ids.

    A container started on this host is kept exactly while the process that started it
    (``qwenfix.pid``) runs — so a sweep never pulls a sandbox from under a live worker, and the
    sandboxes of a worker that was killed go even when its job was taken over and runs on
    elsewhere. One from another host is kept while its ``qwenfix.job`` label is in
    ``alive_job_ids``. Either is kept while younger than ``max_age_s`` seconds. ``labels``
    narrows the sweep to containers carrying all of them (tests use it to stay away from each
    other's sandboxes; a takeover uses it for its job's).
    """
    client = client or _client()
    removed: list[str] = []
    now = time.time()
    host = socket.gethostname()
    for c in list_sandboxes(client):
        own = c.labels or {}
        if labels and any(own.get(k) != v for k, v in labels.items()):
            continue
        labels_ = own
        job = labels_.get(LABEL_JOB, "")
        pid = labels_.get(LABEL_PID, "")
        if labels_.get(LABEL_HOST) == host and pid.isdigit():
            if pid_alive(int(pid)):  # a live process on this host owns it (a worker, `qwenfix repair`)
                continue
        elif alive_job_ids is not None and job and job in alive_job_ids:
            continue
        if max_age_s > 0:
            created = c.attrs.get("Created", "")
            age = now - _parse_docker_time(created) if created else max_age_s + 1
            if age < max_age_s:
                continue
        try:
            c.remove(force=True)
            removed.append(c.id)
        except Exception as e:
            log.warning("could not remove orphan sandbox %s: %s", c.id[:12], e)
    return removed


def pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie is not alive
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def _parse_docker_time(s: str | int | float) -> float:
    from datetime import datetime

    if isinstance(s, (int, float)):  # the list API gives a unix timestamp
        return float(s)

    s = s.rstrip("Z")
    if "." in s:
        base, frac = s.split(".", 1)
        s = f"{base}.{frac[:6]}"
    try:
        return datetime.fromisoformat(s + "+00:00").timestamp()
    except ValueError:
        return 0.0
