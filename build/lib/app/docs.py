"""The API's interactive documentation and OpenAPI schema, for signed-in people only."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse

from app.access import SignedIn

router = APIRouter(include_in_schema=False)


@router.get("/openapi.json")
def openapi_schema(request: Request, _: SignedIn) -> JSONResponse:
    return JSONResponse(request.app.openapi())


@router.get("/docs")
def api_docs(_: SignedIn) -> HTMLResponse:
    return get_swagger_ui_html(openapi_url="/openapi.json", title="qwenfix API")
