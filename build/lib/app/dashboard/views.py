"""What the job page shows, as plain values the template lays out: the diff line by line, the
timeline of stages, the candidates, the trajectory step by step. Pure functions over the job row."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from core.jobs import as_aware

STAGES = (("reproduce", "reproduce"), ("fixer", "fixers"), ("agent", "agent + validation"))


@dataclass(frozen=True)
class DiffLine:
    kind: str  # file | hunk | add | del | context
    text: str


def diff_lines(patch: str | None) -> list[DiffLine]:
    """A unified diff, each line tagged for colouring."""
    out = []
    for line in (patch or "").splitlines():
        if line.startswith(("diff --git", "--- ", "+++ ", "index ", "new file", "deleted file", "rename ")):
            kind = "file"
        elif line.startswith("@@"):
            kind = "hunk"
        elif line.startswith("+"):
            kind = "add"
        elif line.startswith("-"):
            kind = "del"
        else:
            kind = "context"
        out.append(DiffLine(kind, line))
    return out


def diff_stat(patch: str | None) -> tuple[int, int, int]:
    """(files, lines added, lines removed)."""
    lines = diff_lines(patch)
    files = sum(1 for line in lines if line.text.startswith("+++ "))
    return (files, sum(1 for line in lines if line.kind == "add" and not line.text.startswith("+++")),
            sum(1 for line in lines if line.kind == "del" and not line.text.startswith("---")))


@dataclass(frozen=True)
class Stage:
    name: str
    seconds: float
    share: float  # of the whole, 0..1, for the bar's width


def timeline(created: datetime | None, started: datetime | None, timings: dict) -> list[Stage]:
    """Waiting in the queue, then the engine's stages in order, then the rest of the run
    (GitHub calls, delivery) — each with its share of the whole."""
    parts: list[tuple[str, float]] = []
    if created and started:
        parts.append(("queued", max(0.0, (as_aware(started) - as_aware(created)).total_seconds())))
    known = 0.0
    for key, name in STAGES:
        value = timings.get(key)
        if isinstance(value, int | float):
            parts.append((name, float(value)))
            known += float(value)
    total = timings.get("total")
    if isinstance(total, int | float) and total > known:
        parts.append(("GitHub + delivery" if known else "run", float(total) - known))
    whole = sum(seconds for _, seconds in parts) or 1.0
    return [Stage(name, round(seconds, 2), max(seconds / whole, 0.02)) for name, seconds in parts]


@dataclass(frozen=True)
class Step:
    number: int
    candidate: int | None
    tool: str | None
    summary: str  # one line: the tool and its main argument
    response: str
    arguments: str
    observation: str
    tokens: int


def trajectory_steps(trajectory: list) -> list[Step]:
    steps = []
    for number, raw in enumerate(trajectory or [], 1):
        step = raw if isinstance(raw, dict) else {}
        arguments = step.get("arguments")
        tool = step.get("tool")
        steps.append(Step(
            number=number,
            candidate=step.get("candidate"),
            tool=tool,
            summary=_summary(tool, arguments),
            response=str(step.get("response") or ""),
            arguments=json.dumps(arguments, indent=2) if arguments else "",
            observation=str(step.get("observation") or ""),
            tokens=int(step.get("prompt_tokens") or 0) + int(step.get("completion_tokens") or 0),
        ))
    return steps


def _summary(tool: str | None, arguments) -> str:
    if not tool:
        return "no tool call (corrected)"
    if isinstance(arguments, dict):
        for key in ("command", "path", "pattern", "query", "summary"):
            if arguments.get(key):
                value = str(arguments[key]).splitlines()[0]
                return f"{tool} {value[:100]}"
    return tool
