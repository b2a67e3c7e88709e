"""The agent loop: prompt → model → tool call → observation, until `finish` or a budget runs out.

Secrets are redacted from everything before it is sent to the model or kept in the trajectory.
A reply without a tool call gets a short correction, which costs a step; nothing the model says
raises out of the loop.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from core.logs import redact
from workers.agent.budget import Budget
from workers.agent.history import Turn, window
from workers.agent.llm import ModelClient, ModelError, ModelUnavailable, OverBudget, Usage
from workers.agent.task import PROMPTS, AgentTask
from workers.agent.toolcalls import CORRECTION, parse_tool_calls
from workers.agent.tools import TOOL_SCHEMAS, Toolbox, shorten

OUTCOMES = ("finished", "budget_steps", "budget_tokens", "budget_time", "budget_cost", "model_error", "cancelled",
            "over_budget")  # over_budget: a spending limit of the organization or repository


@dataclass
class Step:
    index: int
    response: str  # the model's text (redacted)
    tool: str | None  # None: no tool call found, a correction was sent
    arguments: dict | None
    observation: str  # as sent to the model (redacted, shortened)
    prompt_tokens: int
    completion_tokens: int
    latency_s: float  # the model call
    tool_s: float = 0.0  # the tool call
    cached_tokens: int = 0  # of prompt_tokens, served from the endpoint's prefix cache


@dataclass
class AgentResult:
    outcome: str  # one of OUTCOMES
    summary: str
    steps: list[Step] = field(default_factory=list)
    usage: Usage = Usage()
    error: str | None = None

    @property
    def prompt_tokens(self) -> int:
        return self.usage.prompt_tokens

    @property
    def completion_tokens(self) -> int:
        return self.usage.completion_tokens

    @property
    def cached_tokens(self) -> int:
        return self.usage.cached_tokens

    def trajectory(self) -> list[dict]:
        return [asdict(step) for step in self.steps]


def run_agent(task: AgentTask | str, toolbox: Toolbox, client: ModelClient, budget: Budget,
              temperature: float = 0.0, secrets: list[str] | None = None,
              cancelled: Callable[[], bool] = lambda: False) -> AgentResult:
    secrets = [s for s in secrets or [] if s]
    system = (PROMPTS / "system.md").read_text()
    prompt = task if isinstance(task, str) else task.prompt()
    turns: list[Turn] = []
    result = AgentResult(outcome="budget_steps", summary="")
    started = time.monotonic()

    for index in range(1, budget.max_steps + 1):
        stop = "cancelled" if cancelled() else budget.before_step(time.monotonic() - started)
        if stop:
            result.outcome = stop
            break
        # system, task and the compacted steps stay a stable prefix; what changes goes last
        messages = [{"role": "system", "content": system},
                    {"role": "user", "content": prompt},
                    *window(turns, budget.observation_window, budget.compaction_block),
                    *_edits_note(toolbox.edits)]
        try:
            reply = client.complete(_redacted(messages, secrets), tools=TOOL_SCHEMAS, temperature=temperature,
                                    max_tokens=budget.max_tokens_per_reply)
        except OverBudget as exc:
            result.outcome, result.error = "over_budget", redact(str(exc), secrets)
            break
        except (ModelUnavailable, ModelError) as exc:
            result.outcome, result.error = "model_error", redact(str(exc), secrets)
            break
        result.usage += reply.usage
        text = redact(reply.text or "", secrets)
        calls = parse_tool_calls(reply)
        t0 = time.monotonic()
        if calls:
            call = calls[0]  # one action per step keeps every observation attributable
            observation = shorten(redact(toolbox.call(call.name, dict(call.arguments)), secrets))
            if len(calls) > 1:
                observation += f"\n[only the first of {len(calls)} tool calls was run; call one tool per reply]"
            call = type(call)(call.name, _redact_arguments(call.arguments, secrets), call.id)
        else:
            call, observation = None, CORRECTION
        turns.append(Turn(text, call, observation))
        result.steps.append(Step(index, text, call.name if call else None, call.arguments if call else None,
                                 observation, reply.prompt_tokens, reply.completion_tokens, reply.latency_s,
                                 time.monotonic() - t0, reply.cached_tokens))
        if toolbox.finished:
            result.outcome, result.summary = "finished", redact(toolbox.summary, secrets)
            break
        stop = budget.after_step(result.usage)
        if stop:
            result.outcome = stop
            break
    return result


def _edits_note(edits: list[str]) -> list[dict]:
    """The edits made so far, kept in every prompt whatever the window drops. It is the last message
    (replaced at the next step), so that the task above it stays the same from request to request."""
    if not edits:
        return []
    return [{"role": "user", "content": "# Edits made so far\n\n" + "\n".join(f"- {e}" for e in edits)}]


def _redact_arguments(value, secrets: list[str]):
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, dict):
        return {k: _redact_arguments(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact_arguments(v, secrets) for v in value]
    return value


def _redacted(messages: list[dict], secrets: list[str]) -> list[dict]:
    """The last gate before the endpoint: every text field, including tool-call arguments."""
    if not secrets:
        return messages
    out = []
    for message in messages:
        message = dict(message)
        if isinstance(message.get("content"), str):
            message["content"] = redact(message["content"], secrets)
        if message.get("tool_calls"):
            message["tool_calls"] = [{**c, "function": {**c["function"],
                                      "arguments": redact(c["function"]["arguments"], secrets)}}
                                     for c in message["tool_calls"]]
        out.append(message)
    return out
