"""The App's webhook as GitHub runs it: deliveries sent (signed, ``X-GitHub-Delivery`` = the event's
GUID) to ``fake.webhook_url`` and logged with how they ended, and the delivery log's REST routes,
authenticated by the app's JWT:

- ``GET /app/hook/deliveries`` — ``hook-delivery-item`` objects, newest first; ``per_page`` (≤ 100),
  an opaque ``cursor`` and a ``Link: rel="next"`` header, ``status=success|failure``;
- ``GET /app/hook/deliveries/{id}`` — one ``hook-delivery`` with its request and response;
- ``POST /app/hook/deliveries/{id}/attempts`` — 202 ``{}``; the event is sent again (same GUID,
  ``redelivery: true``) right after the answer, like GitHub does it.

A delivery's ``status`` is "OK" for a 2xx answer, ``Invalid HTTP Response: <code>`` for any other,
and "failed to connect to host" (``status_code`` 0) when nothing listens.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import threading
import time
import uuid
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from tests.support.fake_github.auth import verify_app_jwt
from tests.support.fake_github.state import GitHubError, State

if TYPE_CHECKING:
    from tests.support.fake_github.fake import FakeGitHub


def send(fake: State, event: str, payload: dict[str, Any], guid: str | None = None,
         redelivery: bool = False) -> dict[str, Any]:
    """Deliver one event to ``fake.webhook_url`` as GitHub does, and log the attempt. Returns it."""
    guid = guid or str(uuid.uuid4())
    body = json.dumps(payload).encode()
    headers = {
        "Accept": "*/*",
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/fake",
        "X-GitHub-Delivery": guid,
        "X-GitHub-Event": event,
        "X-GitHub-Hook-ID": str(fake.hook_id),
        "X-GitHub-Hook-Installation-Target-ID": str(fake.app_id),
        "X-GitHub-Hook-Installation-Target-Type": "integration",
        "X-Hub-Signature-256": "sha256=" + hmac.new(fake.webhook_secret.encode(), body, hashlib.sha256).hexdigest(),
    }
    started = time.monotonic()
    try:
        answer = httpx.post(fake.webhook_url, content=body, headers=headers, timeout=10)
        status_code, answer_headers, answer_body = answer.status_code, dict(answer.headers), answer.text
        status = "OK" if 200 <= status_code < 300 else f"Invalid HTTP Response: {status_code}"
    except httpx.TimeoutException:
        status_code, answer_headers, answer_body, status = 0, {}, "", "timed out"
    except httpx.HTTPError:
        status_code, answer_headers, answer_body, status = 0, {}, "", "failed to connect to host"
    attempt = {
        "id": fake.next_id(), "guid": guid,
        "delivered_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "redelivery": redelivery, "duration": round(time.monotonic() - started, 2),
        "status": status, "status_code": status_code, "event": event,
        "action": payload.get("action") if isinstance(payload.get("action"), str) else None,
        "installation_id": (payload.get("installation") or {}).get("id"),
        "repository_id": (payload.get("repository") or {}).get("id"),
        "throttled_at": None,
        "url": fake.webhook_url,
        "request": {"headers": headers, "payload": payload},
        "response": {"headers": answer_headers, "payload": answer_body},
    }
    with fake.lock:
        fake.hook_deliveries.append(attempt)
    return item_json(attempt)


def item_json(attempt: dict[str, Any]) -> dict[str, Any]:
    """``hook-delivery-item``: the attempt without its request and response."""
    return {k: v for k, v in attempt.items() if k not in ("request", "response", "url")}


def router(fake: FakeGitHub) -> APIRouter:
    api = APIRouter()

    @api.get("/app/hook/deliveries")
    async def list_deliveries(request: Request):
        verify_app_jwt(fake, request)
        q = request.query_params
        try:
            per_page = max(1, min(100, int(q.get("per_page", 30))))
        except ValueError:
            raise GitHubError(400, "per_page must be an integer") from None
        cursor = q.get("cursor")
        with fake.lock:
            newest_first = sorted(fake.hook_deliveries, key=lambda a: a["id"], reverse=True)
        if q.get("status") in ("success", "failure"):
            ok = q["status"] == "success"
            newest_first = [a for a in newest_first if (a["status"] == "OK") == ok]
        if cursor:
            if not cursor.startswith("v1_") or not cursor[3:].isdigit():
                raise GitHubError(422, "Invalid cursor")
            newest_first = [a for a in newest_first if a["id"] < int(cursor[3:])]
        page = newest_first[:per_page]
        headers = {}
        if len(newest_first) > per_page:
            query = {k: v for k, v in q.items() if k != "cursor"}
            query.update({"per_page": str(per_page), "cursor": f"v1_{page[-1]['id']}"})
            raw = request.scope.get("fake_github.raw_path") or request.url.path
            headers["Link"] = f'<{fake.server_url}{raw}?{urlencode(query)}>; rel="next"'
        return JSONResponse([item_json(a) for a in page], headers=headers)

    @api.get("/app/hook/deliveries/{delivery_id}")
    async def get_delivery(delivery_id: int, request: Request):
        verify_app_jwt(fake, request)
        return copy.deepcopy(_find(fake, delivery_id))

    @api.post("/app/hook/deliveries/{delivery_id}/attempts", status_code=202)
    async def redeliver(delivery_id: int, request: Request):
        verify_app_jwt(fake, request)
        attempt = _find(fake, delivery_id)
        event, payload = attempt["event"], attempt["request"]["payload"]
        threading.Thread(target=send, args=(fake, event, payload, attempt["guid"], True), daemon=True).start()
        return JSONResponse({}, status_code=202)

    return api


def _find(fake: State, delivery_id: int) -> dict[str, Any]:
    with fake.lock:
        for attempt in fake.hook_deliveries:
            if attempt["id"] == delivery_id:
                return attempt
    raise GitHubError(404, "Not Found")
