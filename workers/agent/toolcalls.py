"""Tool calls in the three shapes real endpoints return: native `tool_calls`, Qwen3-Coder's XML in the
text (endpoints without a tool-call parser), and a JSON object in the text (weaker local models)."""

from __future__ import annotations

import json
import re

from workers.agent.llm import ModelReply, ToolCall

_XML_CALL = re.compile(r"<function=([\w.-]+)>(.*?)</function>", re.S)
_XML_PARAM = re.compile(r"<parameter=([\w.-]+)>\n?(.*?)\n?</parameter>", re.S)
_FENCED_JSON = re.compile(r"```(?:json)?\s*(\{.*?\})\s*```", re.S)

CORRECTION = (
    "I could not find a tool call in your reply. Call exactly one tool, e.g. "
    "<tool_call><function=read_file><parameter=path>src/app.py</parameter></function></tool_call>, "
    "or call `finish` with a summary when you are done."
)


def parse_tool_calls(reply: ModelReply) -> list[ToolCall]:
    """Every tool call in the reply, native first; [] when the reply has none in any shape."""
    if reply.tool_calls:
        return reply.tool_calls
    text = reply.text or ""
    calls = _xml_calls(text)
    if calls:
        return calls
    return _json_calls(text)


def _xml_calls(text: str) -> list[ToolCall]:
    calls = []
    for name, body in _XML_CALL.findall(text):
        args = {key: _coerce(value) for key, value in _XML_PARAM.findall(body)}
        calls.append(ToolCall(name, args))
    return calls


def _coerce(value: str):
    """Qwen writes every parameter as text; numbers stay numbers for line ranges."""
    stripped = value.strip()
    if re.fullmatch(r"-?\d+", stripped):
        return int(stripped)
    return value


def _json_calls(text: str) -> list[ToolCall]:
    candidates = _FENCED_JSON.findall(text)
    if not candidates:
        start, end = text.find("{"), text.rfind("}")
        if start != -1 and end > start:
            candidates = [text[start : end + 1]]
    for candidate in candidates:
        try:
            data = json.loads(candidate)
        except ValueError:
            continue
        if not isinstance(data, dict):
            continue
        name = data.get("name") or data.get("tool") or data.get("function")
        args = data.get("arguments", data.get("args", data.get("parameters", {})))
        if isinstance(args, str):
            try:
                args = json.loads(args)
            except ValueError:
                args = {}
        if isinstance(name, str) and isinstance(args, dict):
            return [ToolCall(name, args)]
    return []
