"""A job's disk budget, enforced while commands run in real sandboxes (Docker and bubblewrap)."""

from __future__ import annotations

import pytest

from tests.support.docker import SANDBOX_IMAGE, TEST_LIMITS
from workers.sandbox.disk import DiskBudget
from workers.workspace.confined import usage

# writes 1 MB files, a little at a time, up to 300 MB: a budget must stop it long before the end
FILL = "i=0; while [ $i -lt 300 ]; do head -c 1048576 /dev/zero > fill-$i.bin; i=$((i+1)); sleep 0.02; done"


@pytest.fixture
def start(docker_engine, request):
    made = []

    def start(workspace, disk):
        sandbox = docker_engine.start(workspace, SANDBOX_IMAGE, TEST_LIMITS, labels={
            "qwenfix.job": f"test:{request.node.name}"[:200]}, disk=disk)
        made.append(sandbox)
        return sandbox

    yield start
    for sandbox in made:
        sandbox.stop()


@pytest.mark.docker
def test_a_command_that_writes_past_the_budget_is_stopped_and_says_so(start, tmp_path):
    """Fails on main: there was no budget; the command filled 300 MB of the worker's disk."""
    workspace = tmp_path / "ws"
    workspace.mkdir()
    sandbox = start(workspace, DiskBudget(20))
    result = sandbox.exec(FILL)
    assert result.disk_exceeded_mb == 20 and not result.ok and result.exit_code != 0
    assert "the sandbox wrote more than 20 MB" in result.output and "QWENFIX_SANDBOX_DISK_MB" in result.output
    assert len(list(workspace.glob("fill-*"))) < 100 and usage(workspace) < 100 << 20  # stopped early
    # one file can never be larger than the budget, even in a single system call
    result = sandbox.exec("rm -f fill-*; fallocate -l 10G huge.bin; echo exit=$?")
    assert "exit=0" not in result.output and usage(workspace) < 1 << 20
    assert sandbox.exec("echo fine > small.txt").ok


@pytest.mark.docker
def test_the_budget_is_the_jobs_and_a_pristine_worktree_starts_from_zero(start, tmp_path):
    budget = DiskBudget(20)
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    (first / "tracked.bin").write_bytes(b"\1" * (30 << 20))  # what the worktree holds before: not counted
    a, b = start(first, budget), start(second, budget)
    assert a.exec("head -c 12582912 /dev/zero > twelve.bin").ok
    result = b.exec("head -c 12582912 /dev/zero > twelve.bin")  # 24 MB for the job
    assert result.disk_exceeded_mb == 20 and not result.ok
    (first / "twelve.bin").unlink()  # the worker resets a's worktree for the next stage
    a.refresh()
    (second / "twelve.bin").unlink()
    b.refresh()
    assert b.exec("head -c 12582912 /dev/zero > again.bin").ok


def test_bubblewrap_sandboxes_keep_the_budget_too(bwrap_engine, tmp_path):
    workspace = tmp_path / "ws"
    workspace.mkdir()
    sandbox = bwrap_engine.start(workspace, "", TEST_LIMITS, {}, disk=DiskBudget(20))
    try:
        result = sandbox.exec(FILL)
        assert result.disk_exceeded_mb == 20 and "the sandbox wrote more than 20 MB" in result.output
        assert usage(workspace) < 100 << 20
    finally:
        sandbox.stop()
