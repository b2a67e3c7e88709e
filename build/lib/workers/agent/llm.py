"""The model behind an OpenAI-compatible endpoint (DashScope, vLLM, Ollama, …): the only module that
imports `openai`.

Retries: the openai client itself retries connection errors, 408, 409, 429 and 5xx with exponential
backoff (honouring Retry-After) up to ``max_retries`` times; what is left after that becomes
`ModelUnavailable` (cannot reach or use the endpoint) or `ModelError` (it answered with an error).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from typing import Protocol

import openai

from core.config import Settings
from core.tls import tls_context


class ModelUnavailable(RuntimeError):
    """No endpoint configured, unreachable, timing out, or refusing our credentials."""


class ModelError(RuntimeError):
    """The endpoint answered with an error that retries did not cure."""


class OverBudget(ModelUnavailable):
    """A spending limit refused the request before it was sent (the message says which)."""


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: dict
    id: str | None = None  # set for native tool calls, which must be answered by id


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0  # cached ones included, as the endpoints report them
    completion_tokens: int = 0
    cached_tokens: int = 0  # of the prompt tokens, those the endpoint served from its prefix cache
    estimated: bool = False  # the endpoint reported no usage: counted from the text's length

    @property
    def total(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.prompt_tokens + other.prompt_tokens, self.completion_tokens + other.completion_tokens,
                     self.cached_tokens + other.cached_tokens, self.estimated or other.estimated)


@dataclass(frozen=True)
class ModelReply:
    text: str
    tool_calls: list[ToolCall] = field(default_factory=list)  # native ones only
    usage: Usage = Usage()
    latency_s: float = 0.0

    @property
    def prompt_tokens(self) -> int:
        return self.usage.prompt_tokens

    @property
    def completion_tokens(self) -> int:
        return self.usage.completion_tokens

    @property
    def cached_tokens(self) -> int:
        return self.usage.cached_tokens


class Meter(Protocol):
    """Watches a job's model requests: may refuse one before it is sent (raising OverBudget), and
    hears of each one answered, with the request as sent and the usage reported."""

    def before_request(self, model: str) -> None: ...

    def after_request(self, model: str, request: dict, reply: ModelReply) -> None: ...


class ModelClient:
    """One model on one endpoint. ``complete`` is safe to call from several threads at once."""

    def __init__(self, base_url: str, api_key: str, model: str, timeout_s: float = 120.0, max_retries: int = 3):
        if not base_url:
            raise ModelUnavailable("no model endpoint configured (set QWENFIX_LLM_BASE_URL)")
        self.model = model
        self.base_url = base_url
        self.meter: Meter | None = None
        # local endpoints often need no key, but the client insists on one
        self._client = openai.OpenAI(base_url=base_url, api_key=api_key or "none", timeout=timeout_s,
                                     max_retries=max_retries,
                                     http_client=openai.DefaultHttpxClient(verify=tls_context()))

    @classmethod
    def from_settings(cls, settings: Settings) -> ModelClient:
        return cls(settings.llm_base_url, settings.llm_api_key.get_secret_value(), settings.llm_model,
                   settings.llm_timeout_s, settings.llm_max_retries)

    def metered(self, meter: Meter) -> ModelClient:
        """The same model and connection, each request watched by ``meter``."""
        clone = object.__new__(ModelClient)
        clone.__dict__.update(self.__dict__, meter=meter)
        return clone

    def complete(self, messages: list[dict], tools: list[dict] | None = None, temperature: float = 0.0,
                 max_tokens: int | None = None) -> ModelReply:
        kwargs: dict = {"model": self.model, "messages": messages, "temperature": temperature}
        if tools:
            kwargs["tools"] = tools
        if max_tokens:
            kwargs["max_tokens"] = max_tokens
        if self.meter is not None:
            self.meter.before_request(self.model)
        reply = self._complete(kwargs)
        if self.meter is not None:
            self.meter.after_request(self.model, kwargs, reply)
        return reply

    def _complete(self, kwargs: dict) -> ModelReply:
        started = time.monotonic()
        try:
            response = self._client.chat.completions.create(**kwargs)
        except (openai.APIConnectionError, openai.AuthenticationError, openai.PermissionDeniedError) as exc:
            raise ModelUnavailable(f"{type(exc).__name__}: {exc}") from exc
        except openai.APIStatusError as exc:
            raise ModelError(f"model endpoint answered {exc.status_code}: {_message(exc)}") from exc
        except openai.OpenAIError as exc:  # malformed answers and the like
            raise ModelError(f"{type(exc).__name__}: {exc}") from exc
        latency = time.monotonic() - started
        message = response.choices[0].message if response.choices else None
        calls = []
        for call in (message.tool_calls or []) if message else []:
            fn = getattr(call, "function", None)
            if fn is not None:
                calls.append(ToolCall(fn.name, _arguments(fn.arguments), call.id))
        reply = ModelReply(text=(message.content or "") if message else "", tool_calls=calls, latency_s=latency)
        return replace(reply, usage=_usage(response.usage, kwargs, reply))

    def list_models(self) -> list[str]:
        """The endpoint's models; [] when it does not list them (reaching it is enough)."""
        try:
            return [m.id for m in self._client.models.list()]
        except (openai.NotFoundError, openai.UnprocessableEntityError):
            return []
        except (openai.APIConnectionError, openai.AuthenticationError, openai.PermissionDeniedError) as exc:
            raise ModelUnavailable(f"{type(exc).__name__}: {exc}") from exc
        except openai.APIStatusError as exc:
            raise ModelUnavailable(f"model endpoint answered {exc.status_code}") from exc


def _usage(reported, request: dict, reply: ModelReply) -> Usage:
    """The usage the endpoint reported (`prompt_tokens_details.cached_tokens` from OpenAI, DashScope,
    vLLM with prefix caching; absent on endpoints that do not cache); only when it reports none,
    about 4 characters a token."""
    if reported is not None:
        details = getattr(reported, "prompt_tokens_details", None)
        cached = getattr(details, "cached_tokens", None) or 0
        return Usage(reported.prompt_tokens or 0, reported.completion_tokens or 0, cached)
    answer = reply.text + json.dumps([c.arguments for c in reply.tool_calls])
    return Usage(len(json.dumps(request.get("messages", []))) // 4, len(answer) // 4 + 1, 0, estimated=True)


def _message(exc: openai.APIStatusError) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    return str(body.get("message") or exc.message)[:300]


def _arguments(raw: str | None) -> dict:
    """Native arguments are a JSON string; anything else is kept for the toolbox to explain."""
    try:
        value = json.loads(raw or "{}")
    except ValueError:
        return {"__unparsed__": raw or ""}
    return value if isinstance(value, dict) else {"__unparsed__": raw or ""}


def model_client(settings: Settings) -> ModelClient | None:
    """The operator's model endpoint, or None when none is configured."""
    return ModelClient.from_settings(settings) if settings.llm_base_url else None
