"""Structured logging (structlog) with delivery/job ids bound per request or job, secrets redacted."""

from __future__ import annotations

import logging
import sys

import structlog

_secrets: list[str] = []


def redact(text: str, secrets: list[str] | None = None) -> str:
    for secret in secrets if secrets is not None else _secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return text


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


def get_logger(name: str = "qwenfix"):
    return structlog.get_logger(name)
