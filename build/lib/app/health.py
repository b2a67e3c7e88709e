"""Liveness, readiness (database and broker) and Prometheus metrics (for the metrics token only)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool

from app import metrics
from app.access import MetricsReader, Public
from app.deps import SettingsDep
from core.config import Settings
from core.db.session import engine_for

router = APIRouter()


@router.get("/healthz")
def healthz(_: Public) -> dict:
    return {"ok": True}


def check_database(settings: Settings) -> str | None:
    try:
        with engine_for(settings.database_url).connect() as conn:
            conn.execute(text("SELECT 1"))
        return None
    except Exception as exc:  # noqa: BLE001
        return f"database unreachable: {type(exc).__name__}"


def check_broker(settings: Settings) -> str | None:
    if settings.embedded_broker:
        return None
    from core.queue import producer_for

    try:
        with producer_for(settings).connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return None
    except Exception as exc:  # noqa: BLE001
        return f"broker unreachable: {type(exc).__name__}"


@router.get("/readyz")
async def readyz(settings: SettingsDep, _: Public) -> JSONResponse:
    problems = {
        "database": await run_in_threadpool(check_database, settings),
        "broker": await run_in_threadpool(check_broker, settings),
    }
    ready = not any(problems.values())
    body = {"ready": ready, **{k: v or "ok" for k, v in problems.items()}}
    return JSONResponse(body, status_code=200 if ready else 503)


@router.get("/metrics")
async def prometheus(settings: SettingsDep, _: MetricsReader) -> Response:
    data = await run_in_threadpool(metrics.render, settings.database_url)
    return Response(data, media_type=CONTENT_TYPE_LATEST)
