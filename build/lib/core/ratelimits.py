"""GitHub's rate limits, obeyed as GitHub documents them, per installation:

- **primary**: every response carries the hour's budget (``x-ratelimit-limit``, ``-remaining``,
  ``-used``, ``-reset``); once ``remaining`` is 0 nothing more is sent until ``reset``;
- **secondary**: a 403 whose message says "secondary rate limit" (or the older "abuse detection"),
  or any 429: wait ``Retry-After`` seconds when given, else until ``x-ratelimit-reset`` when
  ``remaining`` is 0, else at least a minute (``QWENFIX_GITHUB_SECONDARY_BACKOFF_S``), doubling
  with each repeat;
- **content-creating requests** (POST, PATCH, PUT, DELETE) are sent one at a time per
  installation, ``QWENFIX_GITHUB_WRITE_INTERVAL_S`` apart, across the processes of a host (a
  file lock in the data dir, which also holds the time of the last write);
- **a budget**: the latest counts per installation go to the ``github_budgets`` table, shown on
  the dashboard; with fewer than ``QWENFIX_GITHUB_REQUEST_RESERVE`` requests left, progress
  updates are skipped so that the results still get posted.

A wait longer than ``QWENFIX_GITHUB_MAX_WAIT_S`` is not slept through: :class:`RateLimited` is
raised, and the job goes back to the queue until then. One :class:`RateLimits` per process
(``core.github.GitHubApp`` holds it): a pause seen by one request holds back every request of that
installation in the process.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from collections.abc import Callable, Generator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any

import httpx
from githubkit.throttling import BaseThrottler

from core.config import Settings
from core.db.models import GitHubBudget
from core.db.session import session_scope

log = logging.getLogger(__name__)

WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})
SAVE_EVERY_S = 2.0  # the budget row is written at most this often per installation and process
SECONDARY_MARKERS = ("secondary rate limit", "abuse detection")


class RateLimited(Exception):
    """GitHub asked for a wait longer than a job waits in place."""

    def __init__(self, wait_s: float, reason: str) -> None:
        super().__init__(f"{reason}; retry in {wait_s:.0f}s")
        self.wait_s = wait_s
        self.reason = reason


@dataclass(frozen=True)
class Limit:
    kind: str  # primary | secondary
    wait_s: float


def limit_of(status: int, headers: Mapping[str, str], message: str, now: float, backoff_s: float,
             repeats: int = 0) -> Limit | None:
    """The rate limit a response reports, and how long to wait before the next request (GitHub's
    rules, see the module docstring); None when the response is not a rate limit. ``repeats``:
    secondary limits hit in a row before this one."""
    if status not in (403, 429):
        return None
    remaining = headers.get("x-ratelimit-remaining")
    secondary = status == 429 or any(m in (message or "").lower() for m in SECONDARY_MARKERS)
    if not secondary and remaining != "0":
        return None  # a plain 403: permissions, not a limit
    kind = "secondary" if secondary else "primary"
    retry_after = _number(headers.get("retry-after"))
    if retry_after is not None:
        return Limit(kind, max(0.0, retry_after))
    reset = _number(headers.get("x-ratelimit-reset"))
    if remaining == "0" and reset is not None:
        return Limit(kind, max(0.0, reset - now))
    return Limit(kind, backoff_s * 2 ** min(repeats, 10))


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


@dataclass
class Budget:
    """One installation's budget as last seen, and the pause GitHub asked for."""

    limit: int | None = None
    remaining: int | None = None
    used: int | None = None
    reset_at: float | None = None  # epoch seconds
    paused_until: float = 0.0
    pause_reason: str | None = None
    repeats: int = 0  # secondary limits in a row
    saved_at: float = 0.0


class RateLimits:
    def __init__(self, settings: Settings, *, record: bool = False, clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.settings = settings
        self.record = record  # write the budget to the database (workers do; the CLI does not)
        self._clock, self._sleep = clock, sleep
        self._budgets: dict[int, Budget] = {}
        self._state = threading.Lock()
        self._writers: dict[int, threading.Lock] = {}

    # ------------------------------------------------------------------ before a request

    def throttler(self, installation_id: int) -> BaseThrottler:
        """githubkit's hook around every request of one installation's client."""
        return _Throttler(self, installation_id)

    @contextmanager
    def sending(self, installation_id: int, method: str) -> Generator[None, None, None]:
        """Around one request: wait out a pause; for a content-creating request also hold the
        installation's write lock and keep the interval since the previous write."""
        self.wait_until_allowed(installation_id)
        if method.upper() not in WRITE_METHODS:
            yield
            return
        with self._write_turn(installation_id):
            self.wait_until_allowed(installation_id)  # a pause may have begun while we queued
            yield

    def wait_until_allowed(self, installation_id: int) -> None:
        wait, reason = self.pause(installation_id)
        if wait <= 0:
            return
        if wait > self.settings.github_max_wait_s:
            raise RateLimited(wait, reason)
        log.warning("waiting %.1fs for GitHub: %s (installation %s)", wait, reason, installation_id)
        self._sleep(wait)

    def pause(self, installation_id: int) -> tuple[float, str]:
        """Seconds to wait before the next request of this installation, and why."""
        now = self._clock()
        with self._state:
            b = self._budgets.get(installation_id) or Budget()
            wait, reason = b.paused_until - now, b.pause_reason or "rate limited"
            if b.remaining == 0 and b.reset_at and b.reset_at - now > wait:
                wait, reason = b.reset_at - now, "primary rate limit: no requests left until the reset"
        return max(0.0, wait), reason

    def low(self, installation_id: int) -> bool:
        """Paused, or fewer requests left than the reserve: skip what can be skipped (progress)."""
        if self.pause(installation_id)[0] > 0:
            return True
        with self._state:
            b = self._budgets.get(installation_id)
            return b is not None and b.remaining is not None and b.remaining < self.settings.github_request_reserve

    @contextmanager
    def _write_turn(self, installation_id: int) -> Generator[None, None, None]:
        with self._state:
            local = self._writers.setdefault(installation_id, threading.Lock())
        folder = self.settings.data_dir / "github"
        folder.mkdir(parents=True, exist_ok=True)
        with local:
            fd = os.open(folder / f"installation-{installation_id}.writes", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                last = _number(os.pread(fd, 32, 0).decode(errors="replace").strip() or None) or 0.0
                gap = last + self.settings.github_write_interval_s - self._clock()
                if gap > 0:
                    self._sleep(gap)
                try:
                    yield
                finally:
                    stamp = f"{self._clock():.6f}".encode().ljust(32)
                    os.pwrite(fd, stamp, 0)
            finally:
                os.close(fd)  # closing drops the flock

    # ------------------------------------------------------------------ after a response

    def observe(self, installation_id: int, response: httpx.Response) -> Limit | None:
        """Read a response's budget headers; a rate limit starts a pause. Returns that limit."""
        headers, now = response.headers, self._clock()
        message = ""
        if response.status_code in (403, 429):
            try:
                body = response.json()
                message = body.get("message", "") if isinstance(body, dict) else ""
            except ValueError:
                message = response.text[:500]
        with self._state:
            b = self._budgets.setdefault(installation_id, Budget())
            for name, attr in (("limit", "limit"), ("remaining", "remaining"), ("used", "used")):
                value = _number(headers.get(f"x-ratelimit-{name}"))
                if value is not None:
                    setattr(b, attr, int(value))
            reset = _number(headers.get("x-ratelimit-reset"))
            if reset is not None:
                b.reset_at = reset
            limit = limit_of(response.status_code, headers, message, now,
                             self.settings.github_secondary_backoff_s, b.repeats)
            if limit is not None:
                b.paused_until = max(b.paused_until, now + limit.wait_s)
                b.pause_reason = f"{limit.kind} rate limit (HTTP {response.status_code})"
                b.repeats = b.repeats + 1 if limit.kind == "secondary" else b.repeats
                log.warning("GitHub %s rate limit: pausing installation %s for %.1fs", limit.kind,
                            installation_id, limit.wait_s)
            elif response.is_success:
                b.repeats = 0
            due = limit is not None or now - b.saved_at >= SAVE_EVERY_S
            if due:
                b.saved_at = now
            snapshot = replace(b)
        if due:
            self._save(installation_id, snapshot)
        return limit

    def budget(self, installation_id: int) -> Budget:
        with self._state:
            return replace(self._budgets.get(installation_id) or Budget())

    def _save(self, installation_id: int, b: Budget) -> None:
        if not self.record:
            return
        try:
            with session_scope(self.settings.database_url) as session:
                session.merge(GitHubBudget(
                    installation_id=installation_id, limit=b.limit, remaining=b.remaining, used=b.used,
                    reset_at=_when(b.reset_at), paused_until=_when(b.paused_until or None),
                    pause_reason=b.pause_reason if b.paused_until > self._clock() else None,
                    updated_at=datetime.now(timezone.utc),
                ))
        except Exception as exc:  # noqa: BLE001 — the dashboard's copy may lag; requests go on
            log.debug("could not record the GitHub budget: %s", type(exc).__name__)


def _when(epoch: float | None) -> datetime | None:
    return datetime.fromtimestamp(epoch, timezone.utc) if epoch else None


class _Throttler(BaseThrottler):
    def __init__(self, limits: RateLimits, installation_id: int) -> None:
        self._limits, self._installation = limits, installation_id

    @contextmanager
    def acquire(self, request: httpx.Request) -> Generator[None, Any, Any]:
        with self._limits.sending(self._installation, request.method):
            yield

    async def async_acquire(self, request: httpx.Request):  # pragma: no cover - qwenfix is sync
        raise NotImplementedError("qwenfix's GitHub clients are synchronous")
