"""Context recall: does the first prompt already hold every file and every function a gold patch
changes? A file counts when its path appears in the prompt; a function when its code does — its
definition line and each line of it the gold patch removes or inserts after (names alone do not
count). Functions are those around the changed lines in the file as it was before the patch."""

from __future__ import annotations

from dataclasses import dataclass

from unidiff import PatchSet
from unidiff.errors import UnidiffParseError

from workers.agent.symbols import enclosing, symbols


@dataclass(frozen=True)
class Changed:
    path: str
    function: str | None  # None: lines outside any function (module level)
    lines: tuple[str, ...]  # the code that must be visible: the definition line and the touched lines


def changed(gold_patch: str, read_base) -> list[Changed]:
    """What the gold patch changes; `read_base(path)` gives a file's text before the patch (or None)."""
    try:
        files = PatchSet(gold_patch.splitlines(keepends=True))
    except UnidiffParseError:
        return []
    out: list[Changed] = []
    for patched in files:
        if patched.is_added_file:
            out.append(Changed(patched.path, None, ()))
            continue
        path = patched.source_file[2:] if patched.source_file.startswith("a/") else patched.source_file
        text = read_base(path) or ""
        lines = text.splitlines()
        found = symbols(path, text)
        touched: dict[str | None, list[int]] = {}
        for hunk in patched:
            last = hunk.source_start
            for line in hunk:
                if line.source_line_no is not None:
                    last = line.source_line_no
                if line.is_removed or line.is_added:
                    anchor = line.source_line_no if line.is_removed else last
                    symbol = enclosing(found, anchor)
                    touched.setdefault(symbol.qualified if symbol else None, []).append(anchor)
        for name, anchors in touched.items():
            symbol = next((s for s in found if s.qualified == name), None)
            code = [_definition_line(lines, symbol)] if symbol else []
            code += [lines[n - 1] for n in sorted(set(anchors)) if 0 < n <= len(lines)]
            out.append(Changed(path, name, tuple(c.strip() for c in code if c.strip())))
    return out


def _definition_line(lines: list[str], symbol) -> str:
    """The line with the symbol's name (decorators come before it)."""
    for n in range(symbol.line, min(symbol.end_line, symbol.line + 10) + 1):
        if symbol.name in lines[n - 1]:
            return lines[n - 1]
    return lines[symbol.line - 1]


@dataclass(frozen=True)
class Recall:
    files: int
    files_found: int
    functions: int
    functions_found: int

    @property
    def complete(self) -> bool:
        return self.files_found == self.files and self.functions_found == self.functions


def recall(prompt: str, items: list[Changed]) -> Recall:
    files = sorted({c.path for c in items})
    functions = [c for c in items if c.function]
    return Recall(len(files), sum(1 for f in files if f in prompt),
                  len(functions), sum(1 for c in functions if all(line in prompt for line in c.lines)))
