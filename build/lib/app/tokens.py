"""Personal API tokens, made and revoked on the dashboard: `Authorization: Bearer qwf_...` on the
JSON API acts as the person who made it, seeing what they may see."""

from __future__ import annotations

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from app import sessions
from app.access import SignedIn, form_from_session
from app.dashboard.render import render
from app.deps import SessionDep, SettingsDep

router = APIRouter()


@router.get("/tokens", response_class=HTMLResponse)
def tokens_page(request: Request, session: SessionDep, viewer: SignedIn):
    return render(request, "tokens.html", viewer=viewer, tokens=sessions.api_tokens_of(session, viewer.login))


@router.post("/tokens", response_class=HTMLResponse)
def create_token(request: Request, settings: SettingsDep, session: SessionDep, viewer: SignedIn,
                 name: str = Form(""), csrf: str | None = Form(None)):
    form_from_session(viewer, settings, csrf)
    row, token = sessions.create_api_token(session, viewer.login, name)
    session.commit()
    page = render(request, "tokens.html", viewer=viewer, created=token, created_name=row.name,
                  tokens=sessions.api_tokens_of(session, viewer.login))
    page.headers["Cache-Control"] = "no-store"
    return page


@router.post("/tokens/{token_id}/revoke")
def revoke_token(settings: SettingsDep, session: SessionDep, viewer: SignedIn, token_id: int,
                 csrf: str | None = Form(None)):
    form_from_session(viewer, settings, csrf)
    if not sessions.revoke_api_token(session, viewer.login, token_id):
        raise HTTPException(404, "Not Found")
    session.commit()
    return RedirectResponse("/tokens", status_code=303)
