"""The model behind an OpenAI-compatible endpoint (DashScope, vLLM, Ollama, …): the only module that
imports `openai`. Retries with backoff on 429/5xx come from the client; usage is recorded per call."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

import openai

from app.config import Settings


class ModelUnavailable(RuntimeError):
    """No endpoint configured, unreachable, or refusing our credentials."""


class ModelError(RuntimeError):
    """The endpoint answered with an error that retries did not cure."""


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: dict
    id: str | None = None  # set for native tool calls, which must be answered by id


@dataclass(frozen=True)
class ModelReply:
    text: str
    tool_calls: list[ToolCall] = field(default_factory=list)  # native ones only
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0


class ModelClient:
    def __init__(self, base_url: str, api_key: str, model: str, timeout_s: float = 120.0, max_retries: int = 3):
        if not base_url:
            raise ModelUnavailable("no model endpoint configured (QWENFIX_LLM_BASE_URL)")
        self.model = model
        self.base_url = base_url
        # local endpoints often need no key, but the client insists on one
        self._client = openai.OpenAI(base_url=base_url, api_key=api_key or "none", timeout=timeout_s, max_retries=max_retries)

    @classmethod
    def from_settings(cls, settings: Settings) -> ModelClient:
        return cls(settings.llm_base_url, settings.llm_api_key.get_secret_value(), settings.llm_model,
                   settings.llm_timeout_s, settings.llm_max_retries)

    def complete(self, messages: list[dict], tools: list[dict] | None = None, temperature: float = 0.0,
                 max_tokens: int | None = None) -> ModelReply:
        kwargs: dict = {"model": self.model, "messages": messages, "temperature": temperature}
        if tools:
            kwargs["tools"] = tools
        if max_tokens:
            kwargs["max_tokens"] = max_tokens
        started = time.monotonic()
        try:
            response = self._client.chat.completions.create(**kwargs)
        except (openai.APIConnectionError, openai.AuthenticationError, openai.PermissionDeniedError) as exc:
            raise ModelUnavailable(f"{type(exc).__name__}: {exc}") from exc
        except openai.APIStatusError as exc:
            raise ModelError(f"model endpoint answered {exc.status_code}") from exc
        latency = time.monotonic() - started
        message = response.choices[0].message if response.choices else None
        usage = response.usage
        calls = []
        for call in (message.tool_calls or []) if message else []:
            fn = getattr(call, "function", None)
            if fn is None:
                continue
            calls.append(ToolCall(fn.name, _arguments(fn.arguments), call.id))
        return ModelReply(
            text=(message.content or "") if message else "",
            tool_calls=calls,
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
            latency_s=latency,
        )

    def list_models(self) -> list[str]:
        try:
            return [m.id for m in self._client.models.list()]
        except openai.NotFoundError:
            return []  # some endpoints do not list models; reaching them is enough
        except (openai.APIConnectionError, openai.AuthenticationError) as exc:
            raise ModelUnavailable(f"{type(exc).__name__}: {exc}") from exc


def _arguments(raw: str | None) -> dict:
    try:
        value = json.loads(raw or "{}")
    except ValueError:
        return {"__unparsed__": raw or ""}
    return value if isinstance(value, dict) else {"__unparsed__": raw or ""}
