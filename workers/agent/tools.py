"""The agent's tools. Each docstring is the contract the model reads. File tools work on the host
worktree, confined to it; `run` is the only tool that executes anything, and it runs in the sandbox."""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from workers.sandbox import Sandbox

READ_WINDOW = 200  # lines per read_file call
MAX_MATCHES = 50
MAX_OBSERVATION = 12_000
SKIP_DIRS = {".git", "node_modules", "__pycache__", ".venv", ".mypy_cache", ".pytest_cache", ".ruff_cache"}


class ToolError(Exception):
    """A refusal the model should read and recover from."""


@dataclass
class Toolbox:
    workspace: Path
    sandbox: Sandbox | None
    run_timeout_s: float = 300.0
    edits: list[str] = field(default_factory=list)  # "edit path" lines: kept in every prompt
    finished: bool = False
    summary: str = ""

    # ---------------------------------------------------------------- paths
    def _path(self, path: str, must_exist: bool = True) -> Path:
        if not isinstance(path, str) or not path.strip():
            raise ToolError("path is required")
        if os.path.isabs(path) or path.startswith("~"):
            raise ToolError(f"{path}: absolute paths are refused; use a path relative to the repository root")
        if ".." in Path(path).parts:
            raise ToolError(f"{path}: '..' is refused; stay inside the repository")
        root = self.workspace.resolve()
        target = (root / path).resolve()
        if target != root and root not in target.parents:
            raise ToolError(f"{path}: leads outside the repository (symlink?) and is refused")
        if must_exist and not target.exists():
            raise ToolError(f"{path}: no such file or directory")
        return target

    def _rel(self, target: Path) -> str:
        return str(target.relative_to(self.workspace.resolve()))

    # ---------------------------------------------------------------- tools
    def list_dir(self, path: str = ".") -> str:
        """List a directory of the repository (directories end with '/'). Args: path (default '.')."""
        target = self._path(path or ".")
        if not target.is_dir():
            raise ToolError(f"{path}: not a directory")
        names = sorted(p.name + ("/" if p.is_dir() else "") for p in target.iterdir() if p.name not in SKIP_DIRS)
        return "\n".join(names[:500]) or "(empty)"

    def read_file(self, path: str, start_line: int = 1, end_line: int | None = None) -> str:
        """Show numbered lines of a file, at most 200 per call. Args: path, start_line (1-based), end_line."""
        target = self._path(path)
        if target.is_dir():
            raise ToolError(f"{path}: is a directory; use list_dir")
        lines = target.read_text(errors="replace").splitlines()
        start = max(1, int(start_line or 1))
        end = min(len(lines), int(end_line) if end_line else start + READ_WINDOW - 1, start + READ_WINDOW - 1)
        body = "\n".join(f"{n:>5}  {lines[n - 1]}" for n in range(start, end + 1))
        more = f"\n[lines {start}-{end} of {len(lines)}; ask for more with start_line]" if end < len(lines) else ""
        return (body or "(empty file)") + more

    def search(self, pattern: str, path: str = ".") -> str:
        """Search the repository for a regular expression; prints path:line: text, at most 50 matches. Args: pattern, path."""
        target = self._path(path or ".")
        try:
            regex = re.compile(pattern)
        except re.error as exc:
            raise ToolError(f"invalid regular expression: {exc}") from exc
        matches = self._rg(pattern, target) if shutil.which("rg") else None
        if matches is None:
            matches = self._python_search(regex, target)
        shown = matches[:MAX_MATCHES]
        extra = f"\n[{len(matches) - MAX_MATCHES} more matches not shown]" if len(matches) > MAX_MATCHES else ""
        return "\n".join(shown) + extra if shown else "no matches"

    def _rg(self, pattern: str, target: Path) -> list[str] | None:
        argv = ["rg", "--no-heading", "--line-number", "--color=never", "--max-columns=300", "-e", pattern, str(target)]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=30, cwd=self.workspace)
        if result.returncode not in (0, 1):
            return None
        root = str(self.workspace.resolve()) + "/"
        return [line.replace(root, "", 1) for line in result.stdout.splitlines()]

    def _python_search(self, regex: re.Pattern, target: Path) -> list[str]:
        files = [target] if target.is_file() else sorted(p for p in target.rglob("*") if p.is_file() and not SKIP_DIRS & set(p.parts))
        out = []
        for file in files:
            try:
                for n, line in enumerate(file.read_text().splitlines(), 1):
                    if regex.search(line):
                        out.append(f"{self._rel(file)}:{n}:{line[:300]}")
            except (UnicodeDecodeError, OSError):
                continue
        return out

    def edit_file(self, path: str, old: str, new: str) -> str:
        """Replace one exact occurrence of `old` with `new` in a file. `old` must appear exactly once. Args: path, old, new."""
        target = self._path(path)
        text = target.read_text()
        count = text.count(old) if old else 0
        if count == 0:
            raise ToolError(f"{path}: the text to replace was not found; read the file and copy it exactly")
        if count > 1:
            raise ToolError(f"{path}: the text to replace appears {count} times; include more surrounding lines")
        self._write_checked(target, text.replace(old, new, 1), previous=text)
        self.edits.append(f"edited {path}")
        return f"{path}: replaced 1 occurrence"

    def create_file(self, path: str, content: str) -> str:
        """Create a new file, or overwrite an existing one, with `content`. Args: path, content."""
        target = self._path(path, must_exist=False)
        if target.is_dir():
            raise ToolError(f"{path}: is a directory")
        previous = target.read_text() if target.exists() else None
        target.parent.mkdir(parents=True, exist_ok=True)
        self._write_checked(target, content, previous)
        self.edits.append(f"{'overwrote' if previous is not None else 'created'} {path}")
        return f"{path}: written ({len(content.splitlines())} lines)"

    def _write_checked(self, target: Path, text: str, previous: str | None) -> None:
        """Python files must still parse; otherwise the write is rolled back and the model told why."""
        target.write_text(text)
        if target.suffix != ".py":
            return
        try:
            ast.parse(text)
        except SyntaxError as exc:
            if previous is None:
                target.unlink()
            else:
                target.write_text(previous)
            raise ToolError(
                f"{self._rel(target)}: edit rolled back, it breaks Python syntax at line {exc.lineno}: {exc.msg}"
            ) from exc

    def run(self, command: str, timeout: int | None = None) -> str:
        """Run a shell command in the sandbox at the repository root (no network). Prints exit code and output. Args: command, timeout (seconds)."""
        if self.sandbox is None:
            raise ToolError("running commands is not available in this session")
        limit = min(float(timeout or self.run_timeout_s), self.run_timeout_s)
        result = self.sandbox.exec(command, timeout=limit)
        status = "timed out" if result.timed_out else ("killed: out of memory" if result.oom_killed else f"exit code {result.exit_code}")
        return f"[{status}, {result.duration_s:.1f} s]\n{result.output}"

    def finish(self, summary: str) -> str:
        """Declare the work done. Args: summary (what you changed and why, for the pull request)."""
        self.finished = True
        self.summary = str(summary or "").strip()
        return "finished"

    # ---------------------------------------------------------------- dispatch
    NAMES = ("list_dir", "read_file", "search", "edit_file", "create_file", "run", "finish")

    def call(self, name: str, arguments: dict) -> str:
        """Run one tool call; refusals and bad arguments come back as text for the model."""
        if name not in self.NAMES:
            return f"error: unknown tool '{name}'. Tools: {', '.join(self.NAMES)}"
        try:
            output = getattr(self, name)(**arguments)
        except ToolError as exc:
            return f"error: {exc}"
        except TypeError as exc:
            return f"error: bad arguments for {name}: {exc}"
        except Exception as exc:  # noqa: BLE001 — a failing tool is an observation, never a crashed job
            return f"error: {name} failed: {type(exc).__name__}: {exc}"
        if len(output) > MAX_OBSERVATION:
            output = output[: MAX_OBSERVATION // 2] + "\n[… output shortened …]\n" + output[-MAX_OBSERVATION // 2 :]
        return output


def _schema(name: str, description: str, properties: dict, required: list[str]) -> dict:
    return {"type": "function", "function": {"name": name, "description": description,
            "parameters": {"type": "object", "properties": properties, "required": required}}}


_S, _I = {"type": "string"}, {"type": "integer"}
TOOL_SCHEMAS = [
    _schema("list_dir", Toolbox.list_dir.__doc__, {"path": _S}, []),
    _schema("read_file", Toolbox.read_file.__doc__, {"path": _S, "start_line": _I, "end_line": _I}, ["path"]),
    _schema("search", Toolbox.search.__doc__, {"pattern": _S, "path": _S}, ["pattern"]),
    _schema("edit_file", Toolbox.edit_file.__doc__, {"path": _S, "old": _S, "new": _S}, ["path", "old", "new"]),
    _schema("create_file", Toolbox.create_file.__doc__, {"path": _S, "content": _S}, ["path", "content"]),
    _schema("run", Toolbox.run.__doc__, {"command": _S, "timeout": _I}, ["command"]),
    _schema("finish", Toolbox.finish.__doc__, {"summary": _S}, ["summary"]),
]
