"""The same break-out tests on the bubblewrap engine (skipped only if bwrap cannot run here)."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
import uuid

import pytest

from tests.workers.sandbox.test_docker import ROOT, SMALL, SandboxContract, _ws


class TestBwrapSandbox(SandboxContract):
    @pytest.fixture
    def make(self, bwrap_factory):
        return bwrap_factory

    def test_memory_hog_is_oom_killed(self, make, tmp_path, bwrap_engine):
        if not bwrap_engine.use_cgroups:
            # rlimits only: RLIMIT_AS makes the allocation fail instead of an OOM kill
            sb = make(_ws(tmp_path), SMALL)
            r = sb.exec(["python3", "-c", "a=[]\nwhile True: a.append(bytearray(16 << 20))"])
            assert not r.ok and "MemoryError" in r.output
            return
        super().test_memory_hog_is_oom_killed(make, tmp_path)

    def test_worker_killed_mid_command(self, tmp_path):
        n = 3000 + uuid.uuid4().int % 500
        ws = _ws(tmp_path)
        script = textwrap.dedent(f"""
            from pathlib import Path
            from workers.sandbox import Limits
            from workers.sandbox.bwrap import BwrapEngine
            sb = BwrapEngine().start(Path({str(ws)!r}), "", Limits())
            print("started", flush=True)
            sb.exec("sleep {n}")
        """)
        worker = subprocess.Popen(
            [sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, text=True
        )
        assert worker.stdout.readline().strip() == "started"
        deadline = time.monotonic() + 5
        while f"sleep {n}" not in _host_ps() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert f"sleep {n}" in _host_ps()
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
        deadline = time.monotonic() + 5
        while f"sleep {n}" in _host_ps() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert f"sleep {n}" not in _host_ps()  # --die-with-parent took the sandbox down
        from workers.sandbox.bwrap import CGROUP_V1, sweep_orphans

        sweep_orphans()
        assert not list(CGROUP_V1.glob(f"*/**/qwenfix-{worker.pid}-*"))


def _host_ps() -> str:
    return subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
