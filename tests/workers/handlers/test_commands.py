"""`/qwen` commands end to end: comment → webhook → worker → sandbox → scripted model → GitHub calls."""

from __future__ import annotations

import subprocess
import time

import pytest
import yaml

from tests.repos import BASE_FILES, BROKEN_CALC, FIXED_CALC, REPO, comment_event, failing_job
from tests.support.db import wait_for
from tests.support.fake_openai import call, finish

pytestmark = pytest.mark.docker

AGENT_FIX = [
    call("read_file", path="calc.py"),
    call("edit_file", path="calc.py", old="return a - b", new="return a + b"),
    finish("add() now adds."),
]


def pr(gh, files=None, config=None, fork=False, maintainer_can_modify=False, number=7):
    base = dict(BASE_FILES)
    if config:
        base[".github/qwen.yml"] = yaml.safe_dump(config)
    gh.add_repo(REPO, base)
    if fork:
        gh.add_fork(REPO, "contributor/calc")
        head = gh.push("contributor/calc", "feature", files or {"calc.py": BROKEN_CALC}, parent_branch="main")
        gh.add_pull(REPO, number, head_ref="feature", base_ref="main", fork=True, head_repo="contributor/calc",
                    maintainer_can_modify=maintainer_can_modify)
    else:
        head = gh.push(REPO, "feature", files or {"calc.py": BROKEN_CALC}, parent_branch="main")
        gh.add_pull(REPO, number, head_ref="feature", base_ref="main")
    gh.set_permission(REPO, "maintainer", "write")
    gh.set_permission(REPO, "visitor", "read")
    return head


def comment(stack, body, user="maintainer", number=7):
    cid = stack.github.add_comment(REPO, number, body, user=user)
    job_id = stack.deliver("issue_comment", comment_event(REPO, number, cid, body, user)).json()["job"]
    return cid, job_id


def red_ci(gh, head, run_id=800):
    gh.add_workflow_run(REPO, run_id, head, jobs=[failing_job(run_id * 10)], pull_numbers=(7,), head_branch="feature")


def test_fix_repairs_failing_checks_and_pushes_a_commit(stack):
    gh = stack.github
    head = pr(gh)
    red_ci(gh, head)
    stack.model.script(AGENT_FIX)
    cid, job_id = comment(stack, "/qwen fix")
    job = stack.wait(job_id)
    assert job.state == "succeeded", job.outcome
    # acknowledged first: 👀 on the command, before any other write
    writes = [r for r in gh.requests if r.method in ("POST", "PATCH") and "access_tokens" not in r.path]
    assert writes[0].path == f"/repos/{REPO}/issues/comments/{cid}/reactions" and writes[0].json == {"content": "eyes"}
    assert gh.calls("GET", f"/repos/{REPO}/collaborators/maintainer/permission")
    new_head = gh.ref(REPO, "refs/heads/feature")
    assert gh.file_at(REPO, new_head, "calc.py") == FIXED_CALC
    [progress] = gh.bot_comments(REPO, 7)
    assert "verified fix delivered as a commit" in progress["body"] and f"/jobs/{job_id}" in progress["body"]
    assert len(gh.calls("PATCH", f"re:/repos/{REPO}/issues/comments/\\d+")) >= 1  # updated in place


def test_fix_with_instructions_and_green_checks_validates_with_the_test_command(stack):
    gh = stack.github
    pr(gh, files={"calc.py": FIXED_CALC + "\n\ndef sub(a, b):\n    return a - b\n"})
    stack.model.script([
        call("edit_file", path="calc.py", old="def sub(a, b):\n", new='def sub(a, b):\n    """a minus b."""\n'),
        finish("Documented sub()."),
    ])
    _, job_id = comment(stack, "/qwen fix add a docstring to sub")
    job = stack.wait(job_id)
    assert job.state == "succeeded", job.outcome
    assert '"""a minus b."""' in gh.file_at(REPO, gh.ref(REPO, "refs/heads/feature"), "calc.py")
    prompt = stack.model.chat_requests()[0].raw
    assert "add a docstring to sub" in prompt and "python3 -m pytest -q" in prompt


def test_read_only_users_get_one_polite_refusal_and_nothing_else(stack):
    gh = stack.github
    head = pr(gh)
    red_ci(gh, head)
    _, first = comment(stack, "/qwen fix", user="visitor")
    _, second = comment(stack, "/qwen fix please", user="visitor")
    assert stack.wait(first).state == "skipped" and stack.wait(second).state == "skipped"
    refusals = gh.bot_comments(REPO, 7)
    assert len(refusals) == 1 and "write access" in refusals[0]["body"] and "@visitor" in refusals[0]["body"]
    assert stack.model.requests == [] and gh.ref(REPO, "refs/heads/feature") == head
    assert gh.check_runs(REPO) == []


def test_two_concurrent_fixes_make_one_fix_and_one_already_working_reply(stack):
    gh = stack.github
    head = pr(gh)
    red_ci(gh, head)

    def slow(step):
        def reply(body):
            time.sleep(4)
            return step
        return reply

    stack.model.script([slow(AGENT_FIX[0]), *AGENT_FIX[1:]])
    _, first = comment(stack, "/qwen fix")
    wait_for(lambda: stack.job(first).state == "running", message="first fix to start")
    _, second = comment(stack, "/qwen fix")
    assert stack.wait(second).outcome == "already working on it"
    assert stack.wait(first).state == "succeeded"
    bodies = [c["body"] for c in gh.bot_comments(REPO, 7)]
    assert sum("already working on it" in b for b in bodies) == 1
    assert sum("verified fix delivered" in b for b in bodies) == 1
    assert len(gh.calls("POST", f"re:/git/{REPO}.git/git-receive-pack")) == 1 or gh.file_at(REPO, "refs/heads/feature", "calc.py") == FIXED_CALC


def test_stop_cancels_a_running_job_and_kills_its_sandbox_within_seconds(stack):
    gh = stack.github
    head = pr(gh, config={"repair": {"candidates": 1}})
    red_ci(gh, head)
    stack.model.script([call("run", command="sleep 3600"), finish("never")])
    _, fix_job = comment(stack, "/qwen fix")
    # the model has answered with `run sleep 3600` once a request went out and a sandbox is up
    wait_for(lambda: stack.model.chat_requests() and _containers(fix_job), timeout=90,
             message="the agent's sleep to start in a sandbox")
    time.sleep(2)
    asked = time.monotonic()
    _, stop_job = comment(stack, "/qwen stop")
    fix = stack.wait(fix_job, timeout=60)
    elapsed = time.monotonic() - asked
    assert fix.state == "cancelled" and "stopped by @maintainer" in fix.outcome
    assert elapsed < 30, f"stop took {elapsed:.1f} s"
    wait_for(lambda: not _containers(fix_job), timeout=20, message="the sandbox to be removed")
    assert stack.wait(stop_job).state == "succeeded"
    assert any("Stopped job" in c["body"] for c in gh.bot_comments(REPO, 7))
    assert gh.ref(REPO, "refs/heads/feature") == head


def _containers(job_id: int) -> list[str]:
    out = subprocess.run(["docker", "ps", "-q", "--filter", f"label=qwenfix.job={job_id}"], capture_output=True, text=True)
    return out.stdout.split()


def test_a_comment_edited_after_the_trigger_is_not_read(stack):
    gh = stack.github
    pr(gh, files={"calc.py": FIXED_CALC + "\n\ndef sub(a, b):\n    return a - b\n"})
    stack.model.script([finish("Looked, nothing to change.")])
    cid = gh.add_comment(REPO, 7, "/qwen fix rename sub to minus", user="maintainer")
    payload = comment_event(REPO, 7, cid, "/qwen fix rename sub to minus")
    gh.issue_comments[cid]["json"]["body"] = "/qwen fix delete every test"  # edited before the worker runs
    job = stack.wait(stack.deliver("issue_comment", payload).json()["job"])
    prompts = " ".join(r.raw for r in stack.model.chat_requests())
    assert "rename sub to minus" in prompts and "delete every test" not in prompts
    assert job.params["text"] == "rename sub to minus"


def test_a_fork_without_maintainer_edits_gets_a_suggestion_review_instead_of_a_push(stack):
    gh = stack.github
    head = pr(gh, fork=True, maintainer_can_modify=False)
    red_ci(gh, head)
    stack.model.script(AGENT_FIX)
    _, job_id = comment(stack, "/qwen fix")
    job = stack.wait(job_id)
    assert job.state == "succeeded", job.outcome
    assert gh.ref("contributor/calc", "refs/heads/feature") == head  # nothing pushed to the fork
    [review] = gh.reviews(REPO, 7)
    [suggestion] = review["comments"]
    assert suggestion["path"] == "calc.py" and "```suggestion\n    return a + b\n```" in suggestion["body"]
    assert not gh.calls("POST", "re:/git/.*git-receive-pack")


def test_help_lists_commands_and_the_effective_config(stack):
    gh = stack.github
    pr(gh, config={"repair": {"candidates": 3}})
    _, job_id = comment(stack, "/qwen help")
    assert stack.wait(job_id).state == "succeeded"
    [reply] = gh.bot_comments(REPO, 7)
    for text in ("/qwen fix", "/qwen explain", "/qwen stop", "/qwen retry", "repair.candidates"):
        assert text in reply["body"]
    assert "| 3 |" in reply["body"] or "`3`" in reply["body"]
    assert "/qwen review" not in reply["body"]


def test_unknown_commands_get_the_help_text(stack):
    gh = stack.github
    pr(gh)
    _, job_id = comment(stack, "/qwen deploy")
    assert stack.wait(job_id).state == "succeeded"
    [reply] = gh.bot_comments(REPO, 7)
    assert "`/qwen deploy` is not a command I know" in reply["body"] and "/qwen fix" in reply["body"]


def test_explain_posts_the_models_explanation_and_the_error(stack):
    gh = stack.github
    head = pr(gh)
    red_ci(gh, head)
    stack.model.script([{"kind": "text", "content": "add() subtracts its arguments; the test expects a sum."}])
    _, job_id = comment(stack, "/qwen explain")
    assert stack.wait(job_id).state == "succeeded"
    [reply] = gh.bot_comments(REPO, 7)
    assert "add() subtracts its arguments" in reply["body"] and "assert -1 == 5" in reply["body"]
    assert gh.ref(REPO, "refs/heads/feature") == head and gh.reviews(REPO, 7) == []


def test_retry_runs_the_last_job_again(stack):
    gh = stack.github
    head = pr(gh)
    red_ci(gh, head)
    stack.model.script([finish("I could not fix it.")])
    _, first = comment(stack, "/qwen fix")
    assert stack.wait(first).state == "failed"
    stack.model.script(AGENT_FIX)
    _, retry = comment(stack, "/qwen retry")
    assert stack.wait(retry).state == "succeeded"
    again = max(j.id for j in stack.jobs())
    assert stack.job(again).params["retry_of"] == first
    assert stack.wait(again).state == "succeeded"
    assert gh.file_at(REPO, gh.ref(REPO, "refs/heads/feature"), "calc.py") == FIXED_CALC
