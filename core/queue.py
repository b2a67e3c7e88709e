"""The Celery app: broker from settings (Redis, or an embedded filesystem broker), queues, beat; and a
look into the broker, so that the sweep can tell a job whose message was lost.

A job's message is the task ``job-<id>-<token>`` (see core/jobs.py for the token): what the broker
holds can be read back as job ids and tokens without running anything.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import redis
from celery import Celery

from core.config import Settings, get_settings

RUN_JOB = "qwenfix.run_job"
SWEEP = "qwenfix.sweep"
# The job watches its own deadline; Celery interrupts it a margin later and kills the process
# running it a grace after that: a quarter and a half of the limit, within these bounds (a job
# allowed 20 s is not given a minute more to say so).
SOFT_LIMIT_MARGIN_S = (5.0, 15.0)
JOB_KILL_GRACE_S = (10.0, 60.0)


def _within(value: float, bounds: tuple[float, float]) -> float:
    return min(max(value, bounds[0]), bounds[1])


def time_limits(settings: Settings) -> tuple[float, float]:
    """(soft, hard) Celery time limits of one task, in seconds, from the operator's job time limit.

    At the job's own deadline (QWENFIX_JOB_TIME_LIMIT_S) its sandboxes are stopped; at the soft
    limit Celery raises SoftTimeLimitExceeded in whatever the job is doing; at the hard limit it
    kills the process, whatever it is doing (a regex in C, a stuck socket). Nothing a repository
    sends can hold a worker longer."""
    limit = settings.job_time_limit_s
    soft = limit + _within(limit / 4, SOFT_LIMIT_MARGIN_S)
    return soft, soft + _within(limit / 2, JOB_KILL_GRACE_S)


def broker_options(settings: Settings) -> tuple[str, dict]:
    if settings.embedded_broker:
        folder = (settings.data_dir / "broker").resolve()
        for sub in ("in", "processed"):
            Path(folder / sub).mkdir(parents=True, exist_ok=True)
        return "filesystem://", {
            "data_folder_in": str(folder / "in"),
            "data_folder_out": str(folder / "in"),
            "processed_folder": str(folder / "processed"),
            "store_processed": False,
        }
    # fail fast when Redis is down: the webhook answers 202 anyway and the sweep enqueues later;
    # a job still running is not handed to a second worker before its hard limit has passed
    return settings.broker_url, {"socket_connect_timeout": 2, "socket_timeout": 5, "max_retries": 0,
                                 "visibility_timeout": int(time_limits(settings)[1]) + 600}


def make_celery(settings: Settings | None = None) -> Celery:
    settings = settings or get_settings()
    url, transport_options = broker_options(settings)
    soft_limit, hard_limit = time_limits(settings)
    app = Celery("qwenfix", broker=url, include=["workers.tasks"])
    app.conf.update(
        broker_transport_options=transport_options,
        broker_connection_retry_on_startup=True,
        task_acks_late=True,  # a job whose worker dies is delivered again
        task_reject_on_worker_lost=True,
        task_soft_time_limit=soft_limit,
        task_time_limit=hard_limit,
        task_acks_on_failure_or_timeout=True,  # a job killed at its limit is over, not delivered again
        task_ignore_result=True,
        worker_prefetch_multiplier=1,
        task_default_queue="qwenfix",
        task_routes={RUN_JOB: {"queue": "qwenfix"}, SWEEP: {"queue": "qwenfix"}},
        beat_schedule={SWEEP: {"task": SWEEP, "schedule": settings.sweep_interval_s}},
        worker_hijack_root_logger=False,
    )
    return app


celery_app = make_celery()
_producers: dict[str, Celery] = {}


def producer_for(settings: Settings) -> Celery:
    """The Celery app that publishes for these settings (the web side may not use the env's)."""
    key = settings.broker_url or str(settings.data_dir.resolve())
    if key not in _producers:
        _producers[key] = make_celery(settings)
    return _producers[key]


def task_id(job_id: int, token: str) -> str:
    return f"job-{job_id}-{token}"


def enqueue(settings: Settings, job_id: int, token: str | None = None, countdown: float | None = None) -> bool:
    """Ring the doorbell for a job (its row is already committed). False when the broker is
    unreachable: the job stays queued and the sweep sends it later."""
    args = [job_id, token] if token else [job_id]
    try:
        producer_for(settings).send_task(RUN_JOB, args=args, countdown=countdown, retry=False,
                                         task_id=task_id(job_id, token) if token else None)
        return True
    except Exception:  # noqa: BLE001 — any broker failure leaves the job queued for the sweep
        return False


@dataclass(frozen=True)
class BrokerView:
    """Task ids the broker holds: ``ready`` (waiting in the queue, in order) and ``reserved``
    (delivered to a worker, not yet acknowledged: running, prefetched or waiting for its countdown)."""

    ready: frozenset[str]
    reserved: frozenset[str]


PRIORITY_SEP, PRIORITY_STEPS = "\x06\x16", (3, 6, 9)  # kombu's Redis names for priority sub-queues
UNACKED_KEY = "unacked"  # kombu's Redis hash of delivered, unacknowledged messages


def look_into(settings: Settings, queue: str = "qwenfix") -> BrokerView | None:
    """What the broker holds for ``queue`` now; None when it cannot be read (then nothing is resent)."""
    try:
        if settings.embedded_broker:
            folder = Path(broker_options(settings)[1]["data_folder_in"])
            ready = [_task_of(path.read_bytes()) for path in folder.glob(f"*.{queue}.msg")]
            return BrokerView(frozenset(t for t in ready if t), frozenset())
        client = redis.Redis.from_url(settings.broker_url, socket_connect_timeout=2, socket_timeout=5)
        try:
            names = [queue] + [f"{queue}{PRIORITY_SEP}{step}" for step in PRIORITY_STEPS]
            ready = [_task_of(raw) for name in names for raw in client.lrange(name, 0, -1)]
            reserved = []
            for raw in client.hvals(UNACKED_KEY):
                entry = json.loads(raw)
                if isinstance(entry, list) and entry:
                    reserved.append(_task_of(json.dumps(entry[0])))
        finally:
            client.close()
        return BrokerView(frozenset(t for t in ready if t), frozenset(t for t in reserved if t))
    except (OSError, ValueError, redis.RedisError):
        return None


def _task_of(raw: bytes | str) -> str | None:
    try:
        message = json.loads(raw)
        return str(message["headers"]["id"])
    except (ValueError, KeyError, TypeError):
        return None
