"""prettier and eslint: check mode → fix mode."""

from __future__ import annotations

_PRETTIER_CHECK = {"--check", "-c", "--list-different", "-l"}


def prettier(prefix: list[str], tool: str, args: list[str]) -> tuple[str, list[str]] | None:
    """`prettier --check|-c|--list-different PATHS` → `prettier --write PATHS`."""
    if not _PRETTIER_CHECK.intersection(args):
        return None
    rest = [a for a in args if a not in _PRETTIER_CHECK]
    if "--write" not in rest and "-w" not in rest:
        rest = ["--write", *rest]
    return "prettier --write", [*prefix, tool, *rest]


def eslint(prefix: list[str], tool: str, args: list[str]) -> tuple[str, list[str]] | None:
    """`eslint PATHS` → `eslint --fix PATHS`."""
    rest = [a for a in args if a != "--fix-dry-run"]
    if "--fix" not in rest:
        rest = ["--fix", *rest]
    return "eslint --fix", [*prefix, tool, *rest]


RULES = {"prettier": prettier, "eslint": eslint}
