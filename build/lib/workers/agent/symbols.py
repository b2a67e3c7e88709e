"""The definitions in a source file — classes, functions, methods — with their line spans: Python's
own parser for .py files, one regular expression per language for the others (good enough to find a
function and its braces, not a parser). Used for the repository map and to cut code out of files."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Symbol:
    name: str
    kind: str  # class | function | method | constant (Python's UPPER_CASE module names)
    line: int  # first line (decorators included), 1-based
    end_line: int
    signature: str  # one line, as the map shows it
    parent: str | None = None  # the class of a method

    @property
    def qualified(self) -> str:
        return f"{self.parent}.{self.name}" if self.parent else self.name


SOURCE_SUFFIXES = {".py", ".pyi", ".js", ".jsx", ".mjs", ".cjs", ".ts", ".tsx", ".go", ".rs", ".c", ".h", ".cc",
                   ".cpp", ".hpp", ".java", ".kt", ".scala", ".rb", ".php", ".cs", ".swift"}
_KEYWORDS = {"if", "for", "while", "switch", "catch", "return", "sizeof", "else", "do", "new", "typeof", "function",
             "with", "elif", "except", "print", "super", "await", "yield", "throw", "delete", "in", "of"}
_PATTERNS: dict[str, list[tuple[str, re.Pattern]]] = {
    "js": [("class", re.compile(r"^\s*(?:export\s+)?(?:default\s+)?(?:abstract\s+)?class\s+([A-Za-z_$][\w$]*)")),
           ("function", re.compile(r"^\s*(?:export\s+)?(?:default\s+)?(?:async\s+)?function\s*\*?\s*([A-Za-z_$][\w$]*)\s*[(<]")),
           ("function", re.compile(r"^\s*(?:export\s+)?(?:const|let|var)\s+([A-Za-z_$][\w$]*)\s*(?::[^=]+)?=\s*"
                                   r"(?:async\s*)?(?:function\b|\([^)]*\)\s*(?::[^=]+)?=>|[A-Za-z_$][\w$]*\s*=>)")),
           ("method", re.compile(r"^\s+(?:(?:public|private|protected|static|async|readonly|get|set)\s+)*"
                                 r"([A-Za-z_$][\w$]*)\s*\([^)]*\)\s*(?::\s*[^{]+)?\{\s*$"))],
    "go": [("function", re.compile(r"^func\s+(?:\([^)]*\)\s*)?([A-Za-z_]\w*)\s*[(\[]")),
           ("class", re.compile(r"^type\s+([A-Za-z_]\w*)\s+(?:struct|interface)\b"))],
    "rust": [("function", re.compile(r"^\s*(?:pub(?:\([^)]*\))?\s+)?(?:const\s+)?(?:async\s+)?(?:unsafe\s+)?fn\s+([A-Za-z_]\w*)")),
             ("class", re.compile(r"^\s*(?:pub(?:\([^)]*\))?\s+)?(?:struct|enum|trait)\s+([A-Za-z_]\w*)"))],
    "c": [("function", re.compile(r"^(?!\s)(?:[\w*]+[\s*]+)+?\**([A-Za-z_]\w*)\s*\([^;]*$")),
          ("class", re.compile(r"^\s*(?:class|struct)\s+([A-Za-z_]\w*)\s*(?::[^{]*)?\{"))],
    "java": [("class", re.compile(r"^\s*(?:(?:public|private|protected|abstract|final|static|data|open|sealed)\s+)*"
                                  r"(?:class|interface|enum|record|object)\s+([A-Za-z_]\w*)")),
             ("method", re.compile(r"^\s+(?:(?:public|private|protected|static|final|abstract|synchronized|override|"
                                   r"suspend|open)\s+)+(?:fun\s+)?(?:[\w<>\[\],.?]+\s+)?([A-Za-z_]\w*)\s*\("))],
    "ruby": [("class", re.compile(r"^\s*(?:class|module)\s+([A-Z]\w*)")),
             ("function", re.compile(r"^\s*def\s+(?:self\.)?([a-z_]\w*[?!=]?)"))],
    "php": [("class", re.compile(r"^\s*(?:abstract\s+|final\s+)?class\s+([A-Za-z_]\w*)")),
            ("function", re.compile(r"^\s*(?:(?:public|private|protected|static)\s+)*function\s+&?([A-Za-z_]\w*)"))],
}
_LANGUAGE = {".js": "js", ".jsx": "js", ".mjs": "js", ".cjs": "js", ".ts": "js", ".tsx": "js", ".go": "go",
             ".rs": "rust", ".c": "c", ".h": "c", ".cc": "c", ".cpp": "c", ".hpp": "c", ".java": "java",
             ".kt": "java", ".scala": "java", ".cs": "java", ".swift": "java", ".rb": "ruby", ".php": "php"}


def suffix(path: str) -> str:
    name = path.rpartition("/")[2]
    return "." + name.rpartition(".")[2] if "." in name else ""


def symbols(path: str, text: str) -> list[Symbol]:
    """The file's definitions in source order; [] for files that are not source or do not parse."""
    ext = suffix(path)
    if ext in (".py", ".pyi"):
        return _python(text)
    language = _LANGUAGE.get(ext)
    return _by_pattern(text, language) if language else []


def _python(text: str) -> list[Symbol]:
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return []
    lines = text.splitlines()
    out: list[Symbol] = []

    def add(node, kind: str, parent: str | None) -> None:
        start = min([node.lineno] + [d.lineno for d in node.decorator_list])
        out.append(Symbol(node.name, kind, start, node.end_lineno or node.lineno, _header(lines, node), parent))

    for node in tree.body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name) and target.id.isupper() and len(target.id) > 1:
                    shown = re.sub(r"\s+", " ", (ast.get_source_segment(text, node) or target.id))
                    out.append(Symbol(target.id, "constant", node.lineno, node.end_lineno or node.lineno,
                                      shown if len(shown) <= 80 else shown[:77] + "…"))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            add(node, "function", None)
        elif isinstance(node, ast.ClassDef):
            add(node, "class", None)
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    add(item, "method", node.name)
    return out


def _header(lines: list[str], node) -> str:
    """`def name(args) -> ret` or `class Name(Base)`, on one line."""
    first = node.lineno - 1
    text = lines[first].strip() if first < len(lines) else node.name
    end = first
    while not text.rstrip().endswith(":") and end + 1 < min(len(lines), first + 8):
        end += 1
        text += " " + lines[end].strip()
    return re.sub(r"\s+", " ", text.rstrip(":").strip())[:160]


def _by_pattern(text: str, language: str) -> list[Symbol]:
    lines = text.splitlines()
    found: list[tuple[int, str, str]] = []
    for number, line in enumerate(lines, 1):
        for kind, pattern in _PATTERNS[language]:
            m = pattern.match(line)
            if m and m.group(1) not in _KEYWORDS:
                found.append((number, kind, m.group(1)))
                break
    out = []
    classes: list[Symbol] = []
    for i, (number, kind, name) in enumerate(found):
        end = _block_end(lines, number, language)
        if end is None:  # a declaration without a body
            nxt = found[i + 1][0] - 1 if i + 1 < len(found) else len(lines)
            end = min(nxt, number + 40)
        parent = next((c.name for c in reversed(classes) if c.line < number <= c.end_line), None)
        if kind == "method" and parent is None:
            kind = "function"
        symbol = Symbol(name, kind, number, end, re.sub(r"\s+", " ", lines[number - 1].strip().rstrip("{").strip())[:160],
                        parent if kind == "method" else None)
        if kind == "class":
            classes.append(symbol)
        out.append(symbol)
    return out


def _block_end(lines: list[str], start: int, language: str) -> int | None:
    """The line that closes the block opened at `start` (braces, or Ruby's `end`), None if none opens."""
    if language == "ruby":
        indent = len(lines[start - 1]) - len(lines[start - 1].lstrip())
        for n in range(start, min(len(lines), start + 400)):
            line = lines[n]
            if line.strip() == "end" and len(line) - len(line.lstrip()) == indent:
                return n + 1
        return None
    depth, opened = 0, False
    for n in range(start - 1, min(len(lines), start + 600)):
        code = re.sub(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|//.*$', "", lines[n])
        for char in code:
            if char == "{":
                depth, opened = depth + 1, True
            elif char == "}":
                depth -= 1
                if opened and depth == 0:
                    return n + 1
        if not opened and n >= start + 2:  # no brace within three lines: a prototype or a one-liner
            return None
    return None


def enclosing(found: list[Symbol], line: int) -> Symbol | None:
    """The innermost function or method around `line` (a class only when no function is)."""
    around = [s for s in found if s.line <= line <= s.end_line and s.kind != "constant"]
    functions = [s for s in around if s.kind != "class"]
    pool = functions or around
    return min(pool, key=lambda s: s.end_line - s.line) if pool else None


IDENTIFIER = re.compile(r"[A-Za-z_$][\w$]{2,}")
