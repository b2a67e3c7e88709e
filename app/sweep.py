"""The web side's periodic sweep: hand the broker every job left queued (broker was down, or lost
it), and reconcile the App's installations with GitHub at start and every
``QWENFIX_RECONCILE_INTERVAL_S``."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

from starlette.concurrency import run_in_threadpool

from app.reconcile import reconcile_installations
from core import jobs
from core.config import Settings
from core.db.session import session_scope
from core.logs import get_logger
from core.queue import enqueue

log = get_logger("qwenfix.sweep")
REENQUEUE_AFTER = timedelta(minutes=10)


def enqueue_stranded(settings: Settings, older_than: timedelta = REENQUEUE_AFTER) -> int:
    with session_scope(settings.database_url) as session:
        stranded = jobs.due_for_enqueue(session, older_than)
        sent = 0
        for job_id in stranded:
            if not enqueue(settings, job_id):
                break  # broker still down: try again next sweep
            jobs.mark_enqueued(session, job_id)
            sent += 1
    if sent:
        log.info("sweep enqueued stranded jobs", count=sent)
    return sent


async def sweep_forever(settings: Settings) -> None:
    reconciled_at = None
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
        await asyncio.sleep(settings.sweep_interval_s)
