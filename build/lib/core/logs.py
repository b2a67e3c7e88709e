"""Structured logging (structlog) with delivery/job ids bound per request or job, secrets redacted."""

from __future__ import annotations

import base64
import logging
import re
import sys

import structlog

_secrets: list[str] = []


_AUTH_RE = re.compile(r"(?i)(authorization:\s*(?:basic|bearer|token)\s+)\S+")
_USERINFO_RE = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/@\s]+@")


def _secret_forms(secret: str) -> list[str]:
    """The secret and the base64 forms git's Authorization header carries it in."""
    forms = {secret, base64.b64encode(f"x-access-token:{secret}".encode()).decode("ascii"),
             base64.b64encode(secret.encode()).decode("ascii")}
    return sorted(forms, key=len, reverse=True)


def redact(text: str, secrets: list[str | None] | None = None) -> str:
    """``text`` without the given secrets (by default the process's configured ones), in raw and
    base64 forms, nor any Authorization header value or URL userinfo."""
    for secret in secrets if secrets is not None else _secrets:
        if secret:
            for form in _secret_forms(secret):
                text = text.replace(form, "[redacted]")
    text = _AUTH_RE.sub(r"\1[redacted]", text)
    return _USERINFO_RE.sub(r"\1[redacted]@", text)


def _redact_event(_logger, _name, event_dict):
    return {key: redact(value) if isinstance(value, str) else value for key, value in event_dict.items()}


def configure(level: str = "INFO", json: bool = False, secrets: list[str] | None = None) -> None:
    _secrets[:] = [s for s in secrets or [] if s]
    logging.basicConfig(stream=sys.stderr, level=level.upper(), format="%(message)s", force=True)
    renderer = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            _redact_event,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


def also_redact(secrets: list[str]) -> None:
    """Secrets learnt while running (setup stored the App's): redacted from now on too."""
    _secrets.extend(s for s in secrets if s and s not in _secrets)


def get_logger(name: str = "qwenfix"):
    return structlog.get_logger(name)
