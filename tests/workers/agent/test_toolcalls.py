"""Tool calls in every shape endpoints produce: native, Qwen3-Coder XML, JSON in the text."""

from __future__ import annotations

from workers.agent.llm import ModelReply, ToolCall
from workers.agent.toolcalls import parse_tool_calls


def parse(text: str) -> list[ToolCall]:
    return parse_tool_calls(ModelReply(text=text))


def test_native_calls_win_over_text():
    native = ToolCall("read_file", {"path": "a.py"}, "call_1")
    reply = ModelReply(text='{"name": "run", "arguments": {"command": "ls"}}', tool_calls=[native])
    assert parse_tool_calls(reply) == [native]


def test_qwen_xml_with_multiline_values_and_several_calls():
    text = """I'll fix it.
<tool_call>
<function=edit_file>
<parameter=path>
pkg/calc.py
</parameter>
<parameter=old>
def add(a, b):
    return a - b
</parameter>
<parameter=new>
def add(a, b):
    return a + b

</parameter>
</function>
</tool_call>
<tool_call>
<function=finish>
<parameter=summary>
done
</parameter>
</function>
</tool_call>"""
    calls = parse(text)
    assert [c.name for c in calls] == ["edit_file", "finish"]
    assert calls[0].arguments == {"path": "pkg/calc.py", "old": "def add(a, b):\n    return a - b",
                                  "new": "def add(a, b):\n    return a + b\n"}
    assert calls[0].id is None


def test_qwen_xml_without_outer_tags_or_closing_tags():
    assert parse("<function=read_file>\n<parameter=path>\na.py\n</parameter>\n</function>") == [
        ToolCall("read_file", {"path": "a.py"})]
    assert parse("<tool_call><function=read_file><parameter=path>a.py<parameter=start_line>3</tool_call>") == [
        ToolCall("read_file", {"path": "a.py", "start_line": "3"})]
    assert parse("<function=finish>\n<parameter=summary>\nall good") == [ToolCall("finish", {"summary": "all good"})]


def test_json_in_fences_bare_and_alternative_keys():
    fenced = 'Sure:\n```json\n{"name": "read_file", "arguments": {"path": "a.py"}}\n```'
    assert parse(fenced) == [ToolCall("read_file", {"path": "a.py"})]
    bare = 'I will call {"tool": "run", "args": {"command": "pytest -q"}} now {not json}'
    assert parse(bare) == [ToolCall("run", {"command": "pytest -q"})]
    encoded = '{"name": "search", "arguments": "{\\"pattern\\": \\"def add\\"}"}'
    assert parse(encoded) == [ToolCall("search", {"pattern": "def add"})]
    openai_like = '{"type": "function", "function": {"name": "list_dir", "arguments": {"path": "."}}}'
    assert parse(openai_like) == [ToolCall("list_dir", {"path": "."})]
    nested = '{"name": "create_file", "arguments": {"path": "a.json", "content": "{\\"k\\": {\\"v\\": 1}}"}}'
    assert parse(nested) == [ToolCall("create_file", {"path": "a.json", "content": '{"k": {"v": 1}}'})]


def test_text_without_a_call_parses_as_none():
    for text in ["", "The bug is in add().", '{"answer": 42}', "```python\nprint({1: 2})\n```",
                 '{"name": "x", "arguments": "not json"}']:
        assert parse(text) == [], text
