"""The dashboard's Jinja environment (templates beside this module, autoescaped) and the one way
pages are rendered: with the signed-in person, whose CSRF token every form carries."""

from __future__ import annotations

from pathlib import Path

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


def render(request: Request, template: str, viewer=None, status_code: int = 200,
           headers: dict | None = None, **context) -> HTMLResponse:
    return templates.TemplateResponse(request, template, {"viewer": viewer, **context},
                                      status_code=status_code, headers=headers)
