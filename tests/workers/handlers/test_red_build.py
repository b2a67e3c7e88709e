"""Red build repair end to end: webhook → Redis → Celery worker → Docker sandbox → scripted model →
verified fix on the fake GitHub, asserting the exact GitHub calls."""

from __future__ import annotations

import subprocess
import time

import pytest
import yaml

from tests.repos import (
    BASE_FILES,
    BROKEN_CALC,
    FIXED_CALC,
    LINT_WORKFLOW,
    REPO,
    failing_job,
    workflow_run_event,
)
from tests.support.fake_openai import call, finish

pytestmark = pytest.mark.docker

AGENT_FIX = [
    call("read_file", path="calc.py"),
    call("edit_file", path="calc.py", old="return a - b", new="return a + b"),
    call("run", command="python3 -m pytest -q"),
    finish("add() subtracted instead of adding; it now returns a + b."),
]


def setup_pr(gh, config: dict | None = None, files: dict | None = None, number: int = 7):
    base = dict(BASE_FILES)
    if config is not None:
        base[".github/qwen.yml"] = yaml.safe_dump(config)
    gh.add_repo(REPO, base)
    head = gh.push(REPO, "feature", files or {"calc.py": BROKEN_CALC}, "Refactor add", parent_branch="main")
    gh.add_pull(REPO, number, head_ref="feature", base_ref="main")
    return head


def fail_run(stack, head, run_id=900, job=None, pr_numbers=(7,), head_branch="feature", **kw):
    stack.github.add_workflow_run(REPO, run_id, head, jobs=[job or failing_job(run_id * 10)], pull_numbers=pr_numbers,
                                  head_branch=head_branch, **{k: v for k, v in kw.items() if k == "path"})
    payload = workflow_run_event(REPO, {"id": run_id, "head_sha": head}, pr_numbers, head_branch=head_branch, **kw)
    return stack.deliver("workflow_run", payload).json()["job"]


def test_a_failing_test_gets_a_verified_commit_on_the_pr_branch(stack):
    gh = stack.github
    head = setup_pr(gh, {"repair": {"mode": "commit"}})
    stack.model.script(AGENT_FIX)
    job = stack.wait(fail_run(stack, head))
    assert job.state == "succeeded", job.outcome
    new_head = gh.ref(REPO, "refs/heads/feature")
    assert new_head != head
    assert gh.file_at(REPO, new_head, "calc.py") == FIXED_CALC
    assert job.result["delivery"]["commit_sha"] == new_head
    # exactly one check run, completed green, with a link to the job; one comment, updated in place
    [check] = gh.check_runs(REPO, head)
    assert check["status"] == "completed" and check["conclusion"] == "success"
    assert check["details_url"] == f"http://qwenfix.test/jobs/{job.id}"
    [comment] = gh.bot_comments(REPO, 7)
    assert "verified fix delivered as a commit" in comment["body"]
    assert len(gh.calls("POST", f"/repos/{REPO}/issues/7/comments")) == 1
    # the evidence, in the comment and on the check run: before, after, what turned green, what it cost
    for text in (comment["body"], check["output"]["summary"]):
        assert "| before the fix | `python3 -m pytest -q` | ❌ exit 1 · 1 failed |" in text
        assert "| with the fix | `python3 -m pytest -q` | ✅ exit 0 · 1 passed |" in text
        assert "Now passing (1): `tests/test_calc.py::test_add`" in text
        assert f"Cost: 8 model calls, {job.usage['tokens']:,} tokens" in text
    assert job.result["evidence"]["now_passing"] == ["tests/test_calc.py::test_add"]
    # the model saw the failure, fenced as data, and never a secret
    first = stack.model.chat_requests()[0].raw
    assert "FAILED tests/test_calc.py::test_add" in first and "<untrusted-data" in first
    for request in stack.model.requests:
        assert stack.settings.webhook_secret.get_secret_value() not in request.raw
        assert not any(token in str(request.body) for token in gh.tokens)
    assert job.trajectory and job.usage["prompt_tokens"] > 0


def test_a_formatting_failure_is_fixed_with_zero_model_calls(stack):
    gh = stack.github
    files = dict(BASE_FILES, **{".github/workflows/lint.yml": LINT_WORKFLOW})
    files[".github/qwen.yml"] = yaml.safe_dump({"repair": {"mode": "commit"}})
    gh.add_repo(REPO, files)
    head = gh.push(REPO, "feature", {"calc.py": "def add( a,b ):\n    return a+b\n"}, parent_branch="main")
    gh.add_pull(REPO, 7, head_ref="feature", base_ref="main")
    job = failing_job(9010, step="Check formatting", command="ruff format --check .", name="lint",
                      output="Would reformat: calc.py\n1 file would be reformatted, 2 files already formatted")
    job = stack.wait(fail_run(stack, head, run_id=901, job=job, path=".github/workflows/lint.yml", workflow_id=78))
    assert job.state == "succeeded", job.outcome
    assert stack.model.requests == []
    assert job.result["fixer"] and "ruff" in job.result["fixer"]
    [comment] = gh.bot_comments(REPO, 7)
    assert "| with the fix | `ruff format --check .` | ✅ exit 0 |" in comment["body"]
    assert "Cost: no model calls;" in comment["body"]
    new_head = gh.ref(REPO, "refs/heads/feature")
    assert gh.file_at(REPO, new_head, "calc.py") == "def add(a, b):\n    return a + b\n"


def test_a_failure_that_passes_on_reproduction_is_reported_as_flaky(stack):
    gh = stack.github
    head = setup_pr(gh, files={"README.md": "# calc\n\nNow with docs.\n"})  # tests pass at this head
    job = stack.wait(fail_run(stack, head))
    assert job.state == "succeeded" and job.outcome.startswith("flaky")
    assert stack.model.requests == []
    [comment] = gh.bot_comments(REPO, 7)
    assert "did not reproduce" in comment["body"] and "No patch was made" in comment["body"]
    [check] = gh.check_runs(REPO, head)
    assert check["conclusion"] == "neutral"
    assert gh.reviews(REPO, 7) == [] and gh.ref(REPO, "refs/heads/feature") == head


def test_patches_that_do_not_pass_are_not_delivered(stack):
    gh = stack.github
    head = setup_pr(gh, {"repair": {"mode": "commit", "candidates": 2}})
    stack.model.script([
        call("edit_file", path="calc.py", old="return a - b", new="return a * b"),
        finish("Multiply instead."),
    ])
    job = stack.wait(fail_run(stack, head))
    assert job.state == "failed" and "no verified fix" in job.outcome
    assert gh.ref(REPO, "refs/heads/feature") == head  # nothing pushed
    assert gh.reviews(REPO, 7) == [] and gh.pulls(REPO)[1:] == []
    [comment] = gh.bot_comments(REPO, 7)
    body = comment["body"]
    assert "could not find a verified fix" in body and "python3 -m pytest -q" in body
    assert "still fails" in body  # why each attempt was rejected
    assert len(job.result["candidates"]) == 2 and not any(c["verified"] for c in job.result["candidates"])


def test_the_same_delivery_twice_and_the_same_job_twice_post_nothing_twice(stack):
    from workers import runner

    gh = stack.github
    head = setup_pr(gh)  # default mode on a pull request: suggestions
    stack.model.script(AGENT_FIX)
    payload = workflow_run_event(REPO, {"id": 902, "head_sha": head}, (7,))
    gh.add_workflow_run(REPO, 902, head, jobs=[failing_job(9020)], pull_numbers=(7,), head_branch="feature")
    first = stack.deliver("workflow_run", payload, delivery="same-delivery").json()["job"]
    second = stack.deliver("workflow_run", payload, delivery="same-delivery").json()["job"]
    assert first == second
    job = stack.wait(first)
    assert job.state == "succeeded", job.outcome
    # run the finished job again, as a redelivered Celery message after a crash would
    from core.db.session import session_scope

    with session_scope(stack.settings.database_url) as session:
        session.get(type(job), job.id).state = "queued"
    runner.run_job(job.id, stack.settings)
    assert len(gh.reviews(REPO, 7)) == 1
    assert len(gh.bot_comments(REPO, 7)) == 1
    assert len(gh.check_runs(REPO, head)) == 1
    assert len(gh.calls("POST", f"/repos/{REPO}/pulls/7/reviews")) == 1
    [review] = gh.reviews(REPO, 7)
    [suggestion] = review["comments"]
    assert suggestion["path"] == "calc.py" and suggestion["line"] == 2
    assert "```suggestion\n    return a + b\n```" in suggestion["body"]


def test_the_apps_own_fix_going_red_again_stops_at_the_cap(stack):
    gh = stack.github
    head = setup_pr(gh, {"repair": {"mode": "commit", "max_attempts_per_day": 1}})
    stack.model.script([
        call("edit_file", path="calc.py", old="return a - b", new="return a + b"),
        finish("Fixed add()."),
    ])
    first = stack.wait(fail_run(stack, head, run_id=903))
    assert first.state == "succeeded"
    own_commit = gh.ref(REPO, "refs/heads/feature")
    # CI goes red again on qwenfix's own commit: no second attempt today
    second = stack.wait(fail_run(stack, own_commit, run_id=904, actor="qwenfix[bot]"))
    assert second.state == "skipped" and "attempt cap" in second.outcome
    assert gh.ref(REPO, "refs/heads/feature") == own_commit
    assert len(stack.model.chat_requests()) == 2 * 2  # the first job's two candidates only


def test_a_failure_on_the_default_branch_gets_a_fix_pull_request(stack):
    gh = stack.github
    gh.add_repo(REPO, dict(BASE_FILES))
    head = gh.push(REPO, "main", {"calc.py": BROKEN_CALC}, "Break add")
    stack.model.script(AGENT_FIX)
    job = stack.wait(fail_run(stack, head, run_id=905, pr_numbers=(), head_branch="main"))
    assert job.state == "succeeded", job.outcome
    [pull] = gh.pulls(REPO)
    assert pull["base"]["ref"] == "main" and pull["head"]["ref"].startswith("qwenfix/")
    assert gh.file_at(REPO, pull["head"]["sha"], "calc.py") == FIXED_CALC
    assert gh.ref(REPO, "refs/heads/main") == head  # the default branch itself is untouched
    [check] = gh.check_runs(REPO, head)
    assert check["conclusion"] == "success" and f"pull request #{pull['number']}" in check["output"]["title"]


def test_an_invalid_config_is_reported_once_on_the_check_run_and_defaults_apply(stack):
    gh = stack.github
    head = setup_pr(gh, {"repair": {"candidates": 99}})
    stack.model.script(AGENT_FIX)
    job = stack.wait(fail_run(stack, head))
    assert job.state == "succeeded", job.outcome
    [check] = gh.check_runs(REPO, head)
    assert "repair.candidates" in check["output"]["summary"] and "defaults apply" in check["output"]["summary"]
    assert len(job.result["candidates"]) == 2  # the default, not 99
    assert len(gh.reviews(REPO, 7)) == 1  # default mode on a pull request: suggestions


def test_excluded_branches_and_moved_heads_are_skipped_with_the_reason(stack):
    gh = stack.github
    head = setup_pr(gh, {"repair": {"exclude_branches": ["feat*"]}})
    job = stack.wait(fail_run(stack, head, run_id=906))
    assert job.state == "skipped" and "excluded" in job.outcome
    newer = gh.push(REPO, "feature", {"README.md": "newer\n"})
    gh.issue_comments.clear()
    job = stack.wait(fail_run(stack, head, run_id=907, workflow_id=79))
    assert job.state == "skipped" and newer[:7] in job.outcome
    assert stack.model.requests == [] and gh.check_runs(REPO) == []


def test_third_party_ci_failure_is_repaired_with_the_configured_command(stack):
    gh = stack.github
    head = setup_pr(gh, {"repair": {"mode": "commit", "command": "python3 -m pytest -q"}})
    run_id = gh.add_check_run(REPO, head, "jenkins / unit", app_slug="jenkins", title="1 test failed",
                              summary="FAILED tests/test_calc.py::test_add - assert -1 == 5")
    suite = gh.check_run_records[run_id]["check_suite_id"]
    stack.model.script(AGENT_FIX)
    payload = {
        "action": "completed", "installation": {"id": 1}, "repository": {"full_name": REPO},
        "sender": {"login": "jenkins[bot]", "type": "Bot"},
        "check_suite": {"id": suite, "head_sha": head, "head_branch": "feature", "conclusion": "failure",
                        "app": {"id": 999, "slug": "jenkins"}, "pull_requests": [{"number": 7}]},
    }
    job = stack.wait(stack.deliver("check_suite", payload).json()["job"])
    assert job.state == "succeeded", job.outcome
    assert gh.file_at(REPO, gh.ref(REPO, "refs/heads/feature"), "calc.py") == FIXED_CALC
    assert "assert -1 == 5" in stack.model.chat_requests()[0].raw


def test_a_github_outage_mid_job_is_retried_and_posts_once(stack):
    gh = stack.github
    head = setup_pr(gh, {"repair": {"mode": "commit"}})
    stack.model.script(AGENT_FIX)
    gh.fail_next("GET", f"/repos/{REPO}/pulls/7", 502, times=3)
    job = stack.wait(fail_run(stack, head, run_id=908))
    assert job.state == "succeeded", job.outcome
    assert job.attempts >= 2  # the first attempt gave the job back to the queue
    assert len(gh.bot_comments(REPO, 7)) == 1 and len(gh.check_runs(REPO, head)) == 1


def test_a_sandbox_image_the_operator_does_not_list_is_refused_on_the_check_run(stack):
    """`sandbox.image` in `.github/qwen.yml` names an image the operator never listed in
    QWENFIX_SANDBOX_IMAGES. Fails on main: the worker went to pull and run it (here the pull fails
    for want of a registry, and the job crashed with Docker's error instead of saying why)."""
    gh = stack.github
    image = "docker.io/attacker/miner:latest"
    head = setup_pr(gh, {"repair": {"mode": "commit"}, "sandbox": {"image": image}})
    stack.model.script(AGENT_FIX)
    since = str(int(time.time()) - 1)
    job = stack.wait(fail_run(stack, head))
    assert job.state == "failed" and "QWENFIX_SANDBOX_IMAGES" in job.outcome, job.outcome
    [check] = gh.check_runs(REPO, head)
    assert check["conclusion"] == "neutral" and check["output"]["title"] == "Sandbox image not allowed"
    assert f"`{image}`" in check["output"]["summary"] and "QWENFIX_SANDBOX_IMAGES" in check["output"]["summary"]
    [comment] = gh.bot_comments(REPO, 7)
    assert "sandbox image not allowed" in comment["body"]
    assert stack.model.requests == [] and gh.ref(REPO, "refs/heads/feature") == head
    events = subprocess.run(["docker", "events", "--since", since, "--until", str(int(time.time()) + 1),
                             "--filter", "type=container", "--filter", "event=create"],
                            capture_output=True, text=True, timeout=30).stdout
    # other test sessions share the engine (and job ids): ours are the ones on this stack's data dir
    assert [e for e in events.splitlines() if str(stack.settings.data_dir) in e] == [], "a sandbox was started"


def setup_broken_main(gh, config: dict | None = None):
    """`main` itself has the bug; the pull request only touches the README."""
    base = dict(BASE_FILES, **{"calc.py": BROKEN_CALC})
    if config is not None:
        base[".github/qwen.yml"] = yaml.safe_dump(config)
    gh.add_repo(REPO, base)
    head = gh.push(REPO, "feature", {"README.md": "# calc\n\nBetter docs.\n"}, "Docs", parent_branch="main")
    gh.add_pull(REPO, 7, head_ref="feature", base_ref="main")
    return head


def test_a_failure_that_main_has_too_is_not_blamed_on_the_pull_request(stack):
    """Fails on main (and without the merge-base run): the agent 'fixes' main's bug on the PR branch."""
    gh = stack.github
    head = setup_broken_main(gh, {"repair": {"mode": "commit"}})
    stack.model.script(AGENT_FIX)
    job = stack.wait(fail_run(stack, head))
    assert job.state == "succeeded" and job.outcome == "fails on main too: not caused by this pull request"
    assert stack.model.requests == []  # decided before the model saw anything
    assert gh.ref(REPO, "refs/heads/feature") == head and gh.reviews(REPO, 7) == [] and gh.pulls(REPO)[1:] == []
    [comment] = gh.bot_comments(REPO, 7)
    assert "fails on `main` too — not caused by this pull request" in comment["body"]
    assert "No patch was pushed to this pull request" in comment["body"] and "repair.fix_base" in comment["body"]
    [check] = gh.check_runs(REPO, head)
    assert check["conclusion"] == "neutral" and check["output"]["title"] == "Fails on main too"
    assert "FAILED tests/test_calc.py::test_add" in job.result["base"]["output"]


def test_with_fix_base_the_fix_goes_to_main_as_a_pull_request(stack):
    gh = stack.github
    head = setup_broken_main(gh, {"repair": {"mode": "commit", "fix_base": True}})
    main_before = gh.ref(REPO, "refs/heads/main")
    stack.model.script(AGENT_FIX)
    job = stack.wait(fail_run(stack, head))
    assert job.state == "succeeded", job.outcome
    assert gh.ref(REPO, "refs/heads/feature") == head  # nothing pushed to the pull request
    [_, fix] = gh.pulls(REPO)
    assert fix["base"]["ref"] == "main" and fix["head"]["ref"].startswith("qwenfix/fix-")
    assert gh.file_at(REPO, fix["head"]["sha"], "calc.py") == FIXED_CALC
    assert gh.file_at(REPO, fix["head"]["sha"], "README.md") == BASE_FILES["README.md"]  # made on main, not the PR
    assert gh.ref(REPO, "refs/heads/main") == main_before
    [comment] = gh.bot_comments(REPO, 7)
    assert "not caused by this pull request" in comment["body"]
    assert f"A verified fix for `main` is proposed as pull request #{fix['number']}" in comment["body"]


def test_a_candidate_that_adds_a_shell_call_on_pull_request_text_is_rejected_and_named(stack):
    """The candidate fixes the test and adds `subprocess.call(f"echo {title}", shell=True)`. Fails on main
    (and with the gate bypassed): the candidate is verified and pushed to the branch."""
    gh = stack.github
    head = setup_pr(gh, {"repair": {"mode": "commit", "candidates": 1}})
    stack.model.script([
        call("edit_file", path="calc.py", old="def add(a, b):\n    return a - b",
             new="import subprocess\n\n\ndef add(a, b):\n    return a + b\n\n\ndef announce(title):\n"
                 "    return subprocess.call(f\"echo {title}\", shell=True)"),
        finish("Fixed add() and announce the PR title."),
    ])
    job = stack.wait(fail_run(stack, head))
    assert job.state == "failed" and "no verified fix" in job.outcome
    assert gh.ref(REPO, "refs/heads/feature") == head  # nothing delivered
    [candidate] = job.result["candidates"]
    assert "adds a high-severity security finding: B602 subprocess_popen_with_shell_equals_true" in candidate["reasons"][0]
    [comment] = gh.bot_comments(REPO, 7)
    assert "B602 subprocess_popen_with_shell_equals_true (high severity) at calc.py:9" in comment["body"]


def test_a_lower_finding_rides_along_in_the_delivered_post(stack):
    """`yaml.load` without a safe loader (bandit B506, medium) does not block the fix, but the post and the
    commit name it. Fails on main (and with the gate bypassed): nothing is said about it."""
    gh = stack.github
    head = setup_pr(gh, {"repair": {"mode": "commit", "candidates": 1}})
    stack.model.script([
        call("edit_file", path="calc.py", old="def add(a, b):\n    return a - b",
             new="def add(a, b):\n    return a + b\n\n\ndef settings(text):\n    import yaml\n\n"
                 "    return yaml.load(text)"),
        finish("Fixed add()."),
    ])
    job = stack.wait(fail_run(stack, head))
    assert job.state == "succeeded", job.outcome
    new_head = gh.ref(REPO, "refs/heads/feature")
    assert new_head != head
    [comment] = gh.bot_comments(REPO, 7)
    assert "The security scan found in this change" in comment["body"]
    assert "B506 yaml_load (medium severity) at calc.py:8" in comment["body"]
    assert "B506 yaml_load" in gh.commit_message(REPO, new_head)


def test_a_patch_that_only_skips_the_failing_test_is_not_delivered(stack):
    """Green by cheating. Fails on main: there this patch passed validation (the command exits 0
    once the test is skipped) and was delivered as a verified fix, in a comment."""
    gh = stack.github
    head = setup_pr(gh, {"repair": {"mode": "comment", "candidates": 1}})
    stack.model.script([
        call("edit_file", path="tests/test_calc.py", old="from calc import add\n",
             new="import pytest\n\nfrom calc import add\n"),
        call("edit_file", path="tests/test_calc.py", old="def test_add():",
             new='@pytest.mark.skip(reason="flaky on CI")\ndef test_add():'),
        call("run", command="python3 -m pytest -q"),
        finish("test_add is flaky on CI, so it is skipped there."),
    ])
    job = stack.wait(fail_run(stack, head))
    assert job.state == "failed" and "no verified fix" in job.outcome
    [comment] = gh.bot_comments(REPO, 7)
    body = comment["body"]
    assert "could not find a verified fix" in body
    assert "tests/test_calc.py::test_add" in body and '@pytest.mark.skip(reason="flaky on CI")' in body
    assert "repair.allow_test_changes" in body  # and how a repository allows it
    assert "Proposed patch" not in body and "```diff" not in body  # nothing delivered
    assert gh.ref(REPO, "refs/heads/feature") == head and gh.reviews(REPO, 7) == [] and gh.pulls(REPO)[1:] == []
    [check] = gh.check_runs(REPO, head)
    assert check["conclusion"] == "neutral"
    [candidate] = job.result["candidates"]
    assert not candidate["verified"] and "skip" in candidate["reasons"][0]


def test_a_failing_setup_is_reported_with_its_own_output_and_no_model_call(stack):
    """`repair.setup` whose script is missing at the PR's head: the PR is told the setup failed, with the
    setup's output — not "no candidate patch passed validation" with no candidates."""
    gh = stack.github
    head = setup_pr(gh, {"repair": {"mode": "commit", "setup": "./scripts/bootstrap.sh"}})
    stack.model.script(AGENT_FIX)
    job = stack.wait(fail_run(stack, head, run_id=909))
    assert job.state == "failed" and job.outcome.startswith("setup failed: the setup (repair.setup) fails (exit 127)")
    assert stack.model.requests == []
    [check] = gh.check_runs(REPO, head)
    assert check["conclusion"] == "neutral" and check["output"]["title"] == "Setup failed"
    [comment] = gh.bot_comments(REPO, 7)
    assert "the setup failed" in comment["body"] and "./scripts/bootstrap.sh" in comment["body"]
    assert "bootstrap.sh: not found" in comment["body"]  # the setup's own output
    assert "No candidate patch passed validation" not in comment["body"]
    assert job.result["setup_output"] and job.result["candidates"] == []


INSTALL = ("import shutil, sysconfig\n"
           "shutil.copy('vendor/mathlib.py', sysconfig.get_paths()['purelib'])  # as `pip install` would\n")


def test_a_pull_request_that_changes_its_dependencies_is_validated_with_them_not_the_bases(stack):
    """The PR bumps a dependency (requirements.txt) and uses what the new version adds. The failure is
    also run on the base, after the base's own setup (its lock files differ): that environment must
    not be the one the fix is then validated in, or every correct fix fails on the base's old
    dependency."""
    gh = stack.github
    config = {"repair": {"mode": "commit", "setup": "python vendor/install.py", "candidates": 2}}
    base = dict(BASE_FILES, **{".github/qwen.yml": yaml.safe_dump(config), "requirements.txt": "mathlib==1\n",
                               "vendor/install.py": INSTALL, "vendor/mathlib.py": "def twice(x):\n    return 2 * x\n"})
    gh.add_repo(REPO, base)
    head = gh.push(REPO, "feature", {
        "requirements.txt": "mathlib==2\n",
        "vendor/mathlib.py": "def twice(x):\n    return 2 * x\n\n\ndef times(x, n):\n    return x * n\n",
        "calc.py": BROKEN_CALC + "\n\ndef triple(x):\n    import mathlib\n    return mathlib.times(x, 3)\n",
        "tests/test_triple.py": "from calc import triple\n\n\ndef test_triple():\n    assert triple(2) == 6\n",
    }, "Use mathlib 2", parent_branch="main")
    gh.add_pull(REPO, 7, head_ref="feature", base_ref="main")
    stack.model.script(AGENT_FIX)
    job = stack.wait(fail_run(stack, head, run_id=911))
    assert job.state == "succeeded", job.outcome
    new_head = gh.ref(REPO, "refs/heads/feature")
    assert gh.file_at(REPO, new_head, "calc.py").startswith(FIXED_CALC)
    # both candidates made the same fix, in parallel on two sandboxes: both verified
    assert [c["verified"] for c in job.result["candidates"]] == [True, True], job.result["candidates"]
    assert "base" in job.timings  # the failure was run on the base too, after the base's setup


LAUGHS = "\n".join(
    ["on: pull_request", "anchors:", '  l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    + [f"  l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 10)]
    + ["jobs:", "  test:", "    runs-on: ubuntu-latest", "    env:", "      LAUGHS: *l9",
       "    steps:", "      - uses: actions/checkout@v4", "      - name: Run tests", "        run: python3 -m pytest -q", ""])


def test_a_workflow_whose_aliases_expand_to_billions_is_refused_not_rendered(stack):
    """The pull request's workflow is 1.5 KB of YAML anchors that expand to 3.5 billion strings
    ("billion laughs"). Rendering its env once took the worker minutes and gigabytes; it is
    refused on sight, said in the report, and the job goes on with the command from the log."""
    gh = stack.github
    head = setup_pr(gh, {"repair": {"mode": "commit"}},
                    files={"calc.py": BROKEN_CALC, ".github/workflows/ci.yml": LAUGHS})
    stack.model.script(AGENT_FIX)
    job = stack.wait(fail_run(stack, head, run_id=913), timeout=120)
    assert job.state == "succeeded", job.outcome
    [check] = gh.check_runs(REPO, head)
    assert "expands to more than 200,000 nodes" in check["output"]["summary"]
    assert "command taken from the job log" in check["output"]["summary"]


OS_MATRIX = """\
name: CI
on: [push, pull_request]
jobs:
  test:
    runs-on: ${{ matrix.os }}
    strategy:
      matrix:
        os: [windows-latest, macos-14, ubuntu-latest]
    steps:
      - uses: actions/checkout@v4
      - name: Run tests
        run: python3 -m pytest -q
"""


def os_run(stack, head, run_id, failed_on):
    jobs = [failing_job(run_id * 10 + i, name=f"test ({os})") for i, os in enumerate(failed_on)]
    stack.github.add_workflow_run(REPO, run_id, head, jobs=jobs, pull_numbers=(7,), head_branch="feature")
    return stack.deliver("workflow_run", workflow_run_event(REPO, {"id": run_id, "head_sha": head}, (7,))).json()["job"]


def test_an_os_matrix_that_fails_everywhere_is_repaired_through_its_linux_job(stack):
    """GitHub lists the Windows job first; sandboxes are Linux, so the Linux job is the one reproduced."""
    gh = stack.github
    head = setup_pr(gh, {"repair": {"mode": "commit"}}, files={"calc.py": BROKEN_CALC, ".github/workflows/ci.yml": OS_MATRIX})
    stack.model.script(AGENT_FIX)
    job = stack.wait(os_run(stack, head, 915, ["windows-latest", "macos-14", "ubuntu-latest"]))
    assert job.state == "succeeded", job.outcome
    assert gh.file_at(REPO, gh.ref(REPO, "refs/heads/feature"), "calc.py") == FIXED_CALC
    assert job.result["reproduced"] == "exact"
    log_requests = [r.path for r in gh.calls("GET", "re:.*/actions/jobs/\\d+/logs")]
    assert log_requests == [f"/repos/{REPO}/actions/jobs/{915 * 10 + 2}/logs"]  # the ubuntu job's


def test_a_failure_only_on_windows_is_not_reproduced_on_linux_and_calls_no_model(stack):
    gh = stack.github
    head = setup_pr(gh, {"repair": {"mode": "commit"}}, files={"calc.py": BROKEN_CALC, ".github/workflows/ci.yml": OS_MATRIX})
    stack.model.script(AGENT_FIX)
    since = time.time()
    job = stack.wait(os_run(stack, head, 916, ["windows-latest"]))
    assert job.outcome.startswith("not reproduced: environment"), job.outcome
    assert stack.model.requests == [] and gh.ref(REPO, "refs/heads/feature") == head
    [check] = gh.check_runs(REPO, head)
    assert check["output"]["title"] == "Not reproduced: environment"
    assert "the job runs on `windows-latest` (Windows); qwenfix's sandboxes are Linux" in check["output"]["summary"]
    events = subprocess.run(["docker", "events", "--since", str(int(since)), "--until", str(int(time.time()) + 1),
                             "--filter", "type=container", "--filter", "event=create", "--format", "{{json .Actor}}"],
                            capture_output=True, text=True, check=True).stdout
    assert [e for e in events.splitlines() if str(stack.settings.data_dir) in e] == [], "a sandbox was started"
