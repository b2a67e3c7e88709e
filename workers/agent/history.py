"""The conversation after the task, with an observation window: the last N steps are sent in full;
older ones shrink to the model's (shortened) reply and a one-line stub instead of the tool output,
so the prompt stays bounded on long runs. The full record lives in the trajectory, not here."""

from __future__ import annotations

import json
from dataclasses import dataclass

from workers.agent.llm import ToolCall

KEEP_REPLY = 600  # characters of an old assistant reply that are kept
KEEP_ARGUMENT = 200  # characters of one old tool-call argument that are kept


@dataclass
class Turn:
    reply: str  # the assistant's text (redacted)
    call: ToolCall | None  # None: the reply had no tool call and got a correction
    observation: str  # as sent (redacted, shortened)

    def messages(self, full: bool) -> list[dict]:
        text = self.reply if full else _shorten(self.reply, KEEP_REPLY)
        observation = self.observation if full or self.call is None else stub(self.call, self.observation)
        if self.call is None:
            return [{"role": "assistant", "content": text or "(empty reply)"},
                    {"role": "user", "content": observation}]
        if self.call.id is None:  # the call was in the text (Qwen XML or JSON): answer in text
            return [{"role": "assistant", "content": text},
                    {"role": "user", "content": f"Observation from {self.call.name}:\n{observation}"}]
        arguments = self.call.arguments if full else {
            k: _shorten(v, KEEP_ARGUMENT) if isinstance(v, str) else v for k, v in self.call.arguments.items()}
        return [{"role": "assistant", "content": text or None, "tool_calls": [{
                    "id": self.call.id, "type": "function",
                    "function": {"name": self.call.name, "arguments": json.dumps(arguments)}}]},
                {"role": "tool", "tool_call_id": self.call.id, "content": observation}]


def stub(call: ToolCall, observation: str) -> str:
    lines = observation.count("\n") + 1
    return f"[elided: {call.name} output, {lines} lines; call again if needed]"


def window(turns: list[Turn], keep: int) -> list[dict]:
    """Messages for all turns: the last `keep` in full, older ones elided."""
    first_full = max(0, len(turns) - keep)
    return [m for i, turn in enumerate(turns) for m in turn.messages(full=i >= first_full)]


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + f" [… {len(text) - limit} characters elided]"
