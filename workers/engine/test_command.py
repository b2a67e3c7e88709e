"""Detect a repository's test command from its files, when neither CI nor config names one."""

from __future__ import annotations

import json
from pathlib import Path


def detect_test_command(root: Path) -> str | None:
    if (root / "package.json").is_file():
        try:
            scripts = json.loads((root / "package.json").read_text()).get("scripts") or {}
        except (ValueError, AttributeError):
            scripts = {}
        if "test" in scripts:
            return "npm test"
    python_markers = ("pytest.ini", "pyproject.toml", "setup.cfg", "setup.py", "tox.ini", "conftest.py")
    if any((root / name).is_file() for name in python_markers) or (root / "tests").is_dir():
        return "python3 -m pytest -q"
    if (root / "go.mod").is_file():
        return "go test ./..."
    if (root / "Cargo.toml").is_file():
        return "cargo test"
    makefile = root / "Makefile"
    if makefile.is_file() and any(line.startswith("test:") for line in makefile.read_text(errors="replace").splitlines()):
        return "make test"
    return None
