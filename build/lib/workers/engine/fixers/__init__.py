"""Deterministic fixers: turn a formatter/linter *check* command into the commands that fix.

`fixer_for("ruff format --check src && black --check .")` finds every check-mode tool call in
a (possibly multi-line, `&&`/`;`/`|`-joined) shell command and returns the fix commands, to run
inside the sandbox at the same working directory; the caller then re-runs the original check
command to verify. The exit status of a fix command means nothing (pre-commit exits 1 after
modifying files); only the re-run check counts.

Commands are parsed with shlex and rebuilt with shlex quoting: nothing from the (untrusted)
command is pasted into a shell string unquoted.
"""

from __future__ import annotations

import os.path
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field

from workers.engine.fixers import node, python_formatters

# A rule gets one simple command split into (prefix, tool, args) and returns the fixing argv
# (without env assignments) plus a short name, or None when the call is not in check mode.
Rule = Callable[[list[str], str, list[str]], "tuple[str, list[str]] | None"]


@dataclass(frozen=True)
class Fixer:
    name: str  # e.g. "ruff check --fix + black"
    check_command: str  # the original command; re-run it to verify
    fix_commands: list[str] = field(default_factory=list)  # shell strings, run in order


_OPERATORS = {"&&", "||", ";", "|", "&", "|&", ";;", "(", ")"}
_KEYWORDS = {"if", "then", "else", "elif", "do", "while", "until", "!", "time", "{", "}",
             "exec", "command"}
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")

# launchers that run a tool: "python -m X", "npx X", "poetry run X", …
_TWO_WORD_LAUNCHERS = {
    ("poetry", "run"), ("uv", "run"), ("pdm", "run"), ("hatch", "run"), ("rye", "run"),
    ("pipx", "run"), ("pnpm", "exec"), ("pnpm", "dlx"), ("npm", "exec"), ("yarn", "exec"),
    ("yarn", "dlx"), ("bun", "x"), ("pipenv", "run"),
}
_ONE_WORD_LAUNCHERS = {"npx", "pnpx", "bunx", "uvx", "yarn", "pnpm"}
_PYTHON = re.compile(r"^python(?:\d+(?:\.\d+)?)?$|^py$")


def _join(argv: list[str]) -> str:
    """shlex.join that keeps `NAME=value` prefixes as assignments."""
    parts: list[str] = []
    leading = True
    for token in argv:
        leading = leading and bool(_ASSIGNMENT.match(token))
        if leading:
            name, value = token.split("=", 1)
            parts.append(f"{name}={shlex.quote(value)}")
        else:
            parts.append(shlex.quote(token))
    return " ".join(parts)


def split_simple_commands(command: str) -> list[list[str]]:
    """Split shell text into simple commands (argv lists), at newlines and operators.

    `cd DIR` commands are kept so callers can follow directory changes. Lines that shlex
    cannot parse (unbalanced quotes, heredocs) are skipped.
    """
    text = re.sub(r"\\\r?\n", " ", command)
    commands: list[list[str]] = []
    for line in text.splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|()")
        lexer.whitespace_split = True
        lexer.commenters = "#"
        try:
            tokens = list(lexer)
        except ValueError:
            continue
        current: list[str] = []
        for token in tokens:
            if token in _OPERATORS or (token and set(token) <= set(";&|()")):
                if current:
                    commands.append(current)
                current = []
                continue
            if not current and token in _KEYWORDS:
                continue
            current.append(token)
        if current:
            commands.append(current)
    return commands


def split_launcher(argv: list[str]) -> tuple[list[str], str, list[str]] | None:
    """(prefix, tool, args) for `[python -m|npx|poetry run …] TOOL ARGS`; env assignments and
    launcher options belong to the prefix. The tool is the basename without `@version`."""
    i = 0
    while i < len(argv) and _ASSIGNMENT.match(argv[i]):
        i += 1
    while i < len(argv):
        word = os.path.basename(argv[i])
        if _PYTHON.match(word) and i + 1 < len(argv) and argv[i + 1] == "-m":
            i += 2
            break
        if i + 1 < len(argv) and (word, argv[i + 1]) in _TWO_WORD_LAUNCHERS:
            i += 2
        elif word in _ONE_WORD_LAUNCHERS:
            i += 1
        else:
            break
        while i < len(argv) and argv[i].startswith("-"):  # launcher flags: npx --yes, uv run -q
            i += 1
            if argv[i - 1] == "--":
                break
    if i >= len(argv):
        return None
    tool = os.path.basename(argv[i])
    if not tool.startswith("@"):
        tool = tool.split("@", 1)[0]
    return argv[:i], tool, argv[i + 1:]


def _registry() -> dict[str, Rule]:
    return {**python_formatters.RULES, **node.RULES}


def fixer_for(command: str) -> Fixer | None:
    """The deterministic fixer for a failing check command, or None when nothing in it is a
    formatter/linter in check mode."""
    rules = _registry()
    fixes: list[str] = []
    names: list[str] = []
    cd_prefix: list[str] = []
    for argv in split_simple_commands(command or ""):
        if argv[0] in ("cd", "pushd") and len(argv) == 2:
            cd_prefix.append(argv[1])
            continue
        if argv[0] == "popd" and cd_prefix:
            cd_prefix.pop()
            continue
        parts = split_launcher(argv)
        if parts is None:
            continue
        prefix, tool, args = parts
        rule = rules.get(tool)
        result = rule(prefix, argv[len(prefix)], args) if rule else None
        if result is None:
            continue
        name, fixed = result
        line = _join(fixed)
        if cd_prefix:
            line = " && ".join(f"cd {shlex.quote(d)}" for d in cd_prefix) + " && " + line
        if line not in fixes:
            fixes.append(line)
        if name not in names:
            names.append(name)
    if not fixes:
        return None
    return Fixer(name=" + ".join(names), check_command=command, fix_commands=fixes)


__all__ = ["Fixer", "fixer_for", "split_launcher", "split_simple_commands"]
