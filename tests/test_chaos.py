"""The chaos run: a thousand signed deliveries (a fifth sent twice) into a real `qwenfix serve` while
its Redis is restarted empty and two workers are SIGKILLed mid-job. Nothing may be lost, nothing
done twice, nothing left behind. The counts are printed (bench/chaos.py prints them with a baseline).

On main: jobs whose messages died with Redis stayed `queued` forever (the sweep re-sent only jobs
whose enqueue had failed), and the killed workers' jobs stayed `running` forever."""

from __future__ import annotations

from collections import Counter

import pytest

from core.jobs import FINAL
from tests.support.chaos import run_chaos

pytestmark = pytest.mark.docker


@pytest.mark.long
@pytest.mark.timeout(420)
def test_an_operators_bad_day_loses_nothing_and_does_nothing_twice(
        fake_github, fake_model, postgres_url, docker_engine, tmp_path, capsys):
    fake_github.add_installation(1, "octo")
    report = run_chaos(fake_github, fake_model, postgres_url, tmp_path / "chaos")
    with capsys.disabled():
        print("\nchaos run:\n  " + "\n  ".join(report.lines()))
    assert (report.deliveries, report.duplicates) == (1000, 200)
    assert report.answers == Counter({202: 1000})  # intake held: no 5xx while Redis was down
    assert report.recorded == report.unique  # each delivery recorded once
    assert (report.redis_restarts, report.workers_killed) == (1, 2)
    assert report.jobs == report.pull_requests  # every relevant delivery ended as exactly one job
    assert set(report.states) <= set(FINAL)  # every job ended: none queued, none running
    assert (report.lost, report.duplicated) == (0, 0)
    assert set(report.comments.values()) == {1}  # one comment thread per pull request
    assert set(report.fix_commits.values()) <= {0, 1}  # at most one fix commit
    assert report.takeovers >= 2  # the killed workers' jobs were taken over
    assert (report.sandboxes_left, report.slots_held) == (0, 0)
