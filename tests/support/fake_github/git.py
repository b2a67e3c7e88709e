"""Git over smart HTTP at ``/git/owner/repo.git``: the real ``git http-backend`` of
``tests.support.git_http`` behind installation-token auth (Basic ``x-access-token:<token>``). A
valid token that does not reach the repository gets GitHub's 404 "Repository not found."."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi.responses import PlainTextResponse

from tests.support.fake_github.state import State
from tests.support.git_http import Receive, Scope, Send, git_http_app, token_from_authorization

ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def git_mount(fake: State) -> ASGIApp:
    """The ASGI app serving every path under ``/git/`` (requests land in ``fake.git_requests``)."""

    def authorize(token: str | None) -> bool:
        return fake.valid_token(token) is not None

    backend = git_http_app(fake.repos_root, authorize, on_request=fake.git_requests.append)

    async def serve(scope: Scope, receive: Receive, send: Send) -> None:
        parts = scope["path"].split("/")
        token = None
        for k, v in scope.get("headers", []):
            if k.lower() == b"authorization":
                token = token_from_authorization(v.decode("latin-1"))
        if len(parts) >= 4 and parts[3].endswith(".git") and token:
            full = f"{parts[2]}/{parts[3][:-4]}"
            t = fake.valid_token(token)
            r = fake.repos.get(full)
            if t is not None and (
                r is None or r.installation_id != t.installation_id
                or (t.repositories is not None and full not in t.repositories)
            ):
                resp = PlainTextResponse("Repository not found.\n", status_code=404)
                return await resp(scope, receive, send)
        await backend(dict(scope, root_path="/git"), receive, send)

    return serve
