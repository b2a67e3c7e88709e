"""Verdicts on delivered fixes, and CI results recorded against the commit that carries a fix."""

from __future__ import annotations

from datetime import timedelta

from core import outcomes
from core.db.models import FixOutcome, utcnow
from core.db.session import session_scope


def test_suggestions_are_accepted_when_applied_and_rejected_when_dismissed():
    assert outcomes.suggestions_verdict(["applied", "applied"], False, False) == ("accepted", "2 of 2 suggested changes applied")
    assert outcomes.suggestions_verdict(["applied", "pending"], False, False) is None
    assert outcomes.suggestions_verdict(["dismissed"], False, False)[0] == "rejected"
    assert outcomes.suggestions_verdict(["applied", "dismissed"], True, True) == (
        "accepted", "1 of 2 suggested changes applied when the pull request was merged")
    assert outcomes.suggestions_verdict(["pending"], True, True)[0] == "rejected"
    assert outcomes.suggestions_verdict(["pending"], True, False)[0] == "closed"


def test_a_fix_commit_counts_when_it_is_still_in_the_branch_at_merge():
    assert outcomes.commit_verdict(True, True, False, False, "b" * 40) is None
    assert outcomes.commit_verdict(False, False, False, False, "b" * 40) == ("rejected", "overwritten by a later push (bbbbbbb)")
    assert outcomes.commit_verdict(True, False, True, True, "b" * 40)[0] == "rejected"
    assert outcomes.commit_verdict(True, True, True, True, "b" * 40)[0] == "accepted"
    assert outcomes.commit_verdict(True, True, True, False, "b" * 40)[0] == "closed"


def test_red_ci_on_the_fix_commit_stays_red(database_url):
    with session_scope(database_url) as session:
        outcomes.record_delivery(session, job_id=1, repo="octo/calc", model="m", how="commit", ci_sha="f" * 40)
        outcomes.record_delivery(session, job_id=1, repo="octo/calc", model="m", how="commit")  # the same job again
    with session_scope(database_url) as session:
        assert [r.ci for r in outcomes.record_ci(session, "octo/calc", "f" * 40, "success", "CI #1")] == ["green"]
        assert outcomes.record_ci(session, "octo/calc", "f" * 40, "cancelled", "CI #2")[:1] == []
        assert [r.ci for r in outcomes.record_ci(session, "octo/calc", "f" * 40, "failure", "Lint #3")] == ["red"]
        assert [r.ci for r in outcomes.record_ci(session, "octo/calc", "f" * 40, "success", "CI #4")] == ["red"]
        assert outcomes.record_ci(session, "octo/other", "f" * 40, "failure", "x") == []
    with session_scope(database_url) as session:
        [row] = session.query(FixOutcome).all()
        assert row.ci == "red" and row.ci_detail == "Lint #3"


def test_fix_pull_requests_open_too_long_are_reported_open(database_url):
    with session_scope(database_url) as session:
        outcomes.record_delivery(session, job_id=1, repo="octo/calc", model="m", how="pull_request",
                                 fix_pr_number=9, delivered_at=utcnow() - timedelta(days=20))
        outcomes.record_delivery(session, job_id=2, repo="octo/calc", model="m", how="pull_request",
                                 fix_pr_number=10)
    with session_scope(database_url) as session:
        assert outcomes.expire_open(session, 14) == 1
    with session_scope(database_url) as session:
        rows = {r.job_id: r for r in session.query(FixOutcome)}
        assert rows[1].verdict == "open" and "still open after 14 days" in rows[1].verdict_reason
        assert rows[2].verdict == "pending"
        assert [r.job_id for r in outcomes.unsettled(session, "octo/calc", pr_number=9)] == [1]  # may still merge
