"""A job that outlives its lease and its installation token, end to end with a sweeping web side."""

from __future__ import annotations

import pytest

from tests.repos import BROKEN_CALC, FIXED_CALC, REPO
from tests.support.fake_openai import call, finish
from tests.workers.handlers.test_red_build import fail_run, setup_pr

pytestmark = pytest.mark.docker

SLOW_TEST = "import time\n\nfrom calc import add\n\n\ndef test_add():\n    time.sleep(2)\n    assert add(2, 3) == 5\n"
AGENT_FIX = [
    call("edit_file", path="calc.py", old="return a - b", new="return a + b"),
    call("run", command="python3 -m pytest -q"),
    finish("add() now adds."),
]


def test_a_job_longer_than_its_lease_and_its_token_runs_once_and_still_pushes(make_stack):
    """On main the lease was renewed only at stage changes (the sweep took the job over while it
    ran), and `git push` used the token fetched when the job started, expired by then
    ("internal error: AuthenticationError")."""
    stack = make_stack(sweep=True, sweep_interval_s=0.3, job_lease_s=3)
    gh = stack.github
    gh.token_ttl = 5  # every installation token expires mid-job
    head = setup_pr(gh, {"repair": {"mode": "commit", "candidates": 1}},
                    files={"calc.py": BROKEN_CALC, "tests/test_calc.py": SLOW_TEST})
    stack.model.script(AGENT_FIX)
    job = stack.wait(fail_run(stack, head))
    assert job.state == "succeeded", job.outcome
    assert (job.attempts, job.takeovers, job.retries) == (1, 0, 0)  # ran once, never taken over
    assert job.timings["total"] > 3 * stack.settings.job_lease_s  # it did outlive its lease, thrice
    new_head = gh.ref(REPO, "refs/heads/feature")
    assert gh.file_at(REPO, new_head, "calc.py") == FIXED_CALC
    assert job.result["delivery"]["commit_sha"] == new_head
    assert len(stack.model.chat_requests()) == len(AGENT_FIX)
    assert len(gh.bot_comments(REPO, 7)) == 1 and len(gh.check_runs(REPO, head)) == 1
    first_token = next(iter(gh.tokens))
    pushes = [r for r in gh.git_requests if r.method == "POST" and r.path.endswith("/git-receive-pack")]
    assert pushes and all(p.status == 200 for p in pushes)
    assert pushes[-1].token != first_token and gh.tokens[first_token].expired  # pushed with a newer token
