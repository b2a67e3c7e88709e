"""Detect a repository's test command from its files, when neither CI nor config names one.

The files are the pull request's: each is read only when it is a regular file of the checkout (a
symlink to `/dev/zero` or to a host file is not one), and only its first megabyte."""

from __future__ import annotations

import json
from pathlib import Path

from workers.workspace.confined import Refused, path_kind, read_file

MAX_READ = 1 << 20


def _kind(root: Path, name: str) -> str | None:
    try:
        return path_kind(root, name)
    except Refused:
        return None


def _text(root: Path, name: str) -> str:
    try:
        return read_file(root, name, limit=MAX_READ)[:MAX_READ].decode("utf-8", errors="replace")
    except (OSError, Refused):
        return ""


def detect_test_command(root: Path) -> str | None:
    if _kind(root, "package.json") == "file":
        try:
            scripts = json.loads(_text(root, "package.json")).get("scripts") or {}
        except (ValueError, AttributeError):
            scripts = {}
        if "test" in scripts:
            return "npm test"
    python_markers = ("pytest.ini", "pyproject.toml", "setup.cfg", "setup.py", "tox.ini", "conftest.py")
    if any(_kind(root, name) == "file" for name in python_markers) or _kind(root, "tests") == "dir":
        return "python3 -m pytest -q"
    if _kind(root, "go.mod") == "file":
        return "go test ./..."
    if _kind(root, "Cargo.toml") == "file":
        return "cargo test"
    if _kind(root, "Makefile") == "file" and any(line.startswith("test:") for line in _text(root, "Makefile").splitlines()):
        return "make test"
    return None
