"""Sandbox protocol: run untrusted pull-request code with no network, no secrets and hard limits."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

WORKSPACE_MOUNT = "/workspace"  # where the worktree appears inside every sandbox


@dataclass(frozen=True)
class Limits:
    memory_mb: int = 2048
    cpus: float = 1.0
    pids: int = 256
    timeout_s: float = 600.0  # per command, wall time
    output_bytes: int = 64_000  # head + tail kept within this cap
    network: bool = False


@dataclass(frozen=True)
class ExecResult:
    exit_code: int
    output: str  # stdout+stderr interleaved, head + tail within Limits.output_bytes
    duration_s: float
    timed_out: bool = False
    oom_killed: bool = False
    truncated: bool = False

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out and not self.oom_killed


class Sandbox(Protocol):
    workspace: Path  # host path of the worktree, mounted at WORKSPACE_MOUNT

    def exec(
        self, command: str | list[str], cwd: str = ".", timeout: float | None = None
    ) -> ExecResult:
        """Run argv (or a shell string via sh -c) with cwd relative to the workspace."""

    def stop(self) -> None: ...


class SandboxEngine(Protocol):
    name: str

    def start(
        self,
        workspace: Path,
        image: str,
        limits: Limits,
        labels: dict[str, str] = field(default_factory=dict),
    ) -> Sandbox: ...
