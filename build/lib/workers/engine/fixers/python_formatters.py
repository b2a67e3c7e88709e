"""ruff, black, isort and pre-commit: check mode → fix mode."""

from __future__ import annotations


def _without(args: list[str], drop: set[str]) -> list[str]:
    return [a for a in args if a not in drop]


def ruff(prefix: list[str], tool: str, args: list[str]) -> tuple[str, list[str]] | None:
    """`ruff format --check` → `ruff format`; `ruff check` → `ruff check --fix`."""
    if not args:
        return None
    sub, rest = args[0], args[1:]
    if sub == "format":
        if "--check" not in rest and "--diff" not in rest:
            return None  # already fixing
        return "ruff format", [*prefix, tool, "format", *_without(rest, {"--check", "--diff"})]
    if sub == "check":
        rest = _without(rest, {"--no-fix", "--diff", "--fix-only"})
        if "--watch" in rest or "-w" in rest:
            return None
        fix = [] if "--fix" in rest else ["--fix"]
        return "ruff check --fix", [*prefix, tool, "check", *fix, *rest]
    return None


def black(prefix: list[str], tool: str, args: list[str]) -> tuple[str, list[str]] | None:
    """`black --check [--diff] PATHS` → `black PATHS`."""
    if "--check" not in args and "--diff" not in args:
        return None
    return "black", [*prefix, tool, *_without(args, {"--check", "--diff", "--color",
                                                      "--no-color"})]


def isort(prefix: list[str], tool: str, args: list[str]) -> tuple[str, list[str]] | None:
    """`isort --check-only|--check|-c [--diff] PATHS` → `isort PATHS`."""
    check = {"--check-only", "--check", "-c"}
    if not check.intersection(args):
        return None
    return "isort", [*prefix, tool, *_without(args, check | {"--diff", "--df"})]


def pre_commit(prefix: list[str], tool: str, args: list[str]) -> tuple[str, list[str]] | None:
    """`pre-commit run …` fixes in place: the fix is the same command (then verify)."""
    if not args or args[0] != "run":
        return None
    return "pre-commit", [*prefix, tool, *args]


RULES = {
    "ruff": ruff,
    "black": black,
    "isort": isort,
    "pre-commit": pre_commit,
    "pre_commit": pre_commit,  # python -m pre_commit
}
