"""Where a failure happened, read from its output: Python tracebacks, pytest's node ids and assertion
lines, compiler and linter errors, JavaScript stack frames. Plain text in, `Location`s out, most
telling first; which of them are files of the repository is the caller's question (it has the file
list). The output is data written by the code under test: nothing here interprets it beyond matching."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Location:
    path: str  # as printed, normalized: no runner or sandbox prefix, forward slashes, no "./"
    line: int | None = None
    function: str | None = None  # a function, method or test name when the output names one
    kind: str = "frame"  # frame | test | error


_PY_FRAME = re.compile(r'^\s*File "([^"]+)", line (\d+)(?:, in (\S+))?')
_PYTEST_FRAME = re.compile(r"^(\S+\.py):(\d+):(?:\s+in (\S+)|\s+\w+)?\s*$")
_NODE_ID = re.compile(r"(?:^|\s)((?:[\w.@+-]+/)*[\w.@+-]+\.py)::([\w:.\[\]/-]+?)(?=[\s\]]|$|\[| - )")
_COMPILER = re.compile(r"^\s*(?:--> )?(/?(?:[\w.@+-]+/)*[\w.@+-]+\.\w{1,5}):(\d+)(?::\d+)?:? ?(?:(?:fatal )?error|warning|[A-Z]+\d+)?")
_TSC = re.compile(r"^(/?(?:[\w.@+-]+/)*[\w.@+-]+\.[jt]sx?)\((\d+),\d+\): error")
_JAVA = re.compile(r"(/?(?:[\w.@+-]+/)*[\w.@+-]+\.(?:java|kt|scala)):\[(\d+),\d+\]")
_JS_FRAME = re.compile(r"^\s*(?:at\s+)?(?:(?:async\s+)?([\w$.<>]+)\s+\()?(?:file://)?([^\s()']+\.(?:[cm]?[jt]sx?|vue))"
                       r":(\d+):\d+\)?\s*$")
_JS_LOCATION = re.compile(r"^\s*location: '(?:file://)?([^']+\.[cm]?[jt]sx?):(\d+):\d+'")  # node --test, TAP
_GO_TEST = re.compile(r"^\s*([\w./-]+_test\.go):(\d+): ")
_IMPORT_ERROR = re.compile(r"cannot import name '(\w+)' from '[\w.]+' \(([^)]+\.py)\)")
_GO_FAIL = re.compile(r"^\s*--- FAIL: (\w+)")
_PREFIXES = re.compile(
    r"^(?:/workspace/|/home/runner/work/[^/]+/[^/]+/|/Users/runner/work/[^/]+/[^/]+/|/__w/[^/]+/[^/]+/"
    r"|/github/workspace/|[A-Za-z]:/a/[^/]+/[^/]+/|file://)"
)
_NOT_REPO = re.compile(r"(?:^|/)(?:site-packages|dist-packages|node_modules|\.venv|venv|\.tox|\.nox|lib/python3[\d.]*"
                       r"|hostedtoolcache|\.cargo|\.rustup|go/pkg/mod)(?:/|$)|^<|^/usr/|^/opt/|^/tmp/")


def normalize(path: str) -> str | None:
    """The path relative to the checkout, or None for files outside it (the standard library,
    installed packages, `<frozen …>`)."""
    path = path.strip().replace("\\", "/")
    path = _PREFIXES.sub("", path)
    if _NOT_REPO.search(path) or path.startswith("/") or ".." in path.split("/"):
        return None
    while path.startswith("./"):
        path = path[2:]
    return path or None


def failure_locations(text: str) -> list[Location]:
    """Every location the output names, most telling first: the frames closest to where an error was
    raised, then the failing tests, then compiler and linter positions. Duplicates are dropped."""
    frames: list[list[Location]] = [[]]  # one list per traceback, in output order
    js_frames: list[Location] = []  # JavaScript prints the innermost frame first
    tests: list[Location] = []
    errors: list[Location] = []
    for raw in (text or "").splitlines():
        line = raw.rstrip()
        if m := _PY_FRAME.match(line):
            _add(frames[-1], m.group(1), m.group(2), m.group(3))
        elif line.lstrip().startswith("Traceback (most recent call last)") or line.startswith("_____"):
            frames.append([])
        elif m := _PYTEST_FRAME.match(line):
            _add(frames[-1], m.group(1), m.group(2), m.group(3))
        elif m := _JS_LOCATION.match(line):
            _add(tests, m.group(1), m.group(2), None, "test")
        elif m := _JS_FRAME.match(line):
            _add(js_frames, m.group(2), m.group(3), (m.group(1) or "").rpartition(".")[2] or None)
        elif m := _GO_TEST.match(line):
            _add(errors, m.group(1), m.group(2), None, "error")
        elif m := _TSC.match(line) or _COMPILER.match(line):
            _add(errors, m.group(1), m.group(2), None, "error")
        if m := _GO_FAIL.match(line):
            tests.append(Location("", None, m.group(1), "test"))
        for m in _NODE_ID.finditer(line):
            _add(tests, m.group(1), None, m.group(2).split("::")[-1].split("[")[0], "test")
        if m := _IMPORT_ERROR.search(line):  # the module that lacks the name
            _add(errors, m.group(2), None, None, "error")
        for m in _JAVA.finditer(line):
            _add(errors, m.group(1), m.group(2), None, "error")
    ordered: list[Location] = []
    for group in reversed([g for g in frames if g]):  # the last traceback is usually the real error
        ordered.extend(reversed(group))  # innermost frame first
    ordered += js_frames + tests + errors
    seen: set[tuple] = set()
    out = []
    for loc in ordered:
        key = (loc.path, loc.line, loc.function)
        if key not in seen:
            seen.add(key)
            out.append(loc)
    return out


def _add(into: list[Location], path: str, line: str | None, function: str | None, kind: str = "frame") -> None:
    rel = normalize(path)
    if rel is None:
        return
    if function in ("<module>", "<lambda>", "<listcomp>", "<genexpr>", "<dictcomp>", "<anonymous>"):
        function = None
    into.append(Location(rel, int(line) if line else None, function, kind))
