"""The fake's ASGI app and the thread that serves it.

``build_app`` puts every area's router on one FastAPI app (anything else is GitHub's 404 JSON)
and wraps it in an outer layer that, for each request: hands ``/git/...`` to the smart-HTTP
mount, strips the Enterprise ``/api/v3`` prefix, records the request in ``fake.requests`` (with
the status answered), and answers a fault queued by ``fail_next`` before any auth. ``serve``
runs the app with uvicorn on 127.0.0.1 (``ServerThread``, which sets TCP_NODELAY).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from starlette.exceptions import HTTPException as StarletteHTTPException

from tests.support.fake_github import actions, apps, checks, hooks, issues, pulls, repos, users
from tests.support.fake_github.git import ASGIApp, git_mount
from tests.support.fake_github.state import ENTERPRISE_PREFIX, GitHubError, RecordedRequest
from tests.support.git_http import Receive, Scope, Send, ServerThread

if TYPE_CHECKING:
    from tests.support.fake_github.fake import FakeGitHub

AREAS = (apps, hooks, users, repos, pulls, issues, checks, actions)  # routers, in matching order
WEB_PAGES = ("/login/", "/settings/", "/organizations/", "/_downloads/")  # not the REST API


def build_app(fake: FakeGitHub) -> ASGIApp:
    api = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    for area in AREAS:
        api.include_router(area.router(fake))

    # everything else: GitHub's 404, recorded by the outer layer
    @api.api_route("/{rest:path}", methods=["GET", "POST", "PATCH", "PUT", "DELETE"])
    async def not_found(rest: str):
        raise GitHubError(404, "Not Found")

    @api.exception_handler(GitHubError)
    async def _gh_error(request: Request, exc: GitHubError):
        return exc.response()

    @api.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        if exc.status_code in (404, 405):
            return GitHubError(404, "Not Found").response()
        return GitHubError(exc.status_code, str(exc.detail)).response()

    git = git_mount(fake)

    async def outer(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await api(scope, receive, send)
        path = scope["path"]
        if path.startswith("/git/"):
            return await git(scope, receive, send)
        raw = path
        if path == ENTERPRISE_PREFIX or path.startswith(ENTERPRISE_PREFIX + "/"):
            path = path[len(ENTERPRISE_PREFIX):] or "/"
            scope = dict(scope, path=path, raw_path=path.encode())
        scope = dict(scope)
        scope["fake_github.raw_path"] = raw
        body = await _read_body(receive)
        record = _record(scope, path, raw, body)
        with fake.lock:
            fake.requests.append(record)

        budget: dict[str, str] = {}

        async def status_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                record.status = message["status"]
                if budget:
                    message = dict(message, headers=[*message.get("headers", []),
                                                     *((k.encode(), v.encode()) for k, v in budget.items())])
            await send(message)

        failure = fake.take_failure(record.method, path)
        if failure is not None:
            resp = GitHubError(failure["status"], failure["message"],
                               headers=failure["headers"]).response()
            return await resp(scope, receive, status_send)

        refused = _unsupported_version(fake, path, record.headers)
        if refused is not None:
            return await refused(scope, receive, status_send)
        token = fake.valid_token(record.token)
        if token is not None:  # an installation's request: counted against its hour, like GitHub
            spent = fake.spend(token.installation_id)
            if spent is None:
                with fake.lock:
                    left = dict(fake.rate_limits[token.installation_id])
                resp = GitHubError(403, f"API rate limit exceeded for installation ID {token.installation_id}.",
                                   headers={"x-ratelimit-limit": str(left["limit"]), "x-ratelimit-remaining": "0",
                                            "x-ratelimit-used": str(left["used"]),
                                            "x-ratelimit-reset": str(left["reset"]),
                                            "x-ratelimit-resource": "core"}).response()
                return await resp(scope, receive, status_send)
            budget.update(spent)

        sent = False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return {"type": "http.disconnect"}

        await api(scope, replay, status_send)

    return outer


def _unsupported_version(fake: FakeGitHub, path: str, headers: dict[str, str]):
    """GitHub Enterprise Server that knows only ``fake.api_versions``: any other
    ``X-GitHub-Api-Version`` is a 400 (no header means the server's default, as on GitHub)."""
    asked = headers.get("x-github-api-version")
    if fake.api_versions is None or asked is None or asked in fake.api_versions:
        return None
    if path.startswith(WEB_PAGES):
        return None
    return GitHubError(400, f"Unsupported 'X-GitHub-Api-Version' header value: {asked!r}. "
                            f"Supported versions: {', '.join(fake.api_versions)}.").response()


async def _read_body(receive: Receive) -> bytes:
    body = b""
    while True:
        message = await receive()
        if message["type"] == "http.request":
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        else:
            break
    return body


def _record(scope: Scope, path: str, raw: str, body: bytes) -> RecordedRequest:
    headers = {k.decode("latin-1").lower(): v.decode("latin-1")
               for k, v in scope.get("headers", [])}
    try:
        parsed = json.loads(body) if body else None
    except ValueError:
        parsed = None
    return RecordedRequest(
        method=scope["method"], path=path,
        query=dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"))),
        json=parsed, headers=headers, raw_path=raw, body=body,
    )


def serve(fake: FakeGitHub) -> ServerThread:
    """Serve ``fake.app`` on 127.0.0.1 in a thread and point ``fake.url``/``server_url`` at it."""
    thread = ServerThread(fake.app).start()
    fake.server_url = thread.url
    fake.url = thread.url
    return thread
