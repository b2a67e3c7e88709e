"""A running job's lease: renewed from a thread every third of the lease while the job runs (a long
model call or test run included), with its pull request's lock. When a renewal finds the job no
longer this worker's (cancelled, or taken over after a stall), the lease is lost and the job stops."""

from __future__ import annotations

import threading
from datetime import timedelta

from core import jobs
from core.db.session import session_scope
from core.logs import get_logger
from workers.context import JobContext, pr_lock_name

log = get_logger("qwenfix.lease")


class Lease:
    def __init__(self, ctx: JobContext) -> None:
        self._ctx = ctx
        self._length = timedelta(seconds=ctx.settings.job_lease_s)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew_until_stopped, name=f"lease-{ctx.job.id}", daemon=True)

    def __enter__(self) -> Lease:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def renew(self) -> bool:
        """One renewal of the job's lease (and its PR lock, when held); False once it is lost."""
        ctx = self._ctx
        with session_scope(ctx.settings.database_url) as session:
            ours = jobs.heartbeat(session, ctx.job.id, holder=ctx.holder)
            if ours and ctx.holds_lock:
                jobs.renew_lock(session, pr_lock_name(ctx.job), ctx.lock_owner, self._length)
        if not ours:
            ctx.lease_lost.set()
        return ours

    def _renew_until_stopped(self) -> None:
        interval = self._length.total_seconds() / 3
        while not self._stop.wait(interval):
            try:
                if not self.renew():
                    log.warning("lease lost: the job was cancelled or taken over", job=self._ctx.job.id)
                    return
            except Exception as exc:  # noqa: BLE001 — database blip: try again; a long outage lets it lapse
                log.warning("lease renewal failed", job=self._ctx.job.id, error=type(exc).__name__)
