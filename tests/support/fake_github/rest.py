"""Request and response plumbing every router shares: JSON bodies and GitHub's pagination."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import JSONResponse

from tests.support.fake_github.state import GitHubError, State


async def read_json(request: Request) -> Any:
    """The request's JSON body (None when empty); malformed JSON is GitHub's 400."""
    raw = await request.body()
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        raise GitHubError(400, "Problems parsing JSON") from None


def paginate(fake: State, request: Request, items: list[Any]) -> JSONResponse:
    """One page of ``items`` (``per_page``/``page``), with a ``Link: rel="next"`` when more."""
    per_page = max(1, min(100, int(request.query_params.get("per_page", 30))))
    page = max(1, int(request.query_params.get("page", 1)))
    chunk = items[(page - 1) * per_page: page * per_page]
    headers = {}
    if page * per_page < len(items):
        query = dict(request.query_params)
        query.update({"page": str(page + 1), "per_page": str(per_page)})
        raw = request.scope.get("fake_github.raw_path") or request.url.path
        headers["Link"] = f'<{fake.server_url}{raw}?{urlencode(query)}>; rel="next"'
    return JSONResponse(chunk, headers=headers)


def paged_object(fake: State, request: Request, key: str, items: list[Any]) -> JSONResponse:
    """Like :func:`paginate`, wrapped as ``{"total_count": N, key: [...]}``."""
    resp = paginate(fake, request, items)
    chunk = json.loads(resp.body)
    headers = {k: v for k, v in resp.headers.items() if k.lower() == "link"}
    return JSONResponse({"total_count": len(items), key: chunk}, headers=headers)
