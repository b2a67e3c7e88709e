"""Who may use which route. Every route of the app names exactly one rule in its signature
(tests/app/test_access.py lists the routes from the app itself and fails on one without):

| rule | who |
| --- | --- |
| ``Public`` | anyone: webhooks (signed by GitHub), health probes, the sign-in pages |
| ``MetricsReader`` | a scraper sending ``Authorization: Bearer $QWENFIX_METRICS_TOKEN`` |
| ``SetupAllowed`` | anyone while no App is configured; afterwards admins only |
| ``SignedIn`` | a person signed in with GitHub (session cookie or personal API token) |
| ``ReadableJob`` | a signed-in person who may read the job's repository on GitHub, or an admin |
| ``WritableJob`` | a signed-in person with write permission on the job's repository (fresh from GitHub) |

Someone not signed in is sent to /login (pages) or gets 401 (API), whatever the URL names; a
signed-in person who may not see a job gets the same 404 as for a job that does not exist.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, FastAPI, Form, HTTPException, Request
from fastapi.routing import iter_route_contexts
from sqlalchemy.orm import Session

from app import sessions
from app.deps import SessionDep, SettingsDep
from app.permissions import Access, access_of
from core.config import Settings
from core.db.models import Job

NOT_FOUND = "Not Found"


class SignInRequired(Exception):
    """Nobody is signed in: pages redirect to /login, the API answers 401 (see app/main.py)."""


@dataclass(frozen=True)
class Viewer:
    login: str
    admin: bool
    session_key: str | None  # None when a personal API token authenticated the request
    csrf: str | None

    def access(self, session: Session, settings: Settings, fresh: bool = False) -> Access:
        return access_of(session, settings, self.login, fresh=fresh)

    def can_read(self, session: Session, settings: Settings, repo: str | None) -> bool:
        return self.admin or self.access(session, settings).can_read(repo)

    def visible_repos(self, session: Session, settings: Settings) -> list[str] | None:
        """Repositories whose jobs this person sees (None: all of them, for an admin)."""
        return None if self.admin else self.access(session, settings).readable


def _rule(name: str):
    def mark(function):
        function.access_rule = name
        return function
    return mark


def current_viewer(request: Request, settings: SettingsDep, session: SessionDep) -> Viewer | None:
    """The person behind the request: a personal API token (Bearer), else the session cookie."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        login = sessions.api_token_login(session, token.strip())
        return _viewer(settings, login, None) if login else None
    key = sessions.session_key(settings, request.cookies.get(sessions.SESSION_COOKIE))
    login = sessions.session_login(session, key) if key else None
    return _viewer(settings, login, key) if login else None


def _viewer(settings: Settings, login: str, key: str | None) -> Viewer:
    csrf = sessions.csrf_token(settings, key) if key else None
    return Viewer(login, login.lower() in settings.admin_logins, key, csrf)


MaybeViewer = Annotated[Viewer | None, Depends(current_viewer)]


@_rule("public")
def public() -> None:
    """Anyone may call this route."""


@_rule("metrics")
def metrics_reader(request: Request, settings: SettingsDep) -> None:
    expected = settings.metrics_token.get_secret_value()
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if not expected:
        raise HTTPException(401, "metrics are off: set QWENFIX_METRICS_TOKEN and send it as a "
                                 "bearer token", headers={"WWW-Authenticate": "Bearer"})
    if scheme.lower() != "bearer" or not secrets.compare_digest(token.strip(), expected):
        raise HTTPException(401, "send QWENFIX_METRICS_TOKEN as a bearer token",
                            headers={"WWW-Authenticate": "Bearer"})


@_rule("setup")
def setup_allowed(settings: SettingsDep, viewer: MaybeViewer) -> None:
    """The setup page: anyone while no App is configured, then admins only."""
    if not settings.app_configured:
        return
    if viewer is None:
        raise SignInRequired()
    if not viewer.admin:
        raise HTTPException(404, NOT_FOUND)


@_rule("signed_in")
def signed_in(viewer: MaybeViewer) -> Viewer:
    if viewer is None:
        raise SignInRequired()
    return viewer


@_rule("job_reader")
def readable_job(job_id: int, viewer: MaybeViewer, session: SessionDep, settings: SettingsDep) -> Job:
    if viewer is None:
        raise SignInRequired()
    job = session.get(Job, job_id)
    if job is None or not viewer.can_read(session, settings, job.repo):
        raise HTTPException(404, NOT_FOUND)  # the same answer whether or not it exists
    return job


@_rule("job_writer")
def writable_job(job_id: int, viewer: MaybeViewer, session: SessionDep, settings: SettingsDep,
                 csrf: Annotated[str | None, Form()] = None) -> tuple[Viewer, Job]:
    job = readable_job(job_id, viewer, session, settings)
    if viewer.session_key is not None and not sessions.csrf_ok(settings, viewer.session_key, csrf):
        raise HTTPException(403, "the form expired: reload the page and try again")
    if not viewer.access(session, settings, fresh=True).can_write(job.repo):
        raise HTTPException(403, f"you need write permission on {job.repo} for this")
    return viewer, job


def form_from_session(viewer: Viewer, settings: Settings, csrf: str | None) -> None:
    """A form posted by a signed-in page: its CSRF token must match the session."""
    if viewer.session_key is None or not sessions.csrf_ok(settings, viewer.session_key, csrf):
        raise HTTPException(403, "the form expired: reload the page and try again")


Public = Annotated[None, Depends(public)]
MetricsReader = Annotated[None, Depends(metrics_reader)]
SetupAllowed = Annotated[None, Depends(setup_allowed)]
SignedIn = Annotated[Viewer, Depends(signed_in)]
ReadableJob = Annotated[Job, Depends(readable_job)]
WritableJob = Annotated[tuple[Viewer, Job], Depends(writable_job)]


def route_rules(app: FastAPI) -> list[tuple[str, str, list[str]]]:
    """Every route of ``app`` as (method, path, the access rules it depends on)."""
    out = []
    for context in iter_route_contexts(app.routes):
        dependant = getattr(context.original_route, "dependant", None)
        found, pending = [], list(dependant.dependencies if dependant else [])
        while pending:
            dependency = pending.pop()
            name = getattr(dependency.call, "access_rule", None)
            if name:
                found.append(name)
            else:
                pending.extend(dependency.dependencies)
        for method in sorted(context.methods or {"*"}):
            out.append((method, context.path, found))
    return out
