"""create_app(): wire routes and the lifespan; no logic here."""

from __future__ import annotations

import asyncio
import contextlib
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app import api, health, webhooks
from app.dashboard import outcomes, pages
from app.sweep import sweep_forever
from core import logs
from core.config import Settings, get_settings


def create_app(settings: Settings | None = None, sweep: bool = True) -> FastAPI:
    settings = settings or get_settings()
    logs.configure(settings.log_level, settings.log_json, settings.secrets())

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        task = asyncio.create_task(sweep_forever(settings)) if sweep else None
        yield
        if task:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app = FastAPI(title="qwenfix", lifespan=lifespan)
    app.state.settings = settings
    for module in (webhooks, health, api, pages, outcomes):
        app.include_router(module.router)
    return app
