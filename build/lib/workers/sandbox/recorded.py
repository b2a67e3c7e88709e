"""A sandbox that reports every command it runs — argv, working directory, exit code, duration — to
the job's audit trail, whatever engine runs it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from workers.sandbox import ExecResult, Sandbox, command_in_workspace

OnExec = Callable[[list[str], str, ExecResult | None], None]  # None: the command could not run


class RecordedSandbox:
    def __init__(self, sandbox: Sandbox, on_exec: OnExec) -> None:
        self._sandbox = sandbox
        self._on_exec = on_exec

    @property
    def workspace(self) -> Path:
        return self._sandbox.workspace

    def exec(self, command: str | list[str], cwd: str = ".", timeout: float | None = None) -> ExecResult:
        argv, workdir = command_in_workspace(command, cwd)
        try:
            result = self._sandbox.exec(command, cwd=cwd, timeout=timeout)
        except Exception:
            self._on_exec(argv, workdir, None)
            raise
        self._on_exec(argv, workdir, result)
        return result

    def refresh(self) -> None:
        self._sandbox.refresh()

    def stop(self) -> None:
        self._sandbox.stop()
