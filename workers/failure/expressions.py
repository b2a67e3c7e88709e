"""GitHub Actions expressions (what is inside `${{ … }}`, or an `if:`) evaluated as far as they can
be without a runner: literals, the matrix entry, plain env, `runner.os` (Linux) and
`github.event_name` (a pull request), the operators and the common functions. Anything else
(secrets, steps, needs, github.sha, hashFiles, …) is UNKNOWN, and so is what depends on it.

Real workflows write `${{ matrix.name || matrix.python }}`, `${{ matrix.config.python }}` or
`if: startsWith(matrix.os, 'windows')`; each is decided here. The text comes from a pull request:
tokens are read left to right by anchored regexes without nested repetition, and nesting is capped,
so the time is linear in its length."""

from __future__ import annotations

import json
import math
import re
from typing import Any

UNKNOWN: Any = type("Unknown", (), {"__repr__": lambda self: "UNKNOWN"})()
_MAX_DEPTH = 32
MAX_TEXT = 64 * 1024  # the longest value a function builds here; longer is UNKNOWN
_TOKEN = re.compile(r"""\s*(?:
    (?P<str>'(?:[^']|'')*')
  | (?P<num>-?(?:0x[0-9a-fA-F]+|\d+(?:\.\d+)?(?:[eE][-+]?\d+)?))
  | (?P<name>[A-Za-z_][\w-]*)
  | (?P<op>\|\||&&|==|!=|<=|>=|[<>!()\[\],.*])
)""", re.X)
_REST = re.compile(r"\s*$")
# Contexts a Linux runner running the job for a pull request knows without the event's payload.
_FIXED = {("runner", "os"): "Linux", ("github", "event_name"): "pull_request", ("github", "workspace"): "."}


def _tokens(text: str) -> list[tuple[str, str]] | None:
    found, pos = [], 0
    while not _REST.match(text, pos):
        m = _TOKEN.match(text, pos)
        if not m:
            return None
        kind = m.lastgroup or ""
        found.append((kind, m.group(kind)))
        pos = m.end()
    return found


def _number(value: Any) -> float:
    if value is None or value is False:
        return 0.0
    if value is True:
        return 1.0
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(int(value, 16)) if value.strip().lower().startswith("0x") else float(value.strip() or 0)
        except ValueError:
            return math.nan
    return math.nan


def truthy(value: Any) -> bool:
    return value not in (None, False, "") and not (isinstance(value, (int, float)) and (value == 0 or math.isnan(value)))


def _equal(left: Any, right: Any) -> bool:
    if isinstance(left, str) and isinstance(right, str):
        return left.lower() == right.lower()  # GitHub compares strings ignoring case
    if type(left) is type(right) or (isinstance(left, (dict, list)) or isinstance(right, (dict, list))):
        return left is right or left == right
    return _number(left) == _number(right)


def as_text(value: Any) -> str | None:
    """A value as `${{ … }}` puts it in text; None for UNKNOWN, objects and arrays."""
    if value is UNKNOWN or isinstance(value, (dict, list)):
        return None
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _matrix_value(raw: str) -> Any:
    """Matrix values are kept as text: objects and arrays as JSON, booleans as true/false."""
    if raw in ("true", "false"):
        return raw == "true"
    if raw[:1] in ("{", "["):
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]], matrix: dict[str, str], env: dict[str, str],
                 inputs: dict[str, str | None] | None = None, no_secrets: bool = False):
        self.tokens, self.at, self.depth = tokens, 0, 0
        self.matrix, self.env, self.inputs, self.no_secrets = matrix, env, inputs, no_secrets

    def peek(self) -> str | None:
        return self.tokens[self.at][1] if self.at < len(self.tokens) else None

    def take(self, expected: str | None = None) -> tuple[str, str]:
        if self.at >= len(self.tokens) or (expected is not None and self.tokens[self.at][1] != expected):
            raise ValueError("unexpected end or token")
        self.at += 1
        return self.tokens[self.at - 1]

    def expression(self) -> Any:
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise ValueError("nested too deep")
        value = self.conjunction()
        while self.peek() == "||":
            self.take()
            right = self.conjunction()
            if value is not UNKNOWN and not truthy(value):
                value = right
        self.depth -= 1
        return value

    def conjunction(self) -> Any:
        value = self.comparison()
        while self.peek() == "&&":
            self.take()
            right = self.comparison()
            if value is not UNKNOWN and truthy(value):
                value = right
        return value

    def comparison(self) -> Any:
        left = self.unary()
        op = self.peek()
        if op not in ("==", "!=", "<", ">", "<=", ">="):
            return left
        self.take()
        right = self.unary()
        if left is UNKNOWN or right is UNKNOWN:
            return UNKNOWN
        if op in ("==", "!="):
            return _equal(left, right) == (op == "==")
        a, b = (left.lower(), right.lower()) if isinstance(left, str) and isinstance(right, str) \
            else (_number(left), _number(right))
        return {"<": a < b, ">": a > b, "<=": a <= b, ">=": a >= b}[op]

    def unary(self) -> Any:
        nots = 0
        while self.peek() == "!":  # counted, not recursed: `!!!…` is no deeper than `!`
            self.take()
            nots += 1
        value = self.primary()
        if nots == 0 or value is UNKNOWN:
            return value
        return (not truthy(value)) if nots % 2 else truthy(value)

    def primary(self) -> Any:
        kind, text = self.take()
        if text == "(":
            value = self.expression()
            self.take(")")
            return value
        if kind == "str":
            return text[1:-1].replace("''", "'")
        if kind == "num":
            return float(int(text, 16)) if "x" in text.lower() else float(text)
        if kind != "name":
            raise ValueError(f"unexpected {text!r}")
        path: list[str] = [text]
        if self.peek() == "(":
            path, value = ["()"], self.call(text.lower())  # fromJSON(…)[1] reads into the result
        elif text in ("true", "false", "null"):
            return None if text == "null" else text == "true"
        else:
            value = self.context(text)
        while self.peek() in (".", "["):
            if self.take()[1] == ".":
                key: Any = self.take()[1]
            else:
                key = self.expression()
                self.take("]")
            path.append(key if isinstance(key, str) else "")
            value = self.member(path, value, key)
        return value

    def context(self, name: str) -> Any:
        if name == "matrix":
            return {k: _matrix_value(v) for k, v in self.matrix.items()}
        if name == "env":
            return dict(self.env)
        if name == "inputs" and self.inputs is not None:  # a composite action's (None: not known here)
            return {k: UNKNOWN if v is None else v for k, v in self.inputs.items()}
        return UNKNOWN if name not in ("runner", "github") else {}

    def member(self, path: list[str], value: Any, key: Any) -> Any:
        if len(path) == 2 and tuple(path) in _FIXED:
            return _FIXED[tuple(path)]
        if len(path) == 2 and path[0] == "secrets" and self.no_secrets:
            return ""  # as for a fork's pull request, where no secret is given
        if value is UNKNOWN or key is UNKNOWN or path[0] in ("runner", "github"):
            return UNKNOWN
        if isinstance(value, dict):
            if key in value:
                return value[key]
            # a key no matrix entry has, or an env var not set in plain text: not known here
            return None if len(path) > 2 else UNKNOWN
        if isinstance(value, list) and isinstance(key, float) and key.is_integer() and 0 <= key < len(value):
            return value[int(key)]
        return None

    def call(self, name: str) -> Any:
        self.take("(")
        args: list[Any] = []
        while self.peek() != ")":
            args.append(self.expression())
            if self.peek() == ",":
                self.take()
        self.take(")")
        if name in ("success", "always") and not args:
            return True
        if name in ("failure", "cancelled") and not args:
            return False
        if any(a is UNKNOWN for a in args):
            return UNKNOWN
        if name == "format" and args and isinstance(args[0], str):
            return _format(args[0], args[1:])
        if name in ("contains", "startswith", "endswith") and len(args) == 2:
            haystack, needle = args
            if name == "contains" and isinstance(haystack, list):
                return any(_equal(item, needle) for item in haystack)
            h, n = (as_text(haystack) or "").lower(), (as_text(needle) or "").lower()
            return {"contains": n in h, "startswith": h.startswith(n), "endswith": h.endswith(n)}[name]
        if name == "join" and args and isinstance(args[0], list):
            sep = as_text(args[1]) if len(args) > 1 else ","
            parts = [as_text(a) for a in args[0]]
            if sep is None or None in parts or sum(len(p or "") + len(sep) for p in parts) > MAX_TEXT:
                return UNKNOWN
            return sep.join(p or "" for p in parts)
        if name == "fromjson" and len(args) == 1 and isinstance(args[0], str):
            try:
                return json.loads(args[0])
            except ValueError:
                return UNKNOWN
        if name == "tojson" and len(args) == 1:
            return json.dumps(args[0], indent=2)
        return UNKNOWN  # hashFiles and anything else


def _format(template: str, args: list[Any]) -> Any:
    out, pos, size = [], 0, 0
    while pos < len(template):
        if size > MAX_TEXT:  # `format('{0}{0}{0}…', big)` would multiply the workflow's own size
            return UNKNOWN
        ch = template[pos]
        if template.startswith("{{", pos) or template.startswith("}}", pos):
            out.append(ch)
            pos += 2
            continue
        if ch == "{":
            close = template.find("}", pos)
            index = template[pos + 1:close] if close > 0 else ""
            if not index.isdigit() or int(index) >= len(args):
                return UNKNOWN
            text = as_text(args[int(index)])
            if text is None:
                return UNKNOWN
            out.append(text)
            size += len(text)
            pos = close + 1
            continue
        out.append(ch)
        pos += 1
    return "".join(out)


def evaluate(expression: str, matrix: dict[str, str], env: dict[str, str],
             inputs: dict[str, str | None] | None = None, no_secrets: bool = False) -> Any:
    """The value of one expression (without `${{ }}`), or UNKNOWN; `inputs` inside a composite
    action. With `no_secrets`, every secret reads as empty, as the sandbox has none (the runner
    of a fork's pull request has none either): `if: secrets.TOKEN != ''` is decided."""
    tokens = _tokens(expression)
    if not tokens:
        return UNKNOWN
    parser = _Parser(tokens, matrix, env, inputs, no_secrets)
    try:
        value = parser.expression()
    except (ValueError, IndexError, KeyError):
        return UNKNOWN
    return value if parser.at == len(tokens) else UNKNOWN
