"""Setup by App manifest: one click registers qwenfix's GitHub App and keeps its credentials.

GET /setup shows the manifest as a form that posts to GitHub's "new App from manifest" page; GitHub
sends the person back to /setup/callback with a code, exchanged here for the App's id, key, webhook
secret and OAuth client (stored 0600 in the data dir, or shown once when the operator keeps
secrets elsewhere); then the person goes on to install the App. Served while no App is configured,
and to admins.
"""

from __future__ import annotations

import json
import secrets

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from app import manifest
from app.access import SetupAllowed
from app.dashboard.render import templates
from app.deps import SettingsDep
from core import logs, stored_app
from core.github import GitHubAppError, convert_manifest

router = APIRouter()
log = logs.get_logger("qwenfix.setup")
STATE_COOKIE = "qwenfix_setup_state"


@router.get("/setup", response_class=HTMLResponse)
def setup_page(request: Request, settings: SettingsDep, _: SetupAllowed, org: str | None = None):
    account = (org or "").strip() or None
    if account is not None and not manifest.valid_account(account):
        return templates.TemplateResponse(
            request, "setup.html", {"error": f"'{account}' is not a GitHub organization or user name.",
                                    "account": None, "settings": settings}, status_code=400)
    state = secrets.token_urlsafe(24)
    body = {
        "account": account,
        "settings": settings,
        "action": manifest.new_app_url(settings, account, state),
        "manifest": json.dumps(manifest.app_manifest(settings, manifest.default_name(account))),
        "permissions": manifest.PERMISSIONS,
        "events": manifest.EVENTS,
        "unreachable": manifest.unreachable(settings.public_url),
    }
    response = templates.TemplateResponse(request, "setup.html", body)
    response.set_cookie(STATE_COOKIE, state, max_age=3600, httponly=True, samesite="lax",
                        secure=settings.secure_cookies, path="/setup")
    return response


@router.get("/setup/callback")
async def setup_callback(request: Request, settings: SettingsDep, _: SetupAllowed,
                         code: str = "", state: str = "") -> Response:
    expected = request.cookies.get(STATE_COOKIE, "")
    if not code or not expected or not secrets.compare_digest(state, expected):
        return _problem(request, settings, "This setup link has expired or was opened in another "
                        "browser. Start again from the setup page.")
    try:
        answer = await run_in_threadpool(convert_manifest, settings, code)
    except GitHubAppError as exc:
        return _problem(request, settings, str(exc))
    values = stored_app.from_conversion(answer)
    install = manifest.install_url(answer.get("html_url") or "")
    log.info("GitHub App registered", app_id=values.get("app_id"), slug=values.get("app_slug"))
    if not settings.store_app_credentials:
        response = templates.TemplateResponse(request, "setup_done.html", {
            "settings": settings, "install": install, "slug": values.get("app_slug"),
            "lines": [_env_line(name, value) for name, value in values.items()],
        })
        response.headers["Cache-Control"] = "no-store"
    else:
        where = await run_in_threadpool(stored_app.save, settings.data_dir, values)
        log.info("App credentials stored", path=str(where))
        for name in (n for n in values if settings.from_environment(n)):
            log.warning("the environment wins over the new App's setting: GitHub's deliveries and "
                        "sign-ins may be refused until it is removed", setting=f"QWENFIX_{name.upper()}")
        request.app.state.settings = settings.current()
        logs.also_redact(request.app.state.settings.secrets())
        response = RedirectResponse(install, status_code=303)
    response.delete_cookie(STATE_COOKIE, path="/setup")
    return response


def _problem(request: Request, settings, message: str) -> HTMLResponse:
    return templates.TemplateResponse(request, "setup.html",
                                      {"error": message, "account": None, "settings": settings},
                                      status_code=400)


def _env_line(name: str, value: str) -> str:
    """One .env line; a multi-line value (the PEM key) quoted with \\n escapes."""
    return f"QWENFIX_{name.upper()}={json.dumps(value) if chr(10) in value else value}"
