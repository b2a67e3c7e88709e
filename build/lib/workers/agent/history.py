"""The conversation after the task, with an observation window: recent steps are sent in full;
older ones shrink to the model's (shortened) reply and a one-line stub instead of the tool output,
so the prompt stays bounded on long runs. The full record lives in the trajectory, not here.

Older steps are compacted in blocks, not one at a time: a step, once shortened, is never rewritten,
and between two compactions every request is the previous one plus the new step. Model servers
(vLLM, SGLang, hosted Qwen) reuse the computation of a prefix they have already seen and bill it
lower, so a request that extends the previous one is mostly served from their cache; shortening one
step at every request would change the prompt a few steps back each time and lose that."""

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


def elided(count: int, keep: int, block: int = 1) -> int:
    """How many of `count` turns are shortened: a multiple of `block`, leaving at least `keep` (and
    fewer than `keep + block`) in full. `block=1` shortens one more turn at every step."""
    block = max(1, block)
    return max(0, count - keep) // block * block


def window(turns: list[Turn], keep: int, block: int = 1) -> list[dict]:
    """Messages for all turns: the oldest ones elided in blocks (see `elided`), the rest in full."""
    first_full = elided(len(turns), keep, block)
    return [m for i, turn in enumerate(turns) for m in turn.messages(full=i >= first_full)]


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + f" [… {len(text) - limit} characters elided]"
