"""Sign in with GitHub (the App's own OAuth web flow) and sign out.

/login shows the button; /auth/github sends the browser to GitHub with a fresh `state`; GitHub sends
it back to /auth/callback, where the state is checked, the code redeemed for the person's
user-to-server token (kept encrypted, app/sessions.py) and a session cookie set.
"""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from app import permissions, sessions
from app.access import Public, SignedIn, form_from_session
from app.dashboard.render import render
from app.deps import SessionDep, SettingsDep
from core.github import SignInError, sign_in
from core.logs import get_logger

router = APIRouter()
log = get_logger("qwenfix.auth")


def _callback_url(settings) -> str:
    return settings.public_url.rstrip("/") + "/auth/callback"


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, settings: SettingsDep, _: Public, next: str = "/"):
    if not settings.app_configured:
        return RedirectResponse("/setup", status_code=303)
    problem = None
    if not settings.client_id or not settings.client_secret.get_secret_value():
        problem = ("Signing in needs the App's client id and secret: register the App from the "
                   "setup page, or set QWENFIX_CLIENT_ID and QWENFIX_CLIENT_SECRET.")
    start = "/auth/github?" + urlencode({"next": sessions.safe_next(next)})
    return render(request, "login.html", problem=problem, start=start)


@router.get("/auth/github")
def start_sign_in(settings: SettingsDep, _: Public, next: str = "/") -> Response:
    response = RedirectResponse("", status_code=303)
    state = sessions.start_sign_in(settings, response, sessions.safe_next(next))
    query = urlencode({"client_id": settings.client_id, "redirect_uri": _callback_url(settings),
                       "state": state})
    response.headers["location"] = f"{settings.github_web_url}/login/oauth/authorize?{query}"
    return response


@router.get("/auth/callback")
async def finish_sign_in(request: Request, settings: SettingsDep, session: SessionDep, _: Public,
                         code: str = "", state: str = "") -> Response:
    next_path = sessions.finish_sign_in(settings, request.cookies.get(sessions.STATE_COOKIE), state)
    if next_path is None or not code:
        return render(request, "login.html", status_code=400, start="/auth/github",
                      problem="This sign-in link expired or was opened in another browser. Sign in again.")
    try:
        user, credentials = await run_in_threadpool(sign_in, settings, code, _callback_url(settings))
    except SignInError as exc:
        return render(request, "login.html", status_code=400, start="/auth/github", problem=str(exc))
    response = RedirectResponse(next_path, status_code=303)
    await run_in_threadpool(sessions.create_session, session, settings, response, user, credentials)
    session.commit()  # the next page, right after this redirect, must find the session
    permissions.forget(user.login)
    response.delete_cookie(sessions.STATE_COOKIE, path="/")
    log.info("signed in", login=user.login)
    return response


@router.post("/logout")
def sign_out(settings: SettingsDep, session: SessionDep, viewer: SignedIn,
             csrf: str | None = Form(None)) -> Response:
    form_from_session(viewer, settings, csrf)
    sessions.end_session(session, viewer.session_key)
    session.commit()
    permissions.forget(viewer.login)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(sessions.SESSION_COOKIE, path="/")
    return response
