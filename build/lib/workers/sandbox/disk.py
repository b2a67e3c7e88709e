"""A job's disk budget (QWENFIX_SANDBOX_DISK_MB): what its sandboxes may add to their worktrees,
together, while their commands run.

A bind-mounted worktree has no quota of its own, so the worker measures. While a command runs, its
sandbox measures its worktree (allocated blocks, hard links once; workers/workspace/confined.py)
about every second — less often when one measure is slow — and at once whenever the filesystem's
free space drops by more than what is left of the budget. The job's total is what each of its live
sandboxes holds beyond the pristine worktree it was handed; when that exceeds the budget, the
running command is stopped and its result says so. One file can never be larger than the budget
(RLIMIT_FSIZE), so a single write cannot overshoot it between two measures.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from pathlib import Path

from workers.workspace.confined import usage
from workers.workspace.git import WorkspaceError

MB = 1 << 20
MIN_INTERVAL_S = 0.5
SLOW_FACTOR = 20  # a measure that takes t seconds runs at most every SLOW_FACTOR * t
BURST_SPACING_S = 0.05  # measures triggered by a drop in free space, at most this often


class DiskBudget:
    """Shared by every sandbox of one job (thread-safe: candidates run in parallel)."""

    def __init__(self, limit_mb: int) -> None:
        if limit_mb <= 0:
            raise ValueError("the sandbox disk budget must be a positive number of MB")
        self.limit_mb = int(limit_mb)
        self.limit_bytes = self.limit_mb * MB
        self._grown: dict[int, int] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count()

    @classmethod
    def from_settings(cls, settings) -> DiskBudget:
        return cls(settings.sandbox_disk_mb)

    def watch(self, workspace: Path) -> DiskWatch:
        """Start counting what is written into ``workspace`` from now on."""
        return DiskWatch(self, Path(workspace), next(self._ids))

    def remaining(self) -> int:
        with self._lock:
            return self.limit_bytes - sum(self._grown.values())

    def _record(self, watch: int, grown: int) -> bool:
        with self._lock:
            self._grown[watch] = grown
            return sum(self._grown.values()) > self.limit_bytes

    def _grown_by(self, watch: int) -> int:
        with self._lock:
            return self._grown.get(watch, 0)

    def _forget(self, watch: int) -> None:
        with self._lock:
            self._grown.pop(watch, None)


class DiskWatch:
    """One sandbox's worktree under its job's budget."""

    def __init__(self, budget: DiskBudget, workspace: Path, ident: int) -> None:
        self.budget, self.workspace, self._id = budget, workspace, ident
        self._baseline = 0
        self._over = False
        self._due = self._measured = 0.0
        self._free_mark = 0
        self._at_begin = 0  # what this sandbox held beyond its baseline when the command started
        self._closed = False
        self.rebase()

    def rebase(self) -> None:
        """The worktree is pristine again (handed to the next stage): count from here."""
        self._baseline = self._measure()
        self._over = self.budget._record(self._id, 0)
        self._due = time.monotonic() + MIN_INTERVAL_S

    def begin(self) -> None:
        """A command starts: it is stopped only for what it adds (it may be cleaning up)."""
        self._over = False
        self._at_begin = self.budget._grown_by(self._id)
        self._free_mark = _free(self.workspace)
        self._due = time.monotonic() + MIN_INTERVAL_S

    def exceeded(self, force: bool = False) -> bool:
        """Whether the job is over its budget; measures only when due (or ``force``)."""
        if self._closed:
            return False
        now = time.monotonic()
        if not force and now < self._due:
            burst = self._free_mark - _free(self.workspace) > max(0, self.budget.remaining())
            if not burst or now < self._measured + BURST_SPACING_S:
                return self._over
        used = self._measure()
        self._measured = time.monotonic()
        self._due = self._measured + max(MIN_INTERVAL_S, SLOW_FACTOR * (self._measured - now))
        grown = max(0, used - self._baseline)
        self._over = self.budget._record(self._id, grown) and grown > self._at_begin
        return self._over

    def close(self) -> None:
        self._closed = True
        self.budget._forget(self._id)

    def _measure(self) -> int:
        self._free_mark = _free(self.workspace)
        try:
            return usage(self.workspace)
        except (OSError, WorkspaceError):  # the sandbox moved things while we walked: look again soon
            return self._baseline


def _free(path: Path) -> int:
    try:
        st = os.statvfs(path)
    except OSError:
        return 0
    return st.f_bavail * st.f_frsize
