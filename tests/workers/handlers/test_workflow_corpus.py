"""The workflow corpus end to end: for each workflow shape (tests/data/workflows/corpus/), a pull
request breaks a test, the run goes red, and red-build repair reproduces it the way CI ran it —
the job's setup steps, its toolchains, its env — through webhook → Redis → Celery worker → Docker
sandboxes → scripted model → a commit on the fake GitHub. Rows whose toolchain the sandbox image
lacks, or whose failure depends on something the sandbox cannot have, end "not reproduced:
environment" naming what is missing, with no model call; every other row ends fixed and delivered.

Dependencies install with no network, from the package cache an air-gapped operator would give
(QWENFIX_SANDBOX_PACKAGE_CACHE; tests/support/packages.py). The table printed at the end is the one
in the README."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from tests.repos import workflow_run_event
from tests.support.fake_openai import call, finish
from tests.support.git_http import bare_repo_path
from tests.support.packages import npm_lock
from tests.workflow_corpus import BROKEN_CALC, Row, rows

pytestmark = pytest.mark.docker

QWEN_YML = "repair:\n  mode: commit\n  candidates: 1\n"


@pytest.fixture
def stack_overrides(package_cache):
    return {"sandbox_package_cache": package_cache}


def run_row(stack, row: Row, run_id: int, branch: str = "feature", number: int = 7, new_repo: bool = True):
    gh = stack.github
    if new_repo:
        gh.add_repo(row.repo, {**row.base_files(), ".github/qwen.yml": QWEN_YML})
    head = gh.push(row.repo, branch, row.broken, "Refactor", parent_branch="main")
    gh.add_pull(row.repo, number, head_ref=branch, base_ref="main")
    if row.fix:
        path, old, new = row.fix
        stack.model.script([call("edit_file", path=path, old=old, new=new), finish(f"{path}: {new.strip()}")])
    before = len(stack.model.chat_requests())
    gh.add_workflow_run(row.repo, run_id, head, path=row.workflow_path, jobs=[row.actions_job(run_id * 10)],
                        pull_numbers=(number,), head_branch=branch)
    payload = workflow_run_event(row.repo, {"id": run_id, "head_sha": head}, (number,), head_branch=branch,
                                 path=row.workflow_path, workflow_id=run_id)
    job = stack.wait(stack.deliver("workflow_run", payload).json()["job"], timeout=900)
    model_calls = len(stack.model.chat_requests()) - before
    new_head = gh.ref(row.repo, f"refs/heads/{branch}")
    # Delivered: the fix, and nothing the setup made (poetry.lock, node_modules, .tox, …).
    delivered = bool(row.fix) and new_head != head and row.fix[2] in gh.file_at(row.repo, new_head, row.fix[0]) \
        and changed_files(gh, row.repo, head, new_head) == [row.fix[0]]
    [check] = gh.check_runs(row.repo, head)
    return job, model_calls, delivered, check


def changed_files(gh, repo: str, old: str, new: str) -> list[str]:
    out = subprocess.run(["git", "--git-dir", str(bare_repo_path(gh.repos_root, repo)), "diff", "--name-only", old, new],
                         capture_output=True, text=True, check=True).stdout
    return out.split()


def outcome(row: Row, job, delivered: bool) -> str:
    if delivered and job.state == "succeeded":
        return "fixed and delivered"
    said = job.outcome.split(" — ")[0].split(":")[0] if job.outcome else job.state
    missing = ((job.result or {}).get("environment_problem") or "").split(";")[0]
    if said == "not reproduced":
        said = "not reproduced: environment"
    return f"{said}: {missing}" if missing else said


CORPUS_ROWS = rows("")  # the shapes; each test takes its row with the package cache's npm lock
TABLE_HEAD = ["| workflow | file | reproduced | fixed and delivered? |", "| --- | --- | --- | --- |"]


@pytest.mark.parametrize("index", range(len(CORPUS_ROWS)), ids=[r.key for r in CORPUS_ROWS])
def test_a_corpus_workflow(stack, package_cache, index, record_property):
    """One row of the table; pytest prints the whole table at the end (tests/conftest.py)."""
    row = rows(npm_lock("jest", package_cache))[index]
    clock = time.monotonic()
    job, model_calls, delivered, check = run_row(stack, row, 2000 + index)
    result = job.result or {}
    print(f"{row.key}: {job.outcome} ({time.monotonic() - clock:.1f} s)", file=sys.stderr, flush=True)
    line = f"| {row.title} | `{row.workflow}` | {result.get('reproduced') or '—'} | {outcome(row, job, delivered)} |"
    record_property("corpus_row", (index, line))
    said = check["output"]["title"] + "\n" + check["output"]["summary"]
    if row.expect == "fixed":
        assert job.state == "succeeded" and delivered and result.get("reproduced") == "exact" \
            and "reproduced: exact" in said, (
                f"{job.state} {job.outcome} reproduced={result.get('reproduced')}\n"
                f"{(result.get('setup_output') or result.get('reproduction') or '')[-1500:]}")
    else:
        assert job.outcome.startswith("not reproduced: environment") and model_calls == 0 \
            and check["output"]["title"] == "Not reproduced: environment", (
                f"expected not reproduced: environment, got {job.outcome} after {model_calls} model calls\n"
                f"{(result.get('reproduction') or '')[-1500:]}")
    assert [word for word in row.needs if word not in said] == [], said


def test_a_second_job_with_the_same_lock_files_restores_the_setup_from_the_cache(stack, package_cache):
    [first] = [r for r in rows("") if r.key == "python-app"]
    job, _, delivered, _ = run_row(stack, first, 2998)
    assert job.state == "succeeded" and delivered and job.result["setup_cached"] is False, job.outcome
    second = Row(**{**first.__dict__, "broken": {"calc.py": BROKEN_CALC + "\n# again\n"}})
    job, _, delivered, check = run_row(stack, second, 2999, branch="feature-2", number=8, new_repo=False)
    assert job.state == "succeeded" and delivered, job.outcome
    assert job.result["setup_cached"] is True
    assert "setup restored from the setup cache" in check["output"]["summary"]
