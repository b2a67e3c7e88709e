"""A repair's stages share one worktree + sandbox, handed from stage to stage as if new (real Docker)."""

from __future__ import annotations

import pytest

from tests.repos import local_origin
from tests.support.docker import SANDBOX_IMAGE, TEST_LIMITS
from tests.support.fake_openai import call, finish
from workers.agent.llm import ModelClient
from workers.engine.repair import repair
from workers.engine.stations import Stations
from workers.engine.task import RepairTask, RepoContext
from workers.sandbox.docker import list_sandboxes
from workers.workspace.mirrors import MirrorCache

pytestmark = pytest.mark.docker

TEST = "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"


@pytest.fixture
def origin(tmp_path):
    root = tmp_path / "origin"
    return root, local_origin(root, {"calc.py": "def add(a, b):\n    return a - b\n", "tests/test_calc.py": TEST})


@pytest.fixture
def started(docker_engine, request):
    """A start_sandbox that records every sandbox it really started (all stopped at teardown)."""
    made = []
    label = {"qwenfix.job": f"test:{request.node.name}"[:200]}

    def start(workspace, network=False):
        sandbox = docker_engine.start(workspace, SANDBOX_IMAGE, TEST_LIMITS, labels=label)
        made.append(sandbox)
        return sandbox

    start.made = made
    start.label = label
    yield start
    for sandbox in made:
        sandbox.stop()


def _containers(docker_engine, label) -> list:
    return [c for c in list_sandboxes(docker_engine.client) if c.labels.get("qwenfix.job") == label["qwenfix.job"]]


def test_reproduction_candidate_and_validation_run_in_one_sandbox_removed_at_the_end(
        origin, fake_model, docker_engine, started, tmp_path):
    root, head = origin
    mirrors = MirrorCache(tmp_path / "mirrors", 10**10)
    fake_model.script([
        call("run", command="echo x > /tmp/from-the-agent; mkdir .pytest_cache; echo x > .pytest_cache/leftover"),
        call("edit_file", path="calc.py", old="return a - b", new="return a + b"),
        finish("add() adds."),
    ])
    client = ModelClient(fake_model.base_url, "sk-x", "m", timeout_s=10, max_retries=0)
    # the regression command proves validation saw neither the agent's /tmp nor its cache (not in a patch)
    task = RepairTask(command="python3 -m pytest -q -p no:cacheprovider", candidates=1,
                      regression_command="test ! -e /tmp/from-the-agent && test ! -e .pytest_cache")
    result = repair(task, checkout=lambda: mirrors.checkout(str(root), head, None), base_sha=head,
                    start_sandbox=started, client=client, context=RepoContext())

    assert result.status == "fixed", (result.reason, [c.describe() for c in result.candidates])
    assert ".pytest_cache" not in result.chosen.patch
    assert len(started.made) == 1  # reproduction, the attempt and validation shared one sandbox
    assert _containers(docker_engine, started.label) == []  # gone once the repair ended


def test_a_station_handed_out_again_is_pristine(origin, docker_engine, started, tmp_path):
    root, head = origin
    mirrors = MirrorCache(tmp_path / "mirrors", 10**10)
    with Stations(lambda: mirrors.checkout(str(root), head, None), started) as stations:
        with stations.station() as first:
            sandbox = first.sandbox()
            dirty = sandbox.exec("echo x > /tmp/t; echo y > $HOME/h; mkdir /tmp/locked; chmod 000 /tmp/locked; "
                                 "echo new > new.txt; echo broken > calc.py; (sleep 600 &) ; true")
            assert dirty.ok, dirty.output
        with stations.station() as again:
            assert again.path == first.path
            assert (again.path / "calc.py").read_text() == "def add(a, b):\n    return a - b\n"
            assert not (again.path / "new.txt").exists()
            (again.path / "calc.py").write_text("def add(a, b):\n    return a + b\n")  # the worker's edit
            look = again.sandbox().exec(
                'test -z "$(ls -A /tmp)" && echo tmp-empty; test -z "$(ls -A $HOME)" && echo home-empty; '
                "for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < $f; echo; done | grep -c 'sleep 6[0]0'; "
                "echo more >> calc.py && echo writable")
            assert again.sandbox() is sandbox  # the same container, as if new:
            assert look.output.split() == ["tmp-empty", "home-empty", "0", "writable"], look.output
    assert len(started.made) == 1
    assert _containers(docker_engine, started.label) == []


def test_a_sandbox_that_cannot_be_refreshed_is_replaced_and_a_failed_stage_keeps_nothing(
        origin, docker_engine, started, tmp_path):
    root, head = origin
    mirrors = MirrorCache(tmp_path / "mirrors", 10**10)
    with Stations(lambda: mirrors.checkout(str(root), head, None), started) as stations:
        with stations.station() as station:
            station.sandbox().stop()  # e.g. killed by `/qwen stop` under the stage
        with stations.station() as station:
            assert station.sandbox().exec("true").ok
        assert len(started.made) == 2 and started.made[0].id != started.made[1].id

        with pytest.raises(RuntimeError, match="stage failed"):
            with stations.station() as station:
                station.sandbox()
                raise RuntimeError("stage failed")
        assert _containers(docker_engine, started.label) == []  # not handed to the next stage
