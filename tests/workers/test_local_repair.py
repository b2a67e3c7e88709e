"""`qwenfix repair` and the repair engine end to end: a small git repository with a failing pytest
test, the real Docker sandbox, and the real openai client against the scripted model server."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
from rich.console import Console

from tests.support.db import settings_env
from tests.support.docker import SANDBOX_IMAGE
from tests.support.fake_openai import call, finish, last_observation
from workers.agent.llm import ModelClient
from workers.engine.repair import repair
from workers.engine.task import RepairTask, RepoContext
from workers.local_repair import (
    EXIT_ALREADY_PASSING,
    EXIT_FIXED,
    EXIT_NO_FIX,
    EXIT_NO_MODEL,
    EXIT_USAGE,
    repair_local,
)
from workers.workspace.mirrors import MirrorCache

pytestmark = pytest.mark.docker

API_KEY = "sk-local-model-key-0123456789abcdef"
TOKEN = "ghs_installationTokenPlantedInTheRepo42"
COMMAND = "python3 -m pytest -q -p no:cacheprovider"
BROKEN = "def add(a, b):\n    return a - b\n\n\ndef sub(a, b):\n    return a - b\n"
FIXED = "def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a - b\n"
ROOT = Path(__file__).resolve().parents[2]


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(root), "-c", "user.name=dev", "-c", "user.email=dev@example.com", *args],
                          check=True, capture_output=True, text=True).stdout


@pytest.fixture
def checkout(tmp_path) -> Path:
    """calc.py has a bug that only the (uncommitted, untracked) test for add() reveals."""
    root = tmp_path / "calc"
    (root / "tests").mkdir(parents=True)
    (root / "calc.py").write_text(BROKEN)
    (root / "tests" / "test_sub.py").write_text("from calc import sub\n\n\ndef test_sub():\n    assert sub(5, 3) == 2\n")
    (root / "README.md").write_text(f"# calc\n\nDeploy with GITHUB_TOKEN={TOKEN}\n")
    (root / "AGENTS.md").write_text("Keep changes minimal.\n")
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "calc")
    (root / "tests" / "test_add.py").write_text("from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n")
    return root


@pytest.fixture
def settings(make_settings, fake_model, docker_engine):
    return make_settings(llm_base_url=fake_model.base_url, llm_api_key=API_KEY, llm_model="qwen3-coder-test",
                         llm_timeout_s=10, llm_max_retries=0, sandbox_engine="docker", sandbox_image=SANDBOX_IMAGE,
                         sandbox_memory_mb=512, sandbox_command_timeout_s=60, private_key=TOKEN)


def fix_script(shape: str = "native") -> list[dict]:
    return [
        call("read_file", shape=shape, path="calc.py"),
        call("edit_file", shape=shape, path="calc.py", old="def add(a, b):\n    return a - b",
             new="def add(a, b):\n    return a + b"),
        call("run", shape=shape, command=COMMAND),
        finish("add() subtracted; it now adds.", shape=shape),
    ]


def run_local(checkout: Path, settings, apply: bool = False, candidates: int = 1) -> tuple[int, str]:
    out = io.StringIO()
    code = repair_local(checkout, COMMAND, None, candidates, apply, settings, Console(file=out, width=200))
    return code, out.getvalue()


def test_a_scripted_agent_repairs_the_checkout_and_applies_the_verified_patch(checkout, settings, fake_model):
    fake_model.script(fix_script("xml"))
    code, out = run_local(checkout, settings, apply=True)
    assert code == EXIT_FIXED, out
    assert "+    return a + b" in out and "add() subtracted; it now adds." in out
    assert (checkout / "calc.py").read_text() == FIXED
    # the patch was relative to the user's uncommitted state: their new test is untouched, not duplicated
    assert (checkout / "tests" / "test_add.py").exists()
    assert git(checkout, "status", "--porcelain").split("\n")[:2] == [" M calc.py", "?? tests/test_add.py"]
    bodies = [r.body for r in fake_model.chat_requests()]
    assert len(bodies) == 4
    run_observation = last_observation(bodies[3]["messages"])
    assert "[exit code 0" in run_observation and "2 passed" in run_observation
    # the task carried the context, fenced; no secret reached the model
    task_message = bodies[0]["messages"][1]["content"]
    assert '<untrusted-data source="AGENTS.md">' in task_message and "Keep changes minimal." in task_message
    # … and the reproduction it had just run, with the code of the function the failing test calls
    assert '<untrusted-data source="reproduction">' in task_message and "assert -1 == 5" in task_message
    assert "calc.py — add (lines 1-2; called by test_add)" in task_message
    assert "    2      return a - b" in task_message
    dumped = json.dumps(bodies)
    assert TOKEN not in dumped and API_KEY not in dumped and "[redacted]" in dumped


def test_an_uncommitted_bug_is_reproduced_and_without_apply_the_checkout_is_left_alone(checkout, settings, fake_model):
    (checkout / "calc.py").write_text(FIXED)
    git(checkout, "add", "-A")
    git(checkout, "commit", "-qm", "fixed and tested")
    (checkout / "calc.py").write_text(BROKEN)  # the bug exists only in the working tree
    fake_model.script(fix_script())
    code, out = run_local(checkout, settings)
    assert code == EXIT_FIXED, out
    assert "+    return a + b" in out and "--apply" in out
    assert (checkout / "calc.py").read_text() == BROKEN
    assert "[exit code 0" in last_observation(fake_model.chat_requests()[3].messages)


def test_the_command_already_passing_exits_3_without_a_model_call(checkout, settings, fake_model):
    (checkout / "tests" / "test_add.py").unlink()
    code, out = run_local(checkout, settings)
    assert code == EXIT_ALREADY_PASSING and "already passes" in out
    assert fake_model.chat_requests() == []


def test_no_model_configured_exits_4(checkout, make_settings, docker_engine):
    settings = make_settings(llm_base_url="", sandbox_engine="docker", sandbox_image=SANDBOX_IMAGE)
    code, out = run_local(checkout, settings)
    assert code == EXIT_NO_MODEL and "No model endpoint configured" in out


def test_an_unreachable_model_exits_4_before_any_work(checkout, settings):
    code, out = run_local(checkout, settings.model_copy(update={"llm_base_url": "http://127.0.0.1:1/v1"}))
    assert code == EXIT_NO_MODEL and "cannot be reached" in out


def test_no_verified_patch_exits_1_and_says_why(checkout, settings, fake_model):
    fake_model.script([call("create_file", path="notes.txt", content="I give up\n"), finish("Could not fix it.")])
    code, out = run_local(checkout, settings, apply=True)
    assert code == EXIT_NO_FIX and "still fails (exit 1)" in out
    assert (checkout / "calc.py").read_text() == BROKEN and not (checkout / "notes.txt").exists()


def test_a_path_outside_git_exits_2(tmp_path, settings):
    (tmp_path / "plain").mkdir()
    code, out = run_local(tmp_path / "plain", settings)
    assert code == EXIT_USAGE and "not inside a git checkout" in out


def test_the_qwenfix_repair_command(checkout, settings, fake_model, tmp_path):
    fake_model.script(fix_script("json"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("QWENFIX_")}
    env.update(settings_env(settings))
    done = subprocess.run([sys.executable, "-m", "app.cli", "repair", str(checkout), "--command", COMMAND,
                           "--candidates", "1", "--apply"], cwd=tmp_path, env={**env, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == EXIT_FIXED, done.stdout + done.stderr
    assert (checkout / "calc.py").read_text() == FIXED
    assert API_KEY not in done.stdout + done.stderr


# -------------------------------------------------------------------------- the engine itself


@pytest.fixture
def engine_parts(checkout, tmp_path, sandbox_factory):
    git(checkout, "add", "-A")
    git(checkout, "commit", "-qm", "test add")
    head = git(checkout, "rev-parse", "HEAD").strip()
    mirrors = MirrorCache(tmp_path / "mirrors", 1024**3)

    def at(sha: str):
        @contextmanager
        def fresh():
            with mirrors.checkout(str(checkout), sha, None) as worktree:
                yield worktree
        return fresh

    return at(head), head, sandbox_factory, at


def test_candidates_run_in_parallel_and_the_smallest_verified_patch_is_chosen(engine_parts, fake_model):
    fresh, head, start, _ = engine_parts
    verbose = "def add(a, b):\n    # add the two numbers\n    result = a + b\n    return result"

    def by_temperature(step):
        def reply(body):
            sampled = body["temperature"] > 0
            script = [call("edit_file", path="calc.py", old="def add(a, b):\n    return a - b",
                           new="def add(a, b):\n    return a + b" if sampled else verbose),
                      finish("sampled" if sampled else "greedy")]
            return script[step]
        return reply

    fake_model.script([by_temperature(0), by_temperature(1)])
    client = ModelClient(fake_model.base_url, API_KEY, "qwen3-coder-test", timeout_s=10, max_retries=0)
    stages = []
    result = repair(RepairTask(COMMAND, candidates=2, parallel=2), fresh, head, start, client, RepoContext(),
                    progress=lambda stage, detail="": stages.append(stage), secrets=[API_KEY])
    assert result.status == "fixed" and [c.verified for c in result.candidates] == [True, True]
    assert result.chosen.summary == "sampled" and result.chosen.diff_lines == 2
    assert sorted(r.body["temperature"] for r in fake_model.chat_requests()) == [0.0, 0.0, 0.7, 0.7]
    assert stages[0] == "reproducing" and stages.count("attempt") == 2 and "validating" in stages
    assert result.chosen.usage_dict()["model_calls"] == 2 and result.chosen.trajectory_records()[0]["candidate"] == 1


def test_a_deterministic_fixer_needs_no_model(engine_parts, fake_model, checkout):
    _, _, start, at = engine_parts
    (checkout / "calc.py").write_text("def add( a,b ):\n    return a+b\n")
    git(checkout, "commit", "-qam", "ugly")
    head = git(checkout, "rev-parse", "HEAD").strip()
    result = repair(RepairTask("ruff format --check ."), at(head), head, start, None, RepoContext())
    assert result.status == "fixed" and result.fixer_used and result.chosen.source.startswith("fixer:")
    assert "+def add(a, b):" in result.chosen.patch and fake_model.requests == []


def test_cancelling_after_the_reproduction_stops_before_any_model_call(engine_parts, fake_model):
    fresh, head, start, _ = engine_parts
    client = ModelClient(fake_model.base_url, API_KEY, "m", timeout_s=10, max_retries=0)
    result = repair(RepairTask(COMMAND), fresh, head, start, client, RepoContext(), cancelled=lambda: True)
    assert result.status == "cancelled" and result.reproduction.exit_code == 1 and fake_model.requests == []
