"""create_app(): wire routes, access errors and the lifespan; no logic here."""

from __future__ import annotations

import asyncio
import contextlib
from contextlib import asynccontextmanager
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse, RedirectResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from app import api, auth, docs, health, setup, tokens, webhooks
from app.access import SignInRequired
from app.dashboard import actions, outcomes, pages
from app.dashboard.render import render
from app.sweep import sweep_forever
from core import logs
from core.config import Settings, get_settings

API_PATHS = ("/api/", "/openapi.json")  # answer 401, not a redirect to the sign-in page
MACHINE_PATHS = (*API_PATHS, "/webhooks/", "/metrics", "/healthz", "/readyz")  # errors stay JSON


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

    # /docs and /openapi.json are routes of app/docs.py, for signed-in people only
    app = FastAPI(title="qwenfix", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.settings = settings
    for module in (webhooks, health, setup, auth, tokens, docs, api, pages, actions, outcomes):
        app.include_router(module.router)
    app.add_exception_handler(SignInRequired, _sign_in_required)
    app.add_exception_handler(StarletteHTTPException, _error_page)
    return app


async def _error_page(request: Request, exc: StarletteHTTPException):
    """People get a page saying what went wrong; programs keep FastAPI's JSON."""
    if request.url.path.startswith(MACHINE_PATHS) or exc.status_code < 400:
        return await http_exception_handler(request, exc)
    return render(request, "error.html", status_code=exc.status_code, headers=exc.headers,
                  code=exc.status_code, message=exc.detail)


async def _sign_in_required(request: Request, _exc: SignInRequired):
    path = request.url.path
    if path.startswith(API_PATHS):
        return JSONResponse({"detail": "sign in, or send a personal API token as a bearer token"},
                            status_code=401, headers={"WWW-Authenticate": "Bearer"})
    target = path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse("/login?" + urlencode({"next": target}), status_code=303)
