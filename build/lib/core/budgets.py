"""Spending limits per installation (organization) and per repository: model tokens and cost per UTC
day and calendar month, jobs running at once, repair jobs started per day.

The operator sets defaults (QWENFIX_BUDGET_*); an organization may lower them, never raise them, in
its `.github` repository's `qwen.yml`. Deciding is pure (`exceeded`); what was spent is read from
the database (`spent`): model usage from ModelCall rows, jobs from the jobs table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from core.config import Settings
from core.db.models import Job, ModelCall

SCOPES = ("organization", "repository")
WORKING_KINDS = ("repair", "fix", "explain", "review")  # jobs that run a sandbox or the model
REPAIR_KINDS = ("repair", "fix")
BUDGETS = ("tokens_per_day", "tokens_per_month", "cost_per_day", "cost_per_month", "concurrent_jobs",
           "repair_jobs_per_day")
_WORDS = {
    "tokens_per_day": "daily token budget",
    "tokens_per_month": "monthly token budget",
    "cost_per_day": "daily cost budget",
    "cost_per_month": "monthly cost budget",
    "concurrent_jobs": "budget of jobs running at once",
    "repair_jobs_per_day": "daily budget of repair jobs",
}


class Limits(BaseModel):
    """One scope's limits; None: no limit (0 allows nothing)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)

    tokens_per_day: int | None = Field(None, ge=0)
    tokens_per_month: int | None = Field(None, ge=0)
    cost_per_day: float | None = Field(None, ge=0)
    cost_per_month: float | None = Field(None, ge=0)
    concurrent_jobs: int | None = Field(None, ge=0)
    repair_jobs_per_day: int | None = Field(None, ge=0)

    def lowered_by(self, other: Limits | None) -> tuple[Limits, list[str]]:
        """These limits, lowered where ``other`` sets a smaller one; and what in ``other`` was
        ignored because it would raise a limit."""
        if other is None:
            return self, []
        values, ignored = {}, []
        for name in BUDGETS:
            mine, theirs = getattr(self, name), getattr(other, name)
            if theirs is not None and mine is not None and theirs > mine:
                ignored.append(f"{name}: {_plain(theirs)} is above the operator's {_plain(mine)}")
            values[name] = theirs if theirs is not None and (mine is None or theirs <= mine) else mine
        return Limits(**values), ignored


def _plain(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


class OrgBudgets(BaseModel):
    """The `budgets:` section of the organization's `.github/qwen.yml`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    organization: Limits | None = None
    repository: Limits | None = None


def operator_limits(settings: Settings) -> dict[str, Limits]:
    """The operator's defaults by scope (0 in settings means no limit)."""
    out = {}
    for scope, prefix in (("organization", "budget_org_"), ("repository", "budget_repo_")):
        out[scope] = Limits(**{name: getattr(settings, prefix + name) or None for name in BUDGETS})
    return out


def parse_org_budgets(data: Any) -> tuple[OrgBudgets | None, str | None]:
    """The `budgets:` section of an organization's qwen.yml (already parsed YAML); an error names the
    field, and then no lowering applies."""
    if data is None:
        return None, None
    try:
        return OrgBudgets.model_validate(data), None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in ("budgets", *first.get("loc", ())))
        return None, f"{where}: {first.get('msg', 'invalid value')}"


def effective(settings: Settings, org: OrgBudgets | None) -> tuple[dict[str, Limits], list[str]]:
    """Limits by scope after the organization's lowering, and the raises that were ignored."""
    limits, notes = {}, []
    for scope, base in operator_limits(settings).items():
        limits[scope], ignored = base.lowered_by(getattr(org, scope) if org else None)
        notes += [f"budgets.{scope}.{item}" for item in ignored]
    return limits, notes


@dataclass(frozen=True)
class Spent:
    tokens_today: int = 0
    tokens_month: int = 0
    cost_today: float = 0.0
    cost_month: float = 0.0
    running_jobs: int = 0  # other working jobs running now
    repair_jobs_today: int = 0  # other repair/fix jobs started today


@dataclass(frozen=True)
class Refusal:
    scope: str  # organization | repository
    owner: str  # the organization's login or the repository's full name
    budget: str  # one of BUDGETS
    limit: float
    used: float
    resets_at: datetime | None  # None: when a running job ends

    @property
    def waits(self) -> bool:
        """Jobs over the concurrency budget wait in the queue instead of being refused."""
        return self.budget == "concurrent_jobs"

    def describe(self) -> str:
        """e.g. "the daily token budget of repository octo/calc (1,000 tokens; 2,345 used)"."""
        used = f"{self.used:,.2f}" if self.budget.startswith("cost") else f"{int(self.used):,}"
        return f"the {_WORDS[self.budget]} of {self.scope} {self.owner} ({self.amount()}; {used} used)"

    def amount(self) -> str:
        """The limit with its unit."""
        if self.budget.startswith("tokens"):
            return f"{int(self.limit):,} token{'s' if self.limit != 1 else ''}"
        if self.budget.startswith("cost"):
            return f"{self.limit:,.2f}"
        return f"{int(self.limit):,} job{'s' if self.limit != 1 else ''}"


def day_start(now: datetime) -> datetime:
    return now.astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)


def month_start(now: datetime) -> datetime:
    return day_start(now).replace(day=1)


def resets_at(budget: str, now: datetime) -> datetime | None:
    if budget.endswith("per_day"):
        return day_start(now) + timedelta(days=1)
    if budget.endswith("per_month"):
        start = month_start(now)
        return start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)
    return None


def exceeded(scope: str, owner: str, limits: Limits, spent: Spent, now: datetime,
             starting: bool, repair: bool) -> Refusal | None:
    """The first budget that stops the job: model budgets before any model request, and when
    ``starting`` the job budgets too (repair jobs per day only for a ``repair`` job)."""
    checks = [("tokens_per_day", spent.tokens_today), ("tokens_per_month", spent.tokens_month),
              ("cost_per_day", spent.cost_today), ("cost_per_month", spent.cost_month)]
    if starting:
        checks.append(("concurrent_jobs", spent.running_jobs))
        if repair:
            checks.append(("repair_jobs_per_day", spent.repair_jobs_today))
    for budget, used in checks:
        limit = getattr(limits, budget)
        if limit is not None and used >= limit:
            return Refusal(scope, owner, budget, limit, used, resets_at(budget, now))
    return None


def spent(session: Session, scope: str, installation_id: int | None, repo: str | None,
          now: datetime, job_id: int | None = None, with_jobs: bool = True) -> Spent:
    """What the scope spent so far: model usage today and this month, other jobs running now and
    other repair jobs started today."""
    today, month = day_start(now), month_start(now)
    usage_filter = (ModelCall.installation_id == installation_id if scope == "organization"
                    else ModelCall.repo == repo)
    tokens = ModelCall.prompt_tokens + ModelCall.completion_tokens
    cost = func.coalesce(ModelCall.cost, 0.0)
    row = session.execute(select(
        func.coalesce(func.sum(case((ModelCall.at >= today, tokens), else_=0)), 0),
        func.coalesce(func.sum(tokens), 0),
        func.coalesce(func.sum(case((ModelCall.at >= today, cost), else_=0.0)), 0.0),
        func.coalesce(func.sum(cost), 0.0),
    ).where(usage_filter, ModelCall.at >= month)).one()
    running = repairs = 0
    if with_jobs:
        job_filter = [Job.installation_id == installation_id if scope == "organization" else Job.repo == repo]
        if job_id is not None:
            job_filter.append(Job.id != job_id)
        running = session.scalar(select(func.count()).where(
            *job_filter, Job.state == "running", Job.kind.in_(WORKING_KINDS))) or 0
        repairs = session.scalar(select(func.count()).where(
            *job_filter, Job.kind.in_(REPAIR_KINDS), Job.started_at >= today,
            Job.state.in_(("running", "succeeded", "failed")))) or 0
    return Spent(int(row[0]), int(row[1]), float(row[2]), float(row[3]), running, repairs)
