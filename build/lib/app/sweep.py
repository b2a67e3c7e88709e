"""The web side's periodic sweep, the net under the broker (every ``sweep_interval_s``):

- a running job whose lease lapsed (its worker was lost) is taken over: back to the queue with a
  new token, and sent;
- a queued job that is due but that the broker does not hold (Redis lost its data, a message was
  dropped, the broker was down at enqueue time) is sent again — once: the new message carries a
  new token, so the lost one, should it ever turn up, runs nothing;
- every ``redeliver_interval_s``, failed webhook deliveries are asked of GitHub again
  (app/redeliveries.py);
- at start and every ``reconcile_interval_s``, the App's installations are reconciled with GitHub.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from datetime import datetime, timedelta

from starlette.concurrency import run_in_threadpool

from app.reconcile import reconcile_installations
from app.redeliveries import MissedDeliveries
from core import jobs
from core.config import Settings
from core.db.models import utcnow
from core.db.session import session_scope
from core.logs import get_logger
from core.queue import BrokerView, enqueue, look_into, task_id

log = get_logger("qwenfix.sweep")
RESEND_GRACE = timedelta(seconds=10)  # a fresh hand-off may still be on its way into the broker
RESERVED_PATIENCE = timedelta(seconds=30)  # a worker holding a due job's message longer is gone or stuck


def missing_from_broker(waiting: Iterable[jobs.Waiting], view: BrokerView, now: datetime,
                        patience: timedelta = RESERVED_PATIENCE) -> list[jobs.Waiting]:
    """The due jobs whose current message the broker does not hold: not waiting in the queue, and
    not with a worker (or with one that has sat on it, due, for longer than ``patience``)."""
    out = []
    for job in waiting:
        current = task_id(job.job_id, job.token) if job.token else None
        if current in view.ready:
            continue  # its turn will come
        if current in view.reserved and now - job.waiting_since < patience:
            continue
        out.append(job)
    return out


def enqueue_stranded(settings: Settings, older_than: timedelta = RESEND_GRACE) -> int:
    """One sweep of the jobs: takeovers, then resends. Returns how many jobs were sent."""
    with session_scope(settings.database_url) as session:
        handed = jobs.take_over_lapsed(session, timedelta(seconds=settings.job_lease_s))
    sent = 0
    for handoff in handed:
        log.warning("job's lease lapsed (worker lost): taken over", job=handoff.job_id)
        sent += enqueue(settings, handoff.job_id, handoff.token)  # if refused: resent below, next round
    with session_scope(settings.database_url) as session:
        waiting = jobs.due(session, older_than)
    if not waiting:
        return sent
    view = look_into(settings)
    if view is None:
        return sent  # broker unreadable (down): next round
    patience = min(RESERVED_PATIENCE, timedelta(seconds=settings.job_lease_s))  # a live worker starts it sooner
    for job in missing_from_broker(waiting, view, utcnow(), patience):
        with session_scope(settings.database_url) as session:
            token = jobs.resend(session, job.job_id, job.token)
        if token is None:
            continue  # claimed or changed meanwhile
        if not enqueue(settings, job.job_id, token):
            break  # broker down again: next round
        sent += 1
        log.info("job was in no broker queue: sent again", job=job.job_id)
    return sent


async def sweep_forever(settings: Settings) -> None:
    reconciled_at = None
    missed = MissedDeliveries(settings)
    looking: asyncio.Task | None = None  # a look at GitHub's delivery log never holds up the jobs' sweep
    while True:
        settings = settings.current()  # the App may have been registered meanwhile
        try:
            await run_in_threadpool(enqueue_stranded, settings)
        except Exception as exc:  # noqa: BLE001 — database down: next round
            log.warning("sweep failed", error=type(exc).__name__)
        due = reconciled_at is None or time.monotonic() - reconciled_at >= settings.reconcile_interval_s
        if settings.app_configured and due:
            try:
                await run_in_threadpool(reconcile_installations, settings)
                reconciled_at = time.monotonic()
            except Exception as exc:  # noqa: BLE001 — GitHub unreachable: next round
                log.warning("reconcile failed", error=type(exc).__name__, detail=str(exc)[:200])
                reconciled_at = time.monotonic() - settings.reconcile_interval_s + 60  # retry in a minute
        if missed.settings.app_id != settings.app_id:  # the App was registered (or changed) meanwhile
            missed = MissedDeliveries(settings)
        if missed.due() and (looking is None or looking.done()):
            looking = asyncio.create_task(_look_for_missed(missed))
        await asyncio.sleep(settings.sweep_interval_s)


async def _look_for_missed(missed: MissedDeliveries) -> None:
    try:
        await run_in_threadpool(missed.recover)
    except Exception as exc:  # noqa: BLE001 — GitHub or the database unreachable: next look
        log.warning("looking for missed deliveries failed", error=type(exc).__name__)
