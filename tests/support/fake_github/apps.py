"""The app's own endpoints, authenticated by its JWT: ``GET /app``, its installations (listed,
one by one; a suspended one says since when), and the exchange of the JWT for a ``ghs_``
installation access token (optionally narrowed to ``repositories``/``repository_ids``; 403 for a
suspended installation). With an installation token: ``GET /installation/repositories``.
Unauthenticated: ``GET /versions``, the REST API versions the server supports."""

from __future__ import annotations

import json
import secrets
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from tests.support.fake_github.auth import installation_token, verify_app_jwt
from tests.support.fake_github.rest import paged_object, paginate, read_json
from tests.support.fake_github.shapes import app_json, repo_json, user_json
from tests.support.fake_github.state import (
    APP_EVENTS,
    APP_PERMISSIONS,
    CREATED_AT,
    GitHubError,
    State,
    Token,
    stable_id,
)

if TYPE_CHECKING:
    from tests.support.fake_github.fake import FakeGitHub

_NOT_ACCESSIBLE = ("There is at least one repository that does not exist or is not accessible "
                   "to the parent installation.")


def installation_json(fake: State, inst: dict[str, Any]) -> dict[str, Any]:
    iid = inst["id"]
    return {
        "id": iid,
        "account": user_json(fake, inst["account"], inst["account_type"]),
        "repository_selection": inst["repository_selection"],
        "access_tokens_url": fake.api(f"/app/installations/{iid}/access_tokens"),
        "repositories_url": fake.api("/installation/repositories"),
        "html_url": fake.html(f"/organizations/{inst['account']}/settings/installations/{iid}"),
        "app_id": fake.app_id, "app_slug": fake.app_slug,
        "target_id": stable_id("user:" + inst["account"]),
        "target_type": inst["account_type"], "permissions": dict(APP_PERMISSIONS),
        "events": list(APP_EVENTS), "created_at": CREATED_AT, "updated_at": CREATED_AT,
        "single_file_name": None, "has_multiple_single_files": False,
        "single_file_paths": [],
        "suspended_by": user_json(fake, inst["account"]) if inst.get("suspended_at") else None,
        "suspended_at": inst.get("suspended_at"),
    }


def router(fake: FakeGitHub) -> APIRouter:
    api = APIRouter()

    @api.get("/app")
    async def get_app(request: Request):
        verify_app_jwt(fake, request)
        return app_json(fake)

    @api.get("/versions")
    async def versions():
        if fake.api_versions is not None and "2026-03-10" not in fake.api_versions:
            raise GitHubError(404, "Not Found")  # an Enterprise Server from before /versions
        return fake.api_versions or ["2022-11-28", "2026-03-10"]

    @api.get("/app/installations")
    async def list_installations(request: Request):
        verify_app_jwt(fake, request)
        items = [installation_json(fake, inst) for _, inst in sorted(fake.installations.items())]
        return paginate(fake, request, items)

    @api.get("/installation/repositories")
    async def installation_repositories(request: Request):
        t = installation_token(fake, request)
        names = sorted(n for n, r in fake.repos.items() if r.installation_id == t.installation_id
                       and (t.repositories is None or n in t.repositories))
        resp = paged_object(fake, request, "repositories", [repo_json(fake, n) for n in names])
        body = json.loads(resp.body)
        body["repository_selection"] = fake.installations[t.installation_id]["repository_selection"]
        return JSONResponse(body, headers={k: v for k, v in resp.headers.items()
                                           if k.lower() == "link"})

    @api.get("/app/installations/{iid}")
    async def get_installation(iid: int, request: Request):
        verify_app_jwt(fake, request)
        inst = fake.installations.get(iid)
        if inst is None:
            raise GitHubError(404, "Not Found")
        return installation_json(fake, inst)

    @api.post("/app/installations/{iid}/access_tokens", status_code=201)
    async def create_token(iid: int, request: Request):
        verify_app_jwt(fake, request)
        inst = fake.installations.get(iid)
        if inst is None:
            raise GitHubError(404, "Not Found")
        if inst.get("suspended_at"):
            raise GitHubError(403, "This installation has been suspended")
        body = await read_json(request) or {}
        owned = {n: r for n, r in fake.repos.items() if r.installation_id == iid}
        repositories: list[str] | None = None
        if body.get("repositories") or body.get("repository_ids"):
            repositories = []
            for name in body.get("repositories") or []:
                full = name if "/" in name else f"{inst['account']}/{name}"
                if full not in owned:
                    raise GitHubError(422, _NOT_ACCESSIBLE)
                repositories.append(full)
            for rid in body.get("repository_ids") or []:
                match = [n for n, r in owned.items() if r.id == rid]
                if not match:
                    raise GitHubError(422, _NOT_ACCESSIBLE)
                repositories.extend(match)
        permissions = dict(body.get("permissions") or APP_PERMISSIONS)
        token = "ghs_" + secrets.token_urlsafe(27).replace("-", "a").replace("_", "b")[:36]
        expires = time.time() + fake.token_ttl
        with fake.lock:
            fake.tokens[token] = Token(token, iid, expires, repositories, permissions, body)
        out: dict[str, Any] = {
            "token": token,
            "expires_at": datetime.fromtimestamp(expires, timezone.utc).strftime(
                "%Y-%m-%dT%H:%M:%SZ"),
            "permissions": permissions,
            "repository_selection": "selected" if repositories is not None else
            inst["repository_selection"],
        }
        if repositories is not None:
            out["repositories"] = [repo_json(fake, n) for n in repositories]
        return JSONResponse(out, status_code=201)

    return api
