"""The agent's tools. Each docstring is the contract the model reads (it becomes the tool's
description). File tools work on the host worktree, confined to it, and never execute anything;
`run` is the only tool that executes code, and it does so in the sandbox.

The worktree is the sandbox's: any name in it may be a symlink, a fifo or a hard link to a file of
the host. File tools go through workers/workspace/confined.py, so they never follow a link (the
model is told where it points), never open a special file, and write by replacing a name."""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from workers.sandbox import Sandbox
from workers.workspace import confined
from workers.workspace.confined import Refused

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
        rel, kind = self._locate(path or ".")
        if kind != "dir":
            raise ToolError(f"{path}: not a directory; use read_file")
        names = sorted(self._listed(rel, name, kind) for name, kind in self._confined(confined.list_dir, self.workspace, rel)
                       if name not in SKIP_DIRS)
        shown = "\n".join(names[:500]) or "(empty directory)"
        return shown + (f"\n[{len(names) - 500} more entries not shown]" if len(names) > 500 else "")

    def read_file(self, path: str, start_line: int = 1, end_line: int | None = None) -> str:
        """Show a file with line numbers, at most 200 lines per call; the first line says which lines
        are shown out of how many. Args: path, start_line (1-based, default 1), end_line (inclusive)."""
        rel, kind = self._locate(path)
        if kind == "dir":
            raise ToolError(f"{path}: is a directory; use list_dir")
        data = self._confined(confined.read_file, self.workspace, rel)
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
        rel, _ = self._locate(path or ".")
        target = self.workspace / rel
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
        text = self._read(target)
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
        target, kind = self._locate(path, must_exist=False)
        if kind == "dir":
            raise ToolError(f"{path}: is a directory")
        exists = kind is not None
        if exists and not overwrite:
            raise ToolError(f"{path}: already exists; use edit_file, or create_file with overwrite=true")
        previous = self._read(target) if exists else None
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
    def _locate(self, path: str, must_exist: bool = True) -> tuple[str, str | None]:
        """(repository path, kind) for a path the model gave: refuses absolute paths, '..', .git,
        symlinks (on the way or at the end) and special files; kind is 'dir', 'file' or None."""
        if not isinstance(path, str) or not path.strip() or "\0" in path:
            raise ToolError("a path relative to the repository root is required")
        if os.path.isabs(path) or path.startswith("~"):
            raise ToolError(f"{path}: absolute paths are refused; use a path relative to the repository root")
        if ".." in Path(path).parts:
            raise ToolError(f"{path}: '..' is refused; stay inside the repository")
        parts = self._confined(confined.names, path)
        if ".git" in parts:
            raise ToolError(f"{path}: git metadata is off limits")
        rel = "/".join(parts)
        try:
            kind = confined.path_kind(self.workspace, rel)
        except Refused as exc:
            raise self._link_error(path, exc.path) from None
        if kind == "link":
            raise self._link_error(path, rel)
        if kind == "special":
            raise ToolError(f"{path}: not a regular file (a fifo, socket or device); refused")
        if must_exist and kind is None:
            raise ToolError(f"{path}: no such file or directory")
        return rel, kind

    def _link_error(self, path: str, link: str) -> ToolError:
        """The refusal for a path through a symlink; says where the link points when that is inside."""
        try:
            target = confined.read_link(self.workspace, link)
        except (OSError, Refused):
            return ToolError(f"{path}: {link} is not a directory; refused")
        inside = os.path.normpath(os.path.join(os.path.dirname(link), target))
        if os.path.isabs(target) or inside == ".." or inside.startswith("../"):
            return ToolError(f"{path}: is a symlink that leads outside the repository; refused")
        rest = "/".join(confined.names(path))[len(link):]
        return ToolError(f"{path}: {link} is a symlink to {target}; refused, use {inside}{rest}")

    def _file(self, path: str) -> str:
        rel, kind = self._locate(path)
        if kind != "file":
            raise ToolError(f"{path}: not a regular file")
        return rel

    def _listed(self, rel: str, name: str, kind: str) -> str:
        if kind == "dir":
            return name + "/"
        if kind == "link":
            try:
                return f"{name} -> {confined.read_link(self.workspace, f'{rel}/{name}' if rel else name)}"
            except (OSError, Refused):
                return name
        return name

    @staticmethod
    def _confined(operation, *args, **kwargs):
        """A confined file operation; its refusals become the model's error message."""
        try:
            return operation(*args, **kwargs)
        except Refused as exc:
            raise ToolError(f"{exc}; refused") from None

    def _read(self, rel: str) -> str:
        return self._confined(confined.read_file, self.workspace, rel).decode("utf-8", errors="surrogateescape")

    def _record(self, edit: str) -> None:
        if edit not in self.edits:
            self.edits.append(edit)

    # ------------------------------------------------------------------------------ helpers
    def _write_checked(self, target: str, text: str, previous: str | None) -> str:
        """Write; a .py file that parsed before (or is new) must still parse, else roll back and say
        where. Returns a note for the observation."""
        note = ""
        if target.endswith(".py"):
            error = _syntax_error(text)
            if error and (previous is None or not _syntax_error(previous)):
                raise ToolError(f"{target}: change rolled back, it breaks Python syntax at {error}")
            if error:
                note = f" (the file still does not parse: {error})"
        self._confined(confined.write_file, self.workspace, target, text.encode("utf-8", errors="surrogateescape"),
                       create_parents=previous is None, exclusive=previous is None)
        return note

    def _rg(self, pattern: str, target: Path) -> list[str] | None:
        argv = ["rg", "--no-heading", "--with-filename", "--null", "--line-number", "--color=never",
                "--max-columns=300", "--max-columns-preview", "-e", pattern, "--", str(target)]
        try:
            result = subprocess.run(argv, capture_output=True, text=True, timeout=30, cwd=self.workspace,
                                    errors="replace")
        except (OSError, subprocess.TimeoutExpired):
            return None
        if result.returncode not in (0, 1):
            return None
        root = str(self.workspace.resolve()) + "/"
        matches = [line.removeprefix(root).split("\0", 1) for line in result.stdout.splitlines() if "\0" in line]
        readable = {path for path in {path for path, _ in matches} if self._readable(path)}  # rg reads hard links
        return sorted(f"{path}:{rest}" for path, rest in matches if path in readable)

    def _readable(self, rel: str) -> bool:
        try:
            confined.read_file(self.workspace, rel, limit=0)
            return True
        except (OSError, Refused):
            return False

    def _python_search(self, regex: re.Pattern, target: Path) -> list[str]:
        root = self.workspace.resolve()
        start = target.resolve().relative_to(root).as_posix() if target.resolve() != root else ""
        if confined.path_kind(root, start) == "file":
            files = [start]
        else:
            found: list[str] = []

            def visit(dir_fd: int, name: str, kind: str, rel: str) -> bool:
                if kind == "file":
                    found.append(f"{start}/{rel}" if start else rel)
                return kind == "dir" and name not in SKIP_DIRS

            with confined.opened(root) as top:
                directory = confined.open_dir(top, confined.names(start))
                try:
                    confined.walk(directory, visit)
                finally:
                    os.close(directory)
            files = sorted(found)
        out = []
        for file in files:
            try:
                text = confined.read_file(root, file).decode("utf-8")
            except (UnicodeDecodeError, OSError, Refused):
                continue
            out.extend(f"{file}:{n}:{line[:300]}" for n, line in enumerate(text.splitlines(), 1) if regex.search(line))
        return out


def shorten(text: str, limit: int = MAX_OBSERVATION) -> str:
    """Head and tail of a long observation, with a marker in between."""
    if len(text) <= limit:
        return text
    return text[: limit // 2] + f"\n[… {len(text) - limit} characters not shown …]\n" + text[-limit // 2 :]


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
