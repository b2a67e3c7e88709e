"""Does it help? Delivered fixes per repository and model — accepted, rejected, green or red in CI, the
median time from red build to delivered fix, tokens and cost per accepted fix — for `qwenfix report`,
the dashboard's outcomes page and `/metrics`."""

from __future__ import annotations

import csv
import io
import json
import re
import statistics
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.budgets import REPAIR_KINDS
from core.db.models import FixOutcome, Job, ModelCall
from core.jobs import as_aware

FORMATS = ("md", "json", "csv")
_SPAN = re.compile(r"^\s*(\d+)\s*([mhdw])\s*$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """"30d", "12h", "2w", "90m" ago, or an ISO date or time (UTC unless it says otherwise)."""
    now = now or datetime.now(timezone.utc)
    match = _SPAN.match(text)
    if match:
        return now - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"--since {text!r}: use a span such as 30d, 12h, 2w, or a date such as 2026-01-31") from None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class FixRow:
    repo: str
    model: str
    delivered: int
    accepted: int
    rejected: int
    green_in_ci: int
    red_in_ci: int
    median_red_to_fix_s: float | None
    tokens: int  # spent by this repository's repair and fix jobs on this model, delivered or not
    cost: float | None
    tokens_per_accepted_fix: float | None
    cost_per_accepted_fix: float | None


def fix_table(session: Session, since: datetime | None = None, repo: str | None = None,
              visible: list[str] | None = None) -> list[FixRow]:
    """``visible``: only these repositories (lower-cased), None: every repository."""
    outcomes = select(FixOutcome)
    spending = (select(ModelCall.repo, ModelCall.model,
                       func.sum(ModelCall.prompt_tokens + ModelCall.completion_tokens),
                       func.sum(ModelCall.cost), func.count(ModelCall.cost))
                .join(Job, Job.id == ModelCall.job_id).where(Job.kind.in_(REPAIR_KINDS))
                .group_by(ModelCall.repo, ModelCall.model))
    if since is not None:
        outcomes = outcomes.where(FixOutcome.delivered_at >= since)
        spending = spending.where(ModelCall.at >= since)
    if repo:
        outcomes = outcomes.where(FixOutcome.repo == repo)
        spending = spending.where(ModelCall.repo == repo)
    if visible is not None:
        outcomes = outcomes.where(func.lower(FixOutcome.repo).in_(visible or [""]))
        spending = spending.where(func.lower(ModelCall.repo).in_(visible or [""]))
    groups: dict[tuple[str, str], list[FixOutcome]] = {}
    for row in session.scalars(outcomes):
        groups.setdefault((row.repo, row.model), []).append(row)
    spent = {(r, m): (int(tokens or 0), float(cost) if priced else None)
             for r, m, tokens, cost, priced in session.execute(spending)}
    rows = []
    for key in sorted(set(groups) | set(spent)):
        fixes = groups.get(key, [])
        tokens, cost = spent.get(key, (0, None))
        accepted = sum(1 for f in fixes if f.verdict == "accepted")
        waits = [(as_aware(f.delivered_at) - as_aware(f.red_at)).total_seconds() for f in fixes]
        rows.append(FixRow(
            repo=key[0], model=key[1], delivered=len(fixes), accepted=accepted,
            rejected=sum(1 for f in fixes if f.verdict == "rejected"),
            green_in_ci=sum(1 for f in fixes if f.ci == "green"), red_in_ci=sum(1 for f in fixes if f.ci == "red"),
            median_red_to_fix_s=round(statistics.median(waits), 1) if waits else None,
            tokens=tokens, cost=cost,
            tokens_per_accepted_fix=round(tokens / accepted, 1) if accepted else None,
            cost_per_accepted_fix=round(cost / accepted, 6) if accepted and cost is not None else None,
        ))
    return rows


def render(rows: list[FixRow], fmt: str) -> str:
    if fmt == "json":
        return json.dumps([asdict(r) for r in rows], indent=2) + "\n"
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(FixRow.__dataclass_fields__)
        writer.writerows([list(asdict(r).values()) for r in rows])
        return out.getvalue()
    if fmt != "md":
        raise ValueError(f"unknown format {fmt!r} ({', '.join(FORMATS)})")
    lines = ["| repository | model | delivered | accepted | rejected | green in CI | red in CI | "
             "median red → fix | tokens per accepted fix | cost per accepted fix |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        lines.append(f"| {r.repo} | {r.model} | {r.delivered} | {r.accepted} | {r.rejected} | {r.green_in_ci} | "
                     f"{r.red_in_ci} | {duration(r.median_red_to_fix_s)} | {_number(r.tokens_per_accepted_fix)} | "
                     f"{_number(r.cost_per_accepted_fix, 4)} |")
    if not rows:
        lines.append("| (no delivered fixes and no model use in this period) | | | | | | | | | |")
    return "\n".join(lines) + "\n"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _number(value: float | None, digits: int = 0) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"
