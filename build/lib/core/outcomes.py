"""What became of delivered fixes: one FixOutcome per delivered fix, settled by what GitHub reports
later — suggestions applied or dismissed, a fix commit kept or overwritten when the pull request
merges, a fix pull request merged or closed — and the CI result on the commit that carries the fix.

The verdict rules are pure functions; the rest reads and writes FixOutcome rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from core.db.models import FixOutcome, utcnow

UNSETTLED = ("pending", "open")  # "open": a fix pull request still open after N days may still merge
GREEN = frozenset({"success"})
RED = frozenset({"failure", "timed_out"})
APPLIED, DISMISSED, MISSING, PENDING = "applied", "dismissed", "missing", "pending"


def record_delivery(session: Session, **fields) -> FixOutcome:
    """The outcome row of a delivered fix (one per job: a job run twice records once)."""
    existing = session.scalar(select(FixOutcome).where(FixOutcome.job_id == fields["job_id"]))
    if existing is not None:
        return existing
    row = FixOutcome(**fields)
    session.add(row)
    session.flush()
    return row


def record_ci(session: Session, repo: str, sha: str, conclusion: str | None, detail: str,
              at: datetime | None = None) -> list[FixOutcome]:
    """A CI result on ``sha``: red stays red (one red workflow is enough), green only until then."""
    verdict = "red" if conclusion in RED else "green" if conclusion in GREEN else None
    if verdict is None:
        return []
    rows = list(session.scalars(select(FixOutcome).where(FixOutcome.repo == repo, FixOutcome.ci_sha == sha)))
    for row in rows:
        if row.ci == "red" or (row.ci == "green" and verdict == "green"):
            continue
        row.ci, row.ci_detail, row.ci_at = verdict, detail, at or utcnow()
    return rows


def unsettled(session: Session, repo: str, *, pr_number: int | None = None, branch: str | None = None,
              fix_pr_number: int | None = None) -> list[FixOutcome]:
    """Fixes of ``repo`` still waiting for a verdict, on that pull request, branch or fix PR."""
    where = []
    if pr_number is not None:
        where.append(FixOutcome.pr_number == pr_number)
        where.append(FixOutcome.fix_pr_number == pr_number)
    if branch:
        where.append(FixOutcome.branch == branch)
    if fix_pr_number is not None:
        where.append(FixOutcome.fix_pr_number == fix_pr_number)
    if not where:
        return []
    return list(session.scalars(select(FixOutcome).where(
        FixOutcome.repo == repo, FixOutcome.verdict.in_(UNSETTLED), or_(*where)).order_by(FixOutcome.id)))


def settle(row: FixOutcome, verdict: str, reason: str, at: datetime | None = None) -> None:
    row.verdict, row.verdict_reason = verdict, reason
    row.settled_at = (at or utcnow()) if verdict not in UNSETTLED else None


def expire_open(session: Session, days: int, now: datetime | None = None) -> int:
    """Fix pull requests still open ``days`` after delivery are reported as such (they may still merge)."""
    cutoff = (now or utcnow()) - timedelta(days=days)
    rows = session.scalars(select(FixOutcome).where(
        FixOutcome.how == "pull_request", FixOutcome.verdict == "pending", FixOutcome.delivered_at < cutoff))
    count = 0
    for row in rows:
        settle(row, "open", f"fix pull request #{row.fix_pr_number} still open after {days} days")
        count += 1
    return count


# ------------------------------------------------------------------------------------------ verdicts


def suggestions_verdict(states: Iterable[str], closed: bool, merged: bool) -> tuple[str, str] | None:
    """Suggestions (or a patch in a comment): accepted once every block is applied, or when the pull
    request closes with some applied; rejected when all are dismissed, or it closes with none applied.
    None: still waiting."""
    states = list(states)
    applied = sum(1 for s in states if s == APPLIED)
    summary = f"{applied} of {len(states)} suggested change{'s' if len(states) != 1 else ''} applied"
    if states and applied == len(states):
        return "accepted", summary
    if states and all(s == DISMISSED for s in states):
        return "rejected", f"{summary}: dismissed without applying"
    if closed:
        where = "merged" if merged else "closed"
        if applied:
            return "accepted", f"{summary} when the pull request was {where}"
        return ("rejected", f"pull request {where} without the suggested changes") if merged \
            else ("closed", "pull request closed without merging or applying the suggestions")
    return None


def commit_verdict(in_history: bool, present: bool, closed: bool, merged: bool,
                   later_head: str) -> tuple[str, str] | None:
    """A fix commit on the pull request's branch: kept when the pull request merges with it in its
    history and its changes still there; overwritten (force push) or reverted otherwise."""
    if not in_history:
        return "rejected", f"overwritten by a later push ({later_head[:7]})"
    if not closed:
        return None
    if not merged:
        return "closed", "pull request closed without merging"
    if not present:
        return "rejected", "reverted by a later commit before the merge"
    return "accepted", "merged with the fix commit in the branch"


def pull_request_verdict(merged: bool, number: int | None) -> tuple[str, str]:
    if merged:
        return "accepted", f"fix pull request #{number} merged"
    return "rejected", f"fix pull request #{number} closed without merging"
