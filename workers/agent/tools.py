"""The agent's tools. Each docstring is the contract the model reads (it becomes the tool's
description). File tools work on the host worktree, confined to it, and never execute anything;
`run` is the only tool that executes code, and it does so in the sandbox."""

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
MAX_LINE = 1000  # characters shown of one line
MAX_MATCHES = 50
MAX_OBSERVATION = 12_000  # characters of one observation, head + tail
SKIP_DIRS = {".git", "node_modules", "__pycache__", ".venv", ".mypy_cache", ".pytest_cache", ".ruff_cache"}


class ToolError(Exception):
    """A refusal the model should read and recover from."""


@dataclass
class Toolbox:
    workspace: Path
    sandbox: Sandbox | None
    run_timeout_s: float = 300.0
    edits: list[str] = field(default_factory=list)  # "edited a.py" lines, kept in every prompt
    finished: bool = False
    summary: str = ""

    # ------------------------------------------------------------------------------ tools
    def list_dir(self, path: str = ".") -> str:
        """List one directory of the repository; directories end with '/'.
        Args: path (relative to the repository root, default '.')."""
        target = self._path(path or ".")
        if not target.is_dir():
            raise ToolError(f"{path}: not a directory; use read_file")
        names = sorted(p.name + ("/" if p.is_dir() else "") for p in target.iterdir() if p.name not in SKIP_DIRS)
        shown = "\n".join(names[:500]) or "(empty directory)"
        return shown + (f"\n[{len(names) - 500} more entries not shown]" if len(names) > 500 else "")

    def read_file(self, path: str, start_line: int = 1, end_line: int | None = None) -> str:
        """Show a file with line numbers, at most 200 lines per call; the first line says which lines
        are shown out of how many. Args: path, start_line (1-based, default 1), end_line (inclusive)."""
        target = self._path(path)
        if target.is_dir():
            raise ToolError(f"{path}: is a directory; use list_dir")
        data = target.read_bytes()
        if b"\0" in data[:8192]:
            return f"{path}: binary file ({len(data)} bytes), not shown"
        lines = data.decode("utf-8", errors="replace").splitlines()
        if not lines:
            return f"{path}: empty file"
        start = min(max(1, start_line or 1), len(lines))
        end = min(len(lines), end_line or len(lines), start + READ_WINDOW - 1)
        if end < start:
            raise ToolError(f"end_line {end_line} is before start_line {start}")
        body = "\n".join(f"{n:>5}  {_cut(lines[n - 1])}" for n in range(start, end + 1))
        more = f"; continue with start_line={end + 1}" if end < len(lines) else ""
        return f"{path}: lines {start}-{end} of {len(lines)}{more}\n{body}"

    def search(self, pattern: str, path: str = ".") -> str:
        """Search files for a regular expression (Python syntax). Prints `path:line:text`, at most 50
        matches. Args: pattern, path (a file or directory to search, default '.')."""
        target = self._path(path or ".")
        try:
            regex = re.compile(pattern)
        except re.error as exc:
            raise ToolError(f"invalid regular expression: {exc}") from exc
        matches = self._rg(pattern, target) if shutil.which("rg") else None
        if matches is None:  # no ripgrep, or a pattern only Python understands
            matches = self._python_search(regex, target)
        extra = f"\n[{len(matches) - MAX_MATCHES} more matches not shown; narrow the pattern or path]"
        return "\n".join(matches[:MAX_MATCHES]) + (extra if len(matches) > MAX_MATCHES else "") if matches else "no matches"

    def edit_file(self, path: str, old: str, new: str) -> str:
        """Replace one exact occurrence of `old` with `new` in an existing file. `old` must appear
        exactly once: copy it from read_file output without the line numbers, with enough lines to be
        unique. Prints the changed region. A Python file that would no longer parse is left unchanged.
        Args: path, old, new."""
        target = self._file(path)
        text = _read(target)
        if not old:
            raise ToolError("`old` is empty; give the exact text to replace (use create_file for new files)")
        count = text.count(old)
        if count == 0:
            raise ToolError(f"{path}: the text in `old` was not found; read the file and copy it exactly")
        if count > 1:
            raise ToolError(f"{path}: the text in `old` appears {count} times; include more lines to make it unique")
        if old == new:
            raise ToolError("`old` and `new` are the same; nothing to change")
        updated = text.replace(old, new, 1)
        note = self._write_checked(target, updated, previous=text)
        self._record(f"edited {path}")
        first = text[: text.index(old)].count("\n") + 1
        return f"{path}: replaced 1 occurrence{note}\n" + _region(updated, first, first + new.count("\n"))

    def create_file(self, path: str, content: str, overwrite: bool = False) -> str:
        """Create a new file with `content` (parent directories are created). Refuses to replace an
        existing file unless overwrite is true; prefer edit_file to change existing files.
        Args: path, content, overwrite (default false)."""
        target = self._path(path, must_exist=False)
        if target.is_dir():
            raise ToolError(f"{path}: is a directory")
        exists = target.exists()
        if exists and not overwrite:
            raise ToolError(f"{path}: already exists; use edit_file, or create_file with overwrite=true")
        previous = _read(target) if exists else None
        target.parent.mkdir(parents=True, exist_ok=True)
        note = self._write_checked(target, content, previous)
        self._record(f"{'overwrote' if exists else 'created'} {path}")
        return f"{path}: written ({len(content.splitlines())} lines){note}"

    def run(self, command: str, timeout: int | None = None) -> str:
        """Run a shell command in the sandbox, at the repository root, offline and time-limited (the
        only way to execute code). Prints the exit code, then the output (long output keeps its head
        and tail). Args: command, timeout (seconds, optional)."""
        if self.sandbox is None:
            raise ToolError("running commands is not available in this session")
        limit = min(float(timeout), self.run_timeout_s) if timeout else self.run_timeout_s
        result = self.sandbox.exec(command, timeout=limit)
        if result.timed_out:
            status = f"timed out after {limit:.0f} s"
        elif result.oom_killed:
            status = "killed: out of memory"
        else:
            status = f"exit code {result.exit_code}"
        note = ", output truncated" if result.truncated else ""
        return f"[{status}, {result.duration_s:.1f} s{note}]\n{result.output}"

    def finish(self, summary: str) -> str:
        """Declare the work done and stop. Args: summary (what you changed and why, in a few sentences,
        for the pull request)."""
        self.finished = True
        self.summary = str(summary or "").strip()
        return "finished"

    # ------------------------------------------------------------------------------ dispatch
    def call(self, name: str, arguments: dict) -> str:
        """Run one tool call. Refusals and bad arguments come back as text for the model, never as
        exceptions. The output is not shortened: the caller redacts, then calls `shorten`."""
        schema = SCHEMAS.get(name)
        if schema is None:
            return f"error: unknown tool {name!r}. Tools: {', '.join(SCHEMAS)}"
        try:
            output = getattr(self, name)(**_coerce(name, schema, arguments))
        except ToolError as exc:
            return f"error: {exc}"
        except Exception as exc:  # noqa: BLE001 — a failing tool is an observation, never a crashed job
            return f"error: {name} failed: {type(exc).__name__}: {exc}"
        return output

    # ------------------------------------------------------------------------------ paths
    def _path(self, path: str, must_exist: bool = True) -> Path:
        """The host path for a repository path; refuses absolute paths, '..', .git and symlinks out."""
        if not isinstance(path, str) or not path.strip() or "\0" in path:
            raise ToolError("a path relative to the repository root is required")
        if os.path.isabs(path) or path.startswith("~"):
            raise ToolError(f"{path}: absolute paths are refused; use a path relative to the repository root")
        parts = Path(path).parts
        if ".." in parts:
            raise ToolError(f"{path}: '..' is refused; stay inside the repository")
        if ".git" in parts:
            raise ToolError(f"{path}: git metadata is off limits")
        root = self.workspace.resolve()
        target = (root / path).resolve()  # follows symlinks, dangling ones too
        if target != root and root not in target.parents:
            raise ToolError(f"{path}: is a symlink that leads outside the repository; refused")
        if must_exist and not target.exists():
            raise ToolError(f"{path}: no such file or directory")
        return target

    def _file(self, path: str) -> Path:
        target = self._path(path)
        if not target.is_file():
            raise ToolError(f"{path}: not a regular file")
        return target

    def _rel(self, target: Path) -> str:
        return target.relative_to(self.workspace.resolve()).as_posix()

    def _record(self, edit: str) -> None:
        if edit not in self.edits:
            self.edits.append(edit)

    # ------------------------------------------------------------------------------ helpers
    def _write_checked(self, target: Path, text: str, previous: str | None) -> str:
        """Write; a .py file that parsed before (or is new) must still parse, else roll back and say
        where. Returns a note for the observation."""
        if target.suffix == ".py":
            error = _syntax_error(text)
            if error and (previous is None or not _syntax_error(previous)):
                raise ToolError(f"{self._rel(target)}: change rolled back, it breaks Python syntax at {error}")
            if error:
                target.write_text(text, encoding="utf-8", errors="surrogateescape")
                return f" (the file still does not parse: {error})"
        target.write_text(text, encoding="utf-8", errors="surrogateescape")
        return ""

    def _rg(self, pattern: str, target: Path) -> list[str] | None:
        argv = ["rg", "--no-heading", "--with-filename", "--line-number", "--color=never", "--max-columns=300",
                "--max-columns-preview", "-e", pattern, "--", str(target)]
        try:
            result = subprocess.run(argv, capture_output=True, text=True, timeout=30, cwd=self.workspace,
                                    errors="replace")
        except (OSError, subprocess.TimeoutExpired):
            return None
        if result.returncode not in (0, 1):
            return None
        root = str(self.workspace.resolve()) + "/"
        return sorted(line.removeprefix(root) for line in result.stdout.splitlines())

    def _python_search(self, regex: re.Pattern, target: Path) -> list[str]:
        if target.is_file():
            files = [target]
        else:
            files = sorted(p for p in target.rglob("*")
                           if not p.is_symlink() and p.is_file() and not SKIP_DIRS & set(p.parts))
        out = []
        for file in files:
            try:
                for n, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
                    if regex.search(line):
                        out.append(f"{self._rel(file)}:{n}:{line[:300]}")
            except (UnicodeDecodeError, OSError):
                continue
        return out


def shorten(text: str, limit: int = MAX_OBSERVATION) -> str:
    """Head and tail of a long observation, with a marker in between."""
    if len(text) <= limit:
        return text
    return text[: limit // 2] + f"\n[… {len(text) - limit} characters not shown …]\n" + text[-limit // 2 :]


def _read(target: Path) -> str:
    return target.read_text(encoding="utf-8", errors="surrogateescape")


def _cut(line: str) -> str:
    return line if len(line) <= MAX_LINE else line[:MAX_LINE] + f" [… {len(line) - MAX_LINE} more characters]"


def _region(text: str, first: int, last: int, context: int = 3, limit: int = 30) -> str:
    lines = text.splitlines()
    start, end = max(1, first - context), min(len(lines), last + context, first + limit)
    return "\n".join(f"{n:>5}  {_cut(lines[n - 1])}" for n in range(start, end + 1))


def _syntax_error(text: str) -> str | None:
    try:
        ast.parse(text)
    except SyntaxError as exc:
        return f"line {exc.lineno}: {exc.msg}"
    except ValueError as exc:  # e.g. null bytes
        return str(exc)
    return None


def _coerce(name: str, schema: dict, arguments: dict) -> dict:
    """Arguments converted to the declared types: XML and JSON-in-text calls give strings."""
    if "__unparsed__" in arguments:
        raise ToolError(f"the arguments of your {name} call are not a valid JSON object")
    properties, required = schema["properties"], schema["required"]
    unknown = sorted(set(arguments) - set(properties))
    if unknown:
        raise ToolError(f"{name} has no argument {', '.join(unknown)}; it takes {', '.join(properties) or 'none'}")
    missing = [key for key in required if key not in arguments]
    if missing:
        raise ToolError(f"{name} needs {', '.join(missing)}")
    out = {}
    for key, value in arguments.items():
        kind = properties[key]["type"]
        if kind == "integer" and isinstance(value, str):
            if not re.fullmatch(r"\s*-?\d+\s*", value):
                raise ToolError(f"{key} must be a whole number, not {value[:40]!r}")
            value = int(value)
        elif kind == "boolean" and isinstance(value, str):
            value = value.strip().lower() in ("true", "1", "yes")
        elif kind == "string" and value is not None and not isinstance(value, str):
            value = str(value)
        out[key] = value
    return out


def _schema(method, properties: dict, required: list[str]) -> dict:
    return {"type": "function", "function": {
        "name": method.__name__, "description": " ".join(method.__doc__.split()),
        "parameters": {"type": "object", "properties": properties, "required": required}}}


_S, _I, _B = {"type": "string"}, {"type": "integer"}, {"type": "boolean"}
TOOL_SCHEMAS = [
    _schema(Toolbox.list_dir, {"path": _S}, []),
    _schema(Toolbox.read_file, {"path": _S, "start_line": _I, "end_line": _I}, ["path"]),
    _schema(Toolbox.search, {"pattern": _S, "path": _S}, ["pattern"]),
    _schema(Toolbox.edit_file, {"path": _S, "old": _S, "new": _S}, ["path", "old", "new"]),
    _schema(Toolbox.create_file, {"path": _S, "content": _S, "overwrite": _B}, ["path", "content"]),
    _schema(Toolbox.run, {"command": _S, "timeout": _I}, ["command"]),
    _schema(Toolbox.finish, {"summary": _S}, ["summary"]),
]
SCHEMAS = {s["function"]["name"]: s["function"]["parameters"] for s in TOOL_SCHEMAS}
