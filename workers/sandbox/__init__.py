"""Sandbox protocol: run untrusted pull-request code with no network, no secrets and hard limits."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from workers.sandbox.disk import DiskBudget
from workers.workspace.checkout_git import SANDBOX_GIT_DIR, checkout_git_dir

WORKSPACE_MOUNT = "/workspace"  # where the worktree appears inside every sandbox


def command_in_workspace(command: str | list[str], cwd: str = ".") -> tuple[list[str], str]:
    """(argv, absolute working directory) for an exec; a shell string runs through `sh -c`.
    A cwd that leaves the workspace is refused."""
    argv = ["sh", "-c", command] if isinstance(command, str) else list(command)
    workdir = os.path.normpath(os.path.join(WORKSPACE_MOUNT, cwd))
    if not (workdir == WORKSPACE_MOUNT or workdir.startswith(WORKSPACE_MOUNT + "/")):
        raise ValueError(f"cwd must stay inside the workspace: {cwd!r}")
    return argv, workdir


@dataclass(frozen=True)
class Mount:
    """A host directory shown inside the sandbox besides the workspace: the job's setup environment
    (read-write for the setup phase only), the operator's package cache (read-only)."""

    source: Path
    target: str  # absolute path inside the sandbox, outside the workspace
    read_only: bool = True

    def __post_init__(self) -> None:
        target = os.path.normpath(self.target)
        if not target.startswith("/") or target in ("/", WORKSPACE_MOUNT) \
                or target.startswith(WORKSPACE_MOUNT + "/") or target != self.target:
            raise ValueError(f"a mount target must be an absolute path outside the workspace: {self.target!r}")


def with_checkout_git(workspace: Path, mounts: tuple[Mount, ...], uid: int, gid: int) -> tuple[Mount, ...]:
    """`mounts` and, when the workspace is a worktree slot, its commit as a git repository (read-only)."""
    view = checkout_git_dir(workspace, uid, gid)
    return (*mounts, Mount(view, SANDBOX_GIT_DIR)) if view is not None else tuple(mounts)


@dataclass(frozen=True)
class Limits:
    memory_mb: int = 2048
    cpus: float = 1.0
    pids: int = 256
    timeout_s: float = 600.0  # per command, wall time
    output_bytes: int = 64_000  # head + tail kept within this cap
    network: bool = False

    @classmethod
    def from_settings(cls, settings, network: bool = False) -> Limits:
        """The operator's limits (QWENFIX_SANDBOX_*)."""
        return cls(memory_mb=settings.sandbox_memory_mb, cpus=settings.sandbox_cpus, pids=settings.sandbox_pids,
                   timeout_s=settings.sandbox_command_timeout_s, output_bytes=settings.sandbox_output_bytes,
                   network=network)


@dataclass(frozen=True)
class ExecResult:
    exit_code: int
    output: str  # stdout+stderr interleaved, head + tail within Limits.output_bytes
    duration_s: float
    timed_out: bool = False
    oom_killed: bool = False
    truncated: bool = False
    disk_exceeded_mb: int = 0  # the job's disk budget, when this command was stopped for writing past it

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out and not self.oom_killed and not self.disk_exceeded_mb


class Sandbox(Protocol):
    workspace: Path  # host path of the worktree, mounted at WORKSPACE_MOUNT

    def exec(
        self, command: str | list[str], cwd: str = ".", timeout: float | None = None
    ) -> ExecResult:
        """Run argv (or a shell string via sh -c) with cwd relative to the workspace."""

    def refresh(self) -> None:
        """Ready for another use after the worker reset or patched the workspace: no process left,
        /tmp and $HOME empty, the workspace owned by the sandbox user. Raises when it cannot."""

    def stop(self) -> None: ...


class SandboxEngine(Protocol):
    name: str

    def start(
        self,
        workspace: Path,
        image: str,
        limits: Limits,
        labels: dict[str, str] | None = None,
        disk: DiskBudget | None = None,  # the job's; its commands are stopped when they write past it
        mounts: tuple[Mount, ...] = (),
    ) -> Sandbox: ...
