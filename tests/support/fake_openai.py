"""A scripted OpenAI-compatible model server on 127.0.0.1, driven by the real `openai` client.

A script is a list of replies, one per agent step. The step is read from the request itself (the
number of assistant messages so far), so concurrent conversations — k candidates in parallel —
each follow the script independently. Every request body and its headers are recorded.

Reply shapes:
    call("read_file", path="a.py")                  native OpenAI tool_calls
    call("read_file", path="a.py", shape="xml")     Qwen3-Coder XML in the text
    call("read_file", path="a.py", shape="json")    a JSON object in the text
    raw_call("run", '{"command": ')                 native, with this exact arguments string
    text("anything")                                plain text (no tool call)
    error(429)                                      an HTTP error status, served once; the next
                                                    request (the client's retry) gets the next reply
    error(500, times=None)                          an HTTP error status for this step, every time
    stall(600)                                      a model that takes 600 s to answer (then finishes)
or a callable(request_body) -> one of those (an error it returns is served for that request only).

`fake_model.fail_next(status, times)` makes the next requests fail, whatever the step.

Token counts: a prompt is its tools and messages rendered in order, as a chat template would, and
counted at 4 characters a token. Like vLLM's or DashScope's prefix cache, the server reports as
`usage.prompt_tokens_details.cached_tokens` the longest prefix this prompt shares with any prompt it
has seen before (`fake_model.prefix_cache = False` turns that off, as on an endpoint without a cache).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from tests.support.git_http import ServerThread

MODEL = "qwen3-coder-test"


def call(name: str, shape: str = "native", **arguments) -> dict:
    return {"kind": "call", "name": name, "arguments": arguments, "shape": shape}


def raw_call(name: str, arguments: str) -> dict:
    """A native tool call whose arguments string is sent as is (e.g. not valid JSON)."""
    return {"kind": "call", "name": name, "arguments": arguments, "shape": "native"}


def text(content: str) -> dict:
    return {"kind": "text", "content": content}


def error(status: int, times: int | None = 1) -> dict:
    return {"kind": "error", "status": status, "times": times}


def finish(summary: str = "Done.", shape: str = "native") -> dict:
    return call("finish", shape=shape, summary=summary)


def stall(seconds: float, then: dict | None = None) -> dict:
    """A reply that takes ``seconds`` to arrive (an overloaded endpoint): ``then`` (default finish)."""
    return {"kind": "stall", "seconds": seconds, "then": then or finish("Answered late.")}


@dataclass
class RecordedCall:
    body: dict
    headers: dict[str, str]

    @property
    def messages(self) -> list[dict]:
        return self.body.get("messages", [])

    @property
    def raw(self) -> str:
        return json.dumps(self.body) + json.dumps(self.headers)


@dataclass
class FakeModel:
    url: str = ""
    requests: list[RecordedCall] = field(default_factory=list)
    replies: list[Any] = field(default_factory=list)
    step_errors: dict[int, list[int]] = field(default_factory=dict)  # step -> statuses served first
    failures: list[int] = field(default_factory=list)  # HTTP statuses to answer before any reply
    lock: threading.Lock = field(default_factory=threading.Lock)
    ids: Any = field(default_factory=lambda: itertools.count(1))
    prefix_cache: bool = True
    seen_prompts: list[str] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def script(self, replies: list[Any]) -> None:
        """The replies for steps 0, 1, …; transient errors attach to the reply that follows them."""
        self.replies, self.step_errors = [], {}
        for reply in replies:
            if isinstance(reply, dict) and reply["kind"] == "error" and reply.get("times"):
                self.step_errors.setdefault(len(self.replies), []).extend([reply["status"]] * reply["times"])
            else:
                self.replies.append(reply)

    def fail_next(self, status: int, times: int = 1) -> None:
        self.failures += [status] * times

    def chat_requests(self) -> list[RecordedCall]:
        return [r for r in self.requests if "messages" in r.body]

    def answer(self, body: dict) -> tuple[int, dict, float]:
        """(status, payload, seconds to wait before sending it)."""
        with self.lock:
            step = sum(1 for m in body.get("messages", []) if m.get("role") == "assistant")
            pending = self.step_errors.get(step) or self.failures
            if pending:
                status = pending.pop(0)
                return status, {"error": {"message": f"scripted {status}", "type": "server_error"}}, 0.0
            call_id = next(self.ids)
        reply = self.replies[step] if step < len(self.replies) else finish("Script exhausted.")
        if callable(reply):
            reply = reply(body)
        delay = 0.0
        if reply["kind"] == "stall":
            delay, reply = reply["seconds"], reply["then"]
        if reply["kind"] == "error":
            return reply["status"], {"error": {"message": "scripted error", "type": "server_error"}}, delay
        prompt = rendered(body)
        with self.lock:
            cached = max((shared_prefix(prompt, seen) for seen in self.seen_prompts), default=0) // 4
            self.seen_prompts.append(prompt)
        prompt_tokens = len(prompt) // 4
        cached = cached if self.prefix_cache else 0
        if reply["kind"] == "text":
            message = {"role": "assistant", "content": reply["content"]}
        elif reply["shape"] == "native":
            message = {"role": "assistant", "content": None, "tool_calls": [{
                "id": f"call_{call_id}", "type": "function",
                "function": {"name": reply["name"], "arguments": reply["arguments"] if isinstance(reply["arguments"], str)
                             else json.dumps(reply["arguments"])}}]}
        elif reply["shape"] == "xml":
            params = "".join(f"<parameter={k}>\n{v}\n</parameter>\n" for k, v in reply["arguments"].items())
            message = {"role": "assistant", "content": f"Let me do that.\n<tool_call>\n<function={reply['name']}>\n{params}</function>\n</tool_call>"}
        else:
            payload = json.dumps({"name": reply["name"], "arguments": reply["arguments"]})
            message = {"role": "assistant", "content": f"```json\n{payload}\n```"}
        completion = len(json.dumps(message)) // 4 + 1
        return 200, {
            "id": f"chatcmpl-{call_id}", "object": "chat.completion", "created": 0, "model": body.get("model", MODEL),
            "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if message.get("tool_calls") else "stop"}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion,
                      "total_tokens": prompt_tokens + completion,
                      "prompt_tokens_details": {"cached_tokens": cached}},
        }, delay


def last_observation(messages: list[dict]) -> str:
    """What the agent saw last: the newest message before the agent's trailing list of edits."""
    for message in reversed(messages):
        content = message.get("content") or ""
        if message.get("role") in ("user", "tool") and not content.startswith("# Edits made so far"):
            return content
    return ""


def rendered(body: dict) -> str:
    """The prompt as the server sees it: tools, then every message in order (appending a message
    extends it, as a chat template does)."""
    return json.dumps(body.get("tools") or []) + "".join(json.dumps(m, sort_keys=True)
                                                         for m in body.get("messages", []))


def shared_prefix(a: str, b: str) -> int:
    """Characters at the start of `a` that `b` starts with too."""
    n = min(len(a), len(b))
    if a[:n] == b[:n]:
        return n
    low, high = 0, n  # binary search on the first difference
    while low < high:
        mid = (low + high + 1) // 2
        if a[:mid] == b[:mid]:
            low = mid
        else:
            high = mid - 1
    return low


def make_app(model: FakeModel) -> FastAPI:
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        body = await request.json()
        with model.lock:
            model.requests.append(RecordedCall(body, dict(request.headers)))
        status, payload, delay = model.answer(body)
        if delay:
            await asyncio.sleep(delay)
        # a short Retry-After keeps the client's (real) retries fast in tests
        headers = {"retry-after-ms": "20"} if status >= 400 else None
        return JSONResponse(payload, status_code=status, headers=headers)

    @app.get("/v1/models")
    async def models(request: Request):
        model.requests.append(RecordedCall({}, dict(request.headers)))
        return {"object": "list", "data": [{"id": MODEL, "object": "model", "created": 0, "owned_by": "test"}]}

    return app


@pytest.fixture
def fake_model():
    model = FakeModel()
    server = ServerThread(make_app(model)).start()
    model.url = server.url
    try:
        yield model
    finally:
        server.stop()


Responder = Callable[[dict], dict]
