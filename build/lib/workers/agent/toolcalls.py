"""Tool calls in the three shapes real endpoints return: native `tool_calls`, Qwen3-Coder's XML in the
text (endpoints without a tool-call parser), and a JSON object in the text (weaker local models).

Values parsed from text stay strings; the toolbox converts them to the types its schemas declare.
"""

from __future__ import annotations

import json
import re

from workers.agent.llm import ModelReply, ToolCall

# <function=NAME> … up to </function>, </tool_call>, the next <function=, or the end of the text
_XML_CALL = re.compile(r"<function=([\w.-]+)>(.*?)(?=</function>|</tool_call>|<function=|\Z)", re.S)
# <parameter=KEY> … up to </parameter>, the next <parameter=, or the end of the call
_XML_PARAM = re.compile(r"<parameter=([\w.-]+)>(.*?)(?:</parameter>|(?=<parameter=)|\Z)", re.S)
_NAME_KEYS = ("name", "tool", "function", "tool_name")
_ARG_KEYS = ("arguments", "args", "parameters", "input")

CORRECTION = (
    "Your reply contained no tool call, so nothing happened. Call exactly one tool, for example\n"
    "<tool_call>\n<function=read_file>\n<parameter=path>\nsrc/app.py\n</parameter>\n</function>\n</tool_call>\n"
    "or call `finish` with a summary when you are done."
)


def parse_tool_calls(reply: ModelReply) -> list[ToolCall]:
    """Every tool call in the reply, native first; [] when the reply has none in any shape."""
    if reply.tool_calls:
        return list(reply.tool_calls)
    text = reply.text or ""
    return xml_calls(text) or json_calls(text)


def xml_calls(text: str) -> list[ToolCall]:
    """Qwen3-Coder's format; the outer <tool_call> tags and closing tags may be missing."""
    calls = []
    for name, body in _XML_CALL.findall(text):
        calls.append(ToolCall(name, {key: _strip_newline(value) for key, value in _XML_PARAM.findall(body)}))
    return calls


def _strip_newline(value: str) -> str:
    """Qwen puts each value on its own lines: drop exactly one newline on each side, keep the rest."""
    value = value[1:] if value.startswith("\n") else value
    return value[:-1] if value.endswith("\n") else value


def json_calls(text: str) -> list[ToolCall]:
    """`{"name": …, "arguments": {…}}` or `{"tool": …, "args": {…}}`, bare or in ```json fences."""
    decoder = json.JSONDecoder()
    calls, position = [], 0
    while (start := text.find("{", position)) != -1:
        try:
            data, end = decoder.raw_decode(text, start)
        except ValueError:
            position = start + 1
            continue
        position = end
        call = _call_from_object(data)
        if call is not None:
            calls.append(call)
    return calls


def _call_from_object(data) -> ToolCall | None:
    if not isinstance(data, dict):
        return None
    name = next((data[k] for k in _NAME_KEYS if k in data), None)
    if isinstance(name, dict):  # {"function": {"name": …, "arguments": …}}
        return _call_from_object(name)
    args = next((data[k] for k in _ARG_KEYS if k in data), {})
    if isinstance(args, str):  # arguments double-encoded as a JSON string, as the OpenAI API does
        try:
            args = json.loads(args)
        except ValueError:
            return None
    if isinstance(name, str) and name and isinstance(args, dict):
        return ToolCall(name, args)
    return None
