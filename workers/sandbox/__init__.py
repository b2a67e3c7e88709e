"""Sandbox protocol: run untrusted pull-request code with no network, no secrets and hard limits."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

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
    ) -> Sandbox: ...


ENGINES = ("docker", "bwrap")


def _engine(name: str) -> SandboxEngine:
    if name == "docker":
        from workers.sandbox.docker import DockerEngine

        return DockerEngine()
    if name == "bwrap":
        from workers.sandbox.bwrap import BwrapEngine

        return BwrapEngine()
    raise ValueError(f"unknown sandbox engine {name!r} (auto | docker | bwrap)")


def engine_status(image: str | None = None) -> list[tuple[str, bool, str]]:
    """(engine, usable, why) for every engine, for `qwenfix doctor`.

    Docker counts as usable only when the engine answers and ``image`` (default: the
    settings' sandbox image) is present; bwrap only when a real sandbox starts.
    """
    if image is None:
        from app.config import get_settings

        image = get_settings().sandbox_image
    out: list[tuple[str, bool, str]] = []
    from workers.sandbox.docker import DockerEngine
    from workers.sandbox.image import image_exists

    ok, why = DockerEngine().available()
    if ok and not image_exists(image):
        ok, why = False, f"{why}, but image {image} is missing: run `qwenfix sandbox build`"
    elif ok:
        why = f"{why}, image {image} present"
    out.append(("docker", ok, why))
    from workers.sandbox.bwrap import BwrapEngine

    try:
        ok, why = BwrapEngine().available()
    except Exception as e:  # pragma: no cover - defensive
        ok, why = False, f"bwrap check failed: {e}"
    out.append(("bwrap", ok, why))
    return out


def select_engine(name: str = "auto", image: str | None = None) -> SandboxEngine:
    """The engine named, or for "auto" the first usable of docker, bwrap.

    Raises RuntimeError naming every engine's reason when none can be used.
    """
    if name != "auto":
        return _engine(name)
    status = engine_status(image)
    for engine_name, ok, _ in status:
        if ok:
            return _engine(engine_name)
    reasons = "; ".join(f"{n}: {why}" for n, _, why in status)
    raise RuntimeError(f"no sandbox engine is usable ({reasons})")
