"""Red builds whose pull request attacks the worker through the files its sandboxes leave behind,
end to end: webhook → Redis → Celery worker → Docker sandboxes → fake GitHub."""

from __future__ import annotations

import os

import pytest
import yaml

from tests.repos import BASE_FILES, BROKEN_CALC, FIXED_CALC, REPO
from tests.support.fake_openai import call, finish
from tests.support.git_http import Symlink
from tests.workers.handlers.test_red_build import AGENT_FIX, fail_run

pytestmark = pytest.mark.docker


def setup_repo(gh, repair: dict, base_extra: dict, head_files: dict) -> str:
    gh.add_repo(REPO, {**BASE_FILES, ".github/qwen.yml": yaml.safe_dump({"repair": repair}), **base_extra})
    head = gh.push(REPO, "feature", head_files, "Refactor add", parent_branch="main")
    gh.add_pull(REPO, 7, head_ref="feature", base_ref="main")
    return head


def test_setup_products_never_land_outside_the_worktree(stack, tmp_path):
    """The pull request commits `link -> <host dir>` and changes the bootstrap script that
    `repair.setup` runs, so the setup replaces `link` with a directory and writes `link/x`. Fails
    on main: carrying the products into the next worktree followed the PR's symlink and hard-linked
    `x` into the host directory, as the worker's user."""
    host = tmp_path / "host-dir"
    host.mkdir()
    (host / "keep.txt").write_text("host file\n")
    gh = stack.github
    head = setup_repo(
        gh, {"mode": "commit", "setup": "sh script/bootstrap"}, {"script/bootstrap": "echo bootstrapped\n"},
        {"calc.py": BROKEN_CALC, "link": Symlink(str(host)),
         "script/bootstrap": "rm -f link && mkdir link && echo pwned > link/x && echo pwned > link/keep.txt\n"})
    stack.model.script(AGENT_FIX)
    job = stack.wait(fail_run(stack, head))
    assert sorted(os.listdir(host)) == ["keep.txt"] and (host / "keep.txt").read_text() == "host file\n"
    # the repair itself went on: the products it could not place are simply not there
    assert job.state == "succeeded", job.outcome
    new_head = gh.ref(REPO, "refs/heads/feature")
    assert gh.file_at(REPO, new_head, "calc.py") == FIXED_CALC
    assert gh.file_at(REPO, new_head, "script/bootstrap").startswith("rm -f link")


def test_a_candidate_cannot_poison_what_validation_runs(stack):
    """`repair.setup` generates the test runner `bin/check`; a candidate's sandbox rewrites it in
    place (`exit 0`) and proposes a no-op edit. Fails on main: setup products were hard links to one
    shared file, so the "pristine" validation ran the poisoned runner and the no-op was delivered
    as a verified fix."""
    gh = stack.github
    bootstrap = "mkdir -p bin && printf 'python3 -m pytest -q \"$@\"\\n' > bin/check\n"
    head = setup_repo(
        gh, {"mode": "commit", "setup": "sh script/bootstrap", "command": "sh bin/check",
             "regression_command": "sh bin/check", "candidates": 1},
        {"script/bootstrap": bootstrap}, {"calc.py": BROKEN_CALC})
    stack.model.script([
        call("run", command="echo 'exit 0  # poisoned' > bin/check && sh bin/check"),
        call("edit_file", path="calc.py", old="def add(a, b):", new="def add(a, b):  # tidied"),
        finish("Tidied add(); the tests pass."),
    ])
    job = stack.wait(fail_run(stack, head))
    assert job.state == "failed" and "no verified fix" in job.outcome, job.outcome
    assert gh.ref(REPO, "refs/heads/feature") == head  # nothing delivered
    [candidate] = job.result["candidates"]
    assert not candidate["verified"] and "`sh bin/check` still fails (exit 1)" in candidate["reasons"]
    [comment] = gh.bot_comments(REPO, 7)
    assert "could not find a verified fix" in comment["body"] and "still fails" in comment["body"]


FILLING_TEST = '''import time
from pathlib import Path

from calc import add


def test_add():
    for i in range(300):  # 300 MB of "fixtures"
        Path(f"fixture-{i}.bin").write_bytes(bytes(1 << 20))
        time.sleep(0.02)
    assert add(2, 3) == 5
'''


@pytest.mark.stack_settings(sandbox_disk_mb=20)
def test_a_pull_request_that_fills_the_disk_is_stopped_and_told_why(stack, tmp_path):
    """The pull request's test writes 300 MB into the worktree. Fails on main: nothing stopped it,
    the job never said why, and the released worktree slot kept what the sandbox wrote."""
    gh = stack.github
    head = setup_repo(gh, {"mode": "commit"}, {}, {"calc.py": BROKEN_CALC, "tests/test_calc.py": FILLING_TEST})
    job = stack.wait(fail_run(stack, head))
    assert job.state == "failed", job.outcome
    assert "the sandbox wrote more than 20 MB" in job.outcome and "QWENFIX_SANDBOX_DISK_MB" in job.outcome
    [comment] = gh.bot_comments(REPO, 7)
    assert "was stopped: the sandbox wrote more than 20 MB" in comment["body"]
    [check] = gh.check_runs(REPO, head)
    assert check["conclusion"] == "neutral"
    assert stack.model.requests == []  # the environment's limit, not a failure for the model
    slots = stack.settings.data_dir / "worktrees"
    assert [p for p in slots.rglob("fixture-*")] == []  # the released slot keeps nothing of it
