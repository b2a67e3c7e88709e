"""POST /webhooks/github: verify the signature, record the delivery, route to a job, enqueue, answer 202."""

from __future__ import annotations

import hashlib
import hmac
import json

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from app import intake, metrics
from app.access import Public
from app.deps import SettingsDep
from app.intents import Ignored, observe, route
from core import jobs
from core.config import Settings
from core.db.session import session_scope
from core.logs import get_logger
from core.queue import enqueue

router = APIRouter()
log = get_logger("qwenfix.webhooks")


def _signed(secret: str, header: str | None) -> bool:
    """A signature worth checking: a secret to check it with and a header of GitHub's form."""
    return bool(secret) and bool(header) and header.startswith("sha256=") and len(header) == 71


def _answer(code: int, event: str, result: str, **body) -> JSONResponse:
    metrics.WEBHOOKS.labels(event=event or "unknown", result=result).inc()
    return JSONResponse(body, status_code=code)


def _too_large(request: Request, limit: int) -> bool:
    declared = request.headers.get("content-length")
    return bool(declared) and declared.isdigit() and int(declared) > limit


async def _read_signed(request: Request, limit: int, secret: str) -> tuple[bytes | None, bool]:
    """(body, signature matches), reading at most ``limit`` bytes (None beyond) and computing the
    HMAC over each chunk as it arrives: nothing is read twice, nothing kept past the limit."""
    mac = hmac.new(secret.encode(), digestmod=hashlib.sha256)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None, False
        mac.update(chunk)
        chunks.append(chunk)
    header = request.headers.get("x-hub-signature-256") or ""
    return b"".join(chunks), hmac.compare_digest("sha256=" + mac.hexdigest(), header)


@router.post("/webhooks/github")
async def receive(request: Request, settings: SettingsDep, _: Public) -> JSONResponse:  # signed by GitHub
    event = request.headers.get("x-github-event", "")
    delivery_id = request.headers.get("x-github-delivery", "")
    limit = settings.max_body_bytes
    if _too_large(request, limit):  # refused on its declared size, before a byte is read
        return _answer(413, event, "too_large", error="payload larger than 25 MiB")
    secret = settings.webhook_secret.get_secret_value()
    body, verified = None, False
    if _signed(secret, request.headers.get("x-hub-signature-256")):  # unsigned: its body is never read
        body, verified = await _read_signed(request, limit, secret)
        if body is None:
            return _answer(413, event, "too_large", error="payload larger than 25 MiB")
    if not verified:
        reason = "webhook secret is not configured" if not secret else "bad or missing X-Hub-Signature-256"
        log.warning("webhook refused", reason=reason, delivery=delivery_id)
        return _answer(401, event, "bad_signature", error=reason)
    if not event or not delivery_id or len(delivery_id) > 80:
        return _answer(400, event, "bad_headers", error="X-GitHub-Event and X-GitHub-Delivery are required")
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return _answer(400, event, "not_json", error="body is not JSON")
    if not isinstance(payload, dict):
        return _answer(400, event, "not_json", error="body is not a JSON object")
    if event == "ping":
        return _answer(200, event, "ping", ok=True, zen=payload.get("zen"))

    action = payload.get("action") if isinstance(payload.get("action"), str) else None
    own_bot = f"{settings.app_slug}[bot]" if settings.app_slug else ""  # empty: not known yet
    try:
        routed = route(event, payload, delivery_id, settings.app_id, own_bot)
        observed = observe(event, payload, settings.app_id, own_bot)
    except Exception as exc:  # noqa: BLE001 — a signed payload of an unexpected shape is never a 5xx
        log.warning("payload not understood", delivery=delivery_id, error=repr(exc))
        routed, observed = Ignored(f"{event} payload has an unexpected shape ({type(exc).__name__})"), None
    try:
        delivery, job, created = await run_in_threadpool(
            _record_and_enqueue, settings, delivery_id, event, action, routed, observed)
    except SQLAlchemyError as exc:  # down, restarting, or every pooled connection busy past its timeout
        log.error("database unavailable", delivery=delivery_id, error=type(exc).__name__)
        return _answer(503, event, "db_down", error="database unavailable; GitHub will show a failed delivery")
    log.info(
        "webhook recorded", delivery=delivery_id, gh_event=event, action=action,
        status=delivery.status, reason=delivery.reason, job=job.id if job else None, new_job=created,
    )
    return _answer(
        202, event, delivery.status if created or job is None else "duplicate",
        delivery=delivery_id, status=delivery.status, reason=delivery.reason,
        job=job.id if job else None,
    )


def _record_and_enqueue(settings: Settings, delivery_id: str, event: str, action: str | None, routed, observed):
    """Commit the job first (durable hand-off), then give it to the broker."""
    with session_scope(settings.database_url) as session:
        delivery, job, created = intake.record_delivery(session, delivery_id, event, action, routed)
        follow_up = intake.record_observation(session, observed, delivery) if observed else None
        for new in (job if created else None, follow_up):
            if new is not None and not enqueue(settings, new.id, new.enqueue_token):
                log.warning("broker unavailable; job stays queued for the sweep", job=new.id)
                jobs.mark_enqueued(session, new.id, enqueued=False)
        if job is None and follow_up is not None:
            job, created = follow_up, True
    return delivery, job, created


