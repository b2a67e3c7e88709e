"""The code a failure involves, cut out of the repository for the first prompt, within a token budget:
the functions its traceback runs through (innermost first), the failing tests, the lines a compiler
or linter names, then the repository's functions those call (two hops) — so the model sees the faulty
code before its first step, instead of only its file's name when the traceback does not quote it."""

from __future__ import annotations

import ast
import builtins
import re
from dataclasses import dataclass

from workers.agent.repo_map import CHARS_PER_TOKEN, RepoIndex
from workers.agent.symbols import Symbol, enclosing, suffix
from workers.failure.locations import Location, failure_locations

MAX_SNIPPET_LINES = 80  # a longer function shows the lines around the failure
DIRECT_FIRST = 6  # locations taken before the callees; the rest come after them
_NOT_CALLEES = set(dir(builtins)) | {"self", "cls", "super", "assert", "print", "expect", "describe", "it", "test",
                                     "require", "console", "Error", "Math", "Object", "JSON", "Promise", "String"}
_CALL = re.compile(r"(?<![\w$.])([A-Za-z_$][\w$]*)\s*\(")
_METHOD_CALL = re.compile(r"\.([A-Za-z_$][\w$]*)\s*\(")


@dataclass(frozen=True)
class Snippet:
    path: str
    start: int  # 1-based, inclusive
    end: int
    label: str  # the function's qualified name, or "lines a-b"
    reason: str  # why it is shown: "traceback", "failing test", "error", "called by …"


def gather(index: RepoIndex, failure_text: str, budget_tokens: int) -> list[Snippet]:
    """Snippets in the order the model should read them, within the budget (characters / 4)."""
    budget = budget_tokens * CHARS_PER_TOKEN
    chosen: list[Snippet] = []
    used = 0

    def take(snippet: Snippet | None) -> bool:
        nonlocal used
        if snippet is None or any(_covers(s, snippet) for s in chosen):
            return False
        size = _size(index, snippet)
        if used + size > budget:
            return False
        chosen.append(snippet)
        used += size
        return True

    direct = [s for s in (_for_location(index, loc) for loc in failure_locations(failure_text)) if s]
    for snippet in direct[:DIRECT_FIRST]:
        take(snippet)
    frontier = list(chosen)
    for _hop in range(2):
        called = []
        for snippet in frontier:
            for symbol, path in _callees(index, snippet):
                if take(_symbol_snippet(path, symbol, f"called by {snippet.label}")):
                    called.append(chosen[-1])
        frontier = called
    for snippet in direct[DIRECT_FIRST:]:
        take(snippet)
    return chosen


def render(index: RepoIndex, snippets: list[Snippet]) -> list[tuple[str, str]]:
    """(heading, numbered code) per snippet, for the prompt to fence."""
    out = []
    for s in snippets:
        lines = index.texts[s.path].splitlines()
        body = "\n".join(f"{n:>5}  {lines[n - 1]}" for n in range(s.start, min(s.end, len(lines)) + 1))
        out.append((f"{s.path} — {s.label} (lines {s.start}-{s.end}; {s.reason})", body))
    return out


def _for_location(index: RepoIndex, loc: Location) -> Snippet | None:
    path = index.resolve(loc.path) if loc.path else None
    if path is None:
        return _named_anywhere(index, loc) if loc.function and not loc.path else None
    found = index.symbols.get(path, [])
    reason = {"frame": "traceback", "test": "failing test", "error": "error"}[loc.kind]
    symbol = enclosing(found, loc.line) if loc.line else None
    if symbol is None and loc.function:
        symbol = next((s for s in found if s.name == loc.function), None)
    if symbol is not None:
        return _symbol_snippet(path, symbol, reason, focus=loc.line)
    total = len(index.texts[path].splitlines())
    if loc.line:
        return Snippet(path, max(1, loc.line - 8), min(total, loc.line + 8), f"line {loc.line}", reason)
    if total:  # a file named without a line (an import error): its beginning, where its names are
        return Snippet(path, 1, min(total, MAX_SNIPPET_LINES // 2), "the whole file" if total <= 40
                       else f"lines 1-{MAX_SNIPPET_LINES // 2}", reason)
    return None


def _named_anywhere(index: RepoIndex, loc: Location) -> Snippet | None:
    """A test named without its file (Go's `--- FAIL: TestX`): found by its name in test files."""
    where = [p for p in index.definers.get(loc.function or "", ()) if "test" in p.lower()]
    if len(where) != 1:
        return None
    symbol = next(s for s in index.symbols[where[0]] if s.name == loc.function)
    return _symbol_snippet(where[0], symbol, "failing test")


def _symbol_snippet(path: str, symbol: Symbol, reason: str, focus: int | None = None) -> Snippet:
    start, end = symbol.line, symbol.end_line
    if end - start + 1 > MAX_SNIPPET_LINES:
        if focus and focus > start + 20:
            start, end = max(start, focus - 30), min(end, focus + 30)
        else:
            end = start + MAX_SNIPPET_LINES - 1
    return Snippet(path, start, end, symbol.qualified, reason)


def _callees(index: RepoIndex, snippet: Snippet) -> list[tuple[Symbol, str]]:
    """The repository's definitions of what the snippet calls: same file first, then files the
    caller imports, then a name only few files define."""
    text = "\n".join(index.texts[snippet.path].splitlines()[snippet.start - 1: snippet.end])
    names = _called_names(snippet.path, text)
    caller_text = index.texts[snippet.path]
    out = []
    for name in names:
        if name in _NOT_CALLEES:
            continue
        where = index.definers.get(name)
        if not where:
            continue
        if snippet.path in where:
            ranked = [snippet.path]
        else:
            imported = [p for p in where if _module_name(p) and re.search(
                rf"\b{re.escape(_module_name(p))}\b", caller_text)]
            ranked = imported or (sorted(where) if len(where) <= 2 else [])
        for path in ranked[:2]:
            for symbol in index.symbols[path]:
                if symbol.name == name and not (path == snippet.path and symbol.line == snippet.start):
                    out.append((symbol, path))
                    break
    return out


def _called_names(path: str, text: str) -> list[str]:
    names: list[str] = []
    if suffix(path) == ".py":
        try:
            tree = ast.parse(_dedent(text))
        except SyntaxError:
            tree = None
        if tree is not None:
            for node in ast.walk(tree):
                if isinstance(node, ast.Call):
                    fn = node.func
                    name = fn.id if isinstance(fn, ast.Name) else fn.attr if isinstance(fn, ast.Attribute) else None
                    if name:
                        names.append(name)
            return list(dict.fromkeys(names))
    names = _CALL.findall(text) + _METHOD_CALL.findall(text)
    return list(dict.fromkeys(names))


def _dedent(text: str) -> str:
    lines = text.splitlines()
    indent = min((len(ln) - len(ln.lstrip()) for ln in lines if ln.strip()), default=0)
    return "\n".join(ln[indent:] for ln in lines)


def _module_name(path: str) -> str:
    """`pkg/sub/mod.py` → `mod` (what an import statement would name)."""
    name = path.rpartition("/")[2].rpartition(".")[0]
    return "" if name in ("__init__", "index", "mod", "lib", "main") else name


def _covers(a: Snippet, b: Snippet) -> bool:
    return a.path == b.path and a.start <= b.start and b.end <= a.end


def _size(index: RepoIndex, s: Snippet) -> int:
    lines = index.texts[s.path].splitlines()[s.start - 1: s.end]
    return sum(len(line) + 8 for line in lines) + len(s.path) + len(s.label) + 60
