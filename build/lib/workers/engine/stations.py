"""Stations: a worktree and the sandbox mounted on it, reused across the stages of one repair.

A repair runs the repository's code several times (reproduce, each candidate, each validation).
Starting a container costs more than the rest of the pipeline together, so a station that a stage
is done with goes back to the repair's pool, and the next stage gets it back in the state a new
one would have: the worktree reset to its base commit (tracked files rewritten, everything
untracked removed, the setup's products carried in again) and the sandbox refreshed (no process
left, empty /tmp and $HOME, the workspace owned by the sandbox user). When either cannot be done,
the station is discarded and a new one made. Stations never outlive their repair: the sandbox
belongs to one job and one pull request, and `close()` stops them all.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from pathlib import Path
from typing import Any, Protocol

from workers.sandbox import Sandbox

log = logging.getLogger(__name__)

Checkout = Callable[[], AbstractContextManager[Any]]  # yields a Worktree (or a Path) at the base commit
StartSandbox = Callable[[Path], Sandbox]


class Carried(Protocol):
    """What a stage's worktree holds beyond the commit: the setup's products (setup_phase.py)."""

    roots: frozenset[str]  # untracked directories a reset leaves for `carry` to check

    def carry(self, worktree: Any) -> None:
        """Put them into a fresh or reset worktree, exactly as setup made them."""

    def seal(self, worktree: Any) -> None:
        """Remember their state: a sandbox is about to get the worktree."""


def workdir(worktree) -> Path:
    """The host path of what `checkout()` yielded: a workspace Worktree or a plain Path."""
    return Path(getattr(worktree, "path", worktree))


class Station:
    """One worktree (``worktree``, ``path``) and, once asked for, the sandbox on it."""

    def __init__(self, worktree: Any, exits: ExitStack, start_sandbox: StartSandbox,
                 carried: Carried | None = None) -> None:
        self.worktree = worktree
        self._exits = exits
        self._start = start_sandbox
        self._carried = carried
        self._sandbox: Sandbox | None = None
        self._refresh_due = False

    @property
    def path(self) -> Path:
        return workdir(self.worktree)

    def sandbox(self) -> Sandbox:
        """The sandbox on this worktree: started on first use, refreshed on the first use after
        the station was handed out again (so the worker's edits to the worktree happen first)."""
        if self._sandbox is not None and self._refresh_due:
            try:
                self._sandbox.refresh()
            except Exception as exc:  # noqa: BLE001 — a stuck or stopped sandbox: start another
                log.info("sandbox not reusable, starting a new one: %s", exc)
                self._sandbox.stop()
                self._sandbox = None
        if self._sandbox is None:
            self._sandbox = self._start(self.path)
            self._seal()
        elif self._refresh_due:
            self._seal()
        self._refresh_due = False
        return self._sandbox

    def _seal(self) -> None:
        if self._carried is not None:
            self._carried.seal(self.worktree)

    def _reset(self) -> None:
        self.worktree.reset(keep=self._carried.roots if self._carried is not None else ())
        if self._carried is not None:
            self._carried.carry(self.worktree)
        self._refresh_due = True

    def _close(self) -> None:
        try:
            if self._sandbox is not None:
                self._sandbox.stop()
        finally:
            self._exits.close()


class Stations:
    """The stations of one repair. `checkout()` yields a worktree at the base commit (with the
    setup's products); `carried` puts those products back after a reset."""

    def __init__(self, checkout: Checkout, start_sandbox: StartSandbox, carried: Carried | None = None) -> None:
        self._checkout, self._start, self._carried = checkout, start_sandbox, carried
        self._idle: list[Station] = []
        self._lock = threading.Lock()

    @contextmanager
    def station(self) -> Iterator[Station]:
        station = self._take() or self._open()
        done = False
        try:
            yield station
            done = True
        finally:
            if done and hasattr(station.worktree, "reset"):
                with self._lock:
                    self._idle.append(station)
            else:  # a stage that failed half-way, or a plain directory that cannot be reset
                station._close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for station in idle:
            try:
                station._close()
            except Exception as exc:  # noqa: BLE001 — the rest must still be closed
                log.warning("could not close a station: %s", exc)

    def __enter__(self) -> Stations:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _open(self) -> Station:
        exits = ExitStack()
        try:
            worktree = exits.enter_context(self._checkout())
        except BaseException:
            exits.close()
            raise
        return Station(worktree, exits, self._start, self._carried)

    def _take(self) -> Station | None:
        with self._lock:
            station = self._idle.pop() if self._idle else None
        if station is None:
            return None
        try:
            station._reset()
            return station
        except Exception as exc:  # noqa: BLE001 — a new station does the job
            log.info("station discarded: %s", exc)
            station._close()
            return None
