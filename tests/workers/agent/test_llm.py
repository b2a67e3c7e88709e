"""The model client: the real openai client against the scripted OpenAI-compatible server."""

from __future__ import annotations

import pytest

from core.config import Settings
from tests.support.fake_openai import call, error, raw_call, text
from workers.agent.llm import ModelClient, ModelError, ModelUnavailable, ToolCall

MESSAGES = [{"role": "user", "content": "hi"}]


def client_for(fake_model, **kwargs) -> ModelClient:
    return ModelClient(fake_model.base_url, "sk-test-key-000000", "qwen3-coder-test",
                       timeout_s=kwargs.pop("timeout_s", 10), max_retries=kwargs.pop("max_retries", 2))


def test_complete_returns_text_native_calls_usage_and_latency(fake_model):
    fake_model.script([call("read_file", path="a.py")])
    reply = client_for(fake_model).complete(MESSAGES, tools=[], temperature=0.2, max_tokens=100)
    assert reply.tool_calls[0].name == "read_file" and reply.tool_calls[0].arguments == {"path": "a.py"}
    assert reply.tool_calls[0].id.startswith("call_")
    assert reply.usage.prompt_tokens > 0 and reply.usage.completion_tokens > 0 and reply.latency_s > 0
    body = fake_model.chat_requests()[0].body
    assert body["temperature"] == 0.2 and body["max_tokens"] == 100 and "tools" not in body


def test_cached_prompt_tokens_are_read_from_the_usage_details(fake_model):
    fake_model.script([text("one"), text("two")])
    client = client_for(fake_model)
    first = client.complete(MESSAGES)
    second = client.complete(MESSAGES + [{"role": "assistant", "content": "one"}, {"role": "user", "content": "go"}])
    assert first.usage.cached_tokens == 0
    assert 0 < second.usage.cached_tokens < second.usage.prompt_tokens  # the first request's prompt, served again
    assert (first.usage + second.usage).cached_tokens == second.usage.cached_tokens
    fake_model.prefix_cache = False  # an endpoint that reports no cache: counted as none
    assert client.complete(MESSAGES).usage.cached_tokens == 0


def test_a_429_then_a_200_is_retried_by_the_client(fake_model):
    fake_model.script([error(429), text("hello")])
    reply = client_for(fake_model).complete(MESSAGES)
    assert reply.text == "hello" and reply.tool_calls == []
    assert len(fake_model.chat_requests()) == 2


def test_5xx_beyond_the_retries_is_a_model_error(fake_model):
    fake_model.script([error(502, times=None)])
    with pytest.raises(ModelError, match="502"):
        client_for(fake_model, max_retries=1).complete(MESSAGES)
    assert len(fake_model.chat_requests()) == 2


def test_refused_credentials_and_unreachable_endpoints_are_unavailable(fake_model):
    fake_model.script([error(401, times=None)])
    with pytest.raises(ModelUnavailable, match="AuthenticationError"):
        client_for(fake_model).complete(MESSAGES)
    with pytest.raises(ModelUnavailable, match="APIConnectionError"):
        ModelClient("http://127.0.0.1:1/v1", "k", "m", timeout_s=2, max_retries=0).complete(MESSAGES)
    with pytest.raises(ModelUnavailable, match="QWENFIX_LLM_BASE_URL"):
        ModelClient("", "k", "m")


def test_unparsable_native_arguments_are_kept_for_the_toolbox(fake_model):
    fake_model.script([raw_call("run", '{"command": "pytest')])
    reply = client_for(fake_model).complete(MESSAGES)
    assert reply.tool_calls == [ToolCall("run", {"__unparsed__": '{"command": "pytest'}, reply.tool_calls[0].id)]


def test_from_settings_and_list_models(fake_model):
    settings = Settings(_env_file=None, llm_base_url=fake_model.base_url, llm_api_key="sk-settings-key-123",
                        llm_model="qwen3-coder-test", llm_timeout_s=5, llm_max_retries=0)
    client = ModelClient.from_settings(settings)
    assert client.list_models() == ["qwen3-coder-test"]
    assert fake_model.requests[-1].headers["authorization"] == "Bearer sk-settings-key-123"
    with pytest.raises(ModelUnavailable):
        ModelClient.from_settings(Settings(_env_file=None, llm_base_url=""))
