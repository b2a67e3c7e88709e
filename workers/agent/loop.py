"""The agent loop: prompt → model → tool call → observation, until `finish` or a budget runs out.

Old observations are elided beyond a window so the prompt stays bounded on long runs; the task and
the list of edits made so far always stay. Secrets are redacted before anything reaches the model
or the trajectory.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from app.logs import redact
from workers.agent.llm import ModelClient, ModelError, ModelUnavailable
from workers.agent.toolcalls import CORRECTION, parse_tool_calls
from workers.agent.tools import TOOL_SCHEMAS, Toolbox

PROMPTS = Path(__file__).parent / "prompts"
ELIDED = "[observation elided to keep the prompt short; call the tool again if you need it]"


@dataclass(frozen=True)
class Budget:
    max_steps: int = 30
    max_tokens: int = 400_000  # prompt + completion, summed over the run
    max_seconds: float = 900.0
    max_cost: float | None = None  # in the currency of the prices below
    price_per_1k_prompt: float = 0.0
    price_per_1k_completion: float = 0.0
    observation_window: int = 6  # tool observations kept in full
    max_tokens_per_reply: int | None = None


@dataclass
class Step:
    index: int
    response: str
    tool: str | None
    arguments: dict | None
    observation: str
    prompt_tokens: int
    completion_tokens: int
    latency_s: float


@dataclass
class AgentResult:
    outcome: str  # finished | budget_steps | budget_tokens | budget_time | budget_cost | model_error
    summary: str
    steps: list[Step] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: str | None = None

    def trajectory(self) -> list[dict]:
        return [asdict(step) for step in self.steps]


def fenced(label: str, text: str) -> str:
    """Text from the repository, logs or PR, marked as data (and unable to close the marker)."""
    safe = text.replace("</untrusted-data>", "</untrusted_data>")
    return f'<untrusted-data source="{label}">\n{safe}\n</untrusted-data>'


def build_task_prompt(goal: str, command: str, working_directory: str, failure: str | None,
                      instructions: str | None, tree: str, context: dict[str, str]) -> str:
    template = (PROMPTS / "task.md").read_text()
    return template.format(
        goal=goal,
        command=command,
        working_directory=working_directory,
        failure="# Failure\n\n" + fenced("CI failure", failure) if failure else "",
        instructions="# Requested change\n\n" + fenced("pull request comment", instructions) if instructions else "",
        tree=tree,
        context="\n\n".join(f"## {name}\n\n{fenced(name, text)}" for name, text in context.items()),
    ).strip()


def run_agent(task_prompt: str, toolbox: Toolbox, client: ModelClient, budget: Budget,
              temperature: float = 0.0, secrets: list[str] | None = None, cancelled=lambda: False) -> AgentResult:
    secrets = [s for s in secrets or [] if s]
    system = (PROMPTS / "system.md").read_text()
    task = redact(task_prompt, secrets)
    history: list[dict] = []  # assistant/tool messages after the task
    observations: list[int] = []  # indexes in history of tool observations, oldest first
    result = AgentResult(outcome="budget_steps", summary="")
    started = time.monotonic()

    for index in range(1, budget.max_steps + 1):
        if cancelled():
            result.outcome = "cancelled"
            break
        if time.monotonic() - started > budget.max_seconds:
            result.outcome = "budget_time"
            break
        _elide(history, observations, budget.observation_window)
        messages = [{"role": "system", "content": system}, {"role": "user", "content": _task_with_edits(task, toolbox)}, *history]
        try:
            reply = client.complete(messages, tools=TOOL_SCHEMAS, temperature=temperature, max_tokens=budget.max_tokens_per_reply)
        except (ModelUnavailable, ModelError) as exc:
            result.outcome, result.error = "model_error", redact(str(exc), secrets)
            break
        result.prompt_tokens += reply.prompt_tokens
        result.completion_tokens += reply.completion_tokens
        calls = parse_tool_calls(reply)
        text = redact(reply.text or "", secrets)
        if not calls:
            history.append({"role": "assistant", "content": text or "(empty reply)"})
            history.append({"role": "user", "content": CORRECTION})
            result.steps.append(Step(index, text, None, None, CORRECTION, reply.prompt_tokens, reply.completion_tokens, reply.latency_s))
        else:
            call = calls[0]  # one action per step keeps observations attributable
            observation = redact(toolbox.call(call.name, dict(call.arguments)), secrets)
            if len(calls) > 1:
                observation += f"\n[only the first of {len(calls)} tool calls was run; call one tool per reply]"
            if call.id:  # native tool calling: answer by id
                history.append({"role": "assistant", "content": text or None, "tool_calls": [{
                    "id": call.id, "type": "function",
                    "function": {"name": call.name, "arguments": redact(json.dumps(call.arguments), secrets)}}]})
                history.append({"role": "tool", "tool_call_id": call.id, "content": observation})
            else:
                history.append({"role": "assistant", "content": text})
                history.append({"role": "user", "content": f"Observation from {call.name}:\n{observation}"})
            observations.append(len(history) - 1)
            args = json.loads(redact(json.dumps(call.arguments), secrets))
            result.steps.append(Step(index, text, call.name, args, observation, reply.prompt_tokens, reply.completion_tokens, reply.latency_s))
        if toolbox.finished:
            result.outcome, result.summary = "finished", redact(toolbox.summary, secrets)
            break
        if result.prompt_tokens + result.completion_tokens >= budget.max_tokens:
            result.outcome = "budget_tokens"
            break
        if budget.max_cost is not None and _cost(result, budget) >= budget.max_cost:
            result.outcome = "budget_cost"
            break
    return result


def _task_with_edits(task: str, toolbox: Toolbox) -> str:
    if not toolbox.edits:
        return task
    return task + "\n\n# Edits made so far\n\n" + "\n".join(f"- {e}" for e in toolbox.edits)


def _elide(history: list[dict], observations: list[int], window: int) -> None:
    for position in observations[:-window] if window else observations:
        history[position]["content"] = ELIDED


def _cost(result: AgentResult, budget: Budget) -> float:
    return (result.prompt_tokens * budget.price_per_1k_prompt + result.completion_tokens * budget.price_per_1k_completion) / 1000
