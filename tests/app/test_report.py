"""The fix table per repository and model — `qwenfix report`, the outcomes page, `/metrics` — from
delivered fixes and the model usage of repair jobs."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta, timezone

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.report import fix_table, parse_since, render
from core import audit
from core.db.models import FixOutcome, Job, ModelCall, utcnow
from core.db.session import session_scope
from tests.support.people import api_token

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=timezone.utc)


def seed(database_url: str) -> None:
    now = utcnow()
    with session_scope(database_url) as session:
        for i, kind in enumerate(["repair", "repair", "fix", "review"], 1):
            session.add(Job(id=i, kind=kind, repo="octo/calc", installation_id=1, trigger="t", idempotency_key=f"k{i}",
                            state="succeeded"))
        session.flush()
        fixes = [  # (job, verdict, ci, minutes from red to fix)
            (1, "accepted", "green", 4), (2, "rejected", "red", 10), (3, "pending", None, 6)]
        for job_id, verdict, ci, minutes in fixes:
            session.add(FixOutcome(job_id=job_id, repo="octo/calc", model="qwen3-coder-plus", how="commit",
                                   verdict=verdict, ci=ci, red_at=now - timedelta(minutes=minutes), delivered_at=now))
        session.add(FixOutcome(job_id=9, repo="octo/lint", model="fixer:ruff-format", how="suggest", verdict="accepted",
                               red_at=now - timedelta(seconds=30), delivered_at=now))
        for job_id, tokens, cost in ((1, 3000, 0.03), (2, 5000, 0.05), (3, 2000, 0.02), (4, 90_000, 0.9)):
            session.add(ModelCall(job_id=job_id, repo="octo/calc", installation_id=1, model="qwen3-coder-plus",
                                  prompt_tokens=tokens - 100, completion_tokens=100, cost=cost, at=now))


def test_each_repository_and_model_gets_counts_median_and_spend_per_accepted_fix(database_url):
    seed(database_url)
    with session_scope(database_url) as session:
        calc, lint = fix_table(session, utcnow() - timedelta(days=30))
        assert fix_table(session, utcnow() + timedelta(minutes=5)) == []
        assert [r.repo for r in fix_table(session, None, "octo/lint")] == ["octo/lint"]
    assert (calc.repo, calc.model, calc.delivered, calc.accepted, calc.rejected) == ("octo/calc", "qwen3-coder-plus", 3, 1, 1)
    assert (calc.green_in_ci, calc.red_in_ci, calc.median_red_to_fix_s) == (1, 1, 360.0)
    # what every repair and fix job spent (delivered or not), not the review job, per accepted fix
    assert calc.tokens == 10_000 and calc.tokens_per_accepted_fix == 10_000
    assert calc.cost_per_accepted_fix == pytest.approx(0.10)
    assert (lint.model, lint.accepted, lint.tokens, lint.cost_per_accepted_fix) == ("fixer:ruff-format", 1, 0, None)

    md = render([calc, lint], "md").splitlines()
    assert md[0].startswith("| repository | model | delivered | accepted | rejected | green in CI | red in CI |")
    assert md[2] == "| octo/calc | qwen3-coder-plus | 3 | 1 | 1 | 1 | 1 | 6 min | 10,000 | 0.1000 |"
    assert md[3] == "| octo/lint | fixer:ruff-format | 1 | 1 | 0 | 0 | 0 | 30 s | 0 | — |"
    assert json.loads(render([calc], "json"))[0]["tokens_per_accepted_fix"] == 10_000
    [row] = list(csv.DictReader(io.StringIO(render([calc], "csv"))))
    assert row["repo"] == "octo/calc" and row["accepted"] == "1" and row["median_red_to_fix_s"] == "360.0"


def test_since_takes_a_span_or_a_date():
    assert parse_since("30d", NOW) == NOW - timedelta(days=30)
    assert parse_since("12h", NOW) == NOW - timedelta(hours=12)
    assert parse_since("2w", NOW) == NOW - timedelta(weeks=2)
    assert parse_since("2026-01-31", NOW) == datetime(2026, 1, 31, tzinfo=timezone.utc)
    with pytest.raises(ValueError, match="use a span such as 30d"):
        parse_since("last tuesday", NOW)


def test_outcomes_page_audit_page_and_metrics(make_settings, database_url):
    seed(database_url)
    with session_scope(database_url) as session:
        audit.add(session, "sandbox", {"argv": ["sh", "-c", "pytest -q"], "exit_code": 1, "duration_s": 0.5},
                  job_id=1, repo="octo/calc")
        audit.add(session, "github", {"method": "POST", "path": "/repos/octo/calc/issues/7/comments", "status": 201,
                                      "id": 555}, job_id=1, repo="octo/calc")
    settings = make_settings(database_url=database_url, broker_url="redis://127.0.0.1:1/0", admins="root",
                             metrics_token="scrape-me-0123")
    admin = api_token(settings, "root")  # an admin sees every repository's fixes and records
    with TestClient(create_app(settings, sweep=False), headers=admin) as client:
        page = client.get("/outcomes?since=30d").text
        job_page = client.get("/jobs/1").text
        records = client.get("/jobs/1/audit").text
        api = client.get("/api/jobs/1/audit").json()
        metrics = client.get("/metrics", headers={"Authorization": "Bearer scrape-me-0123"}).text
        bad = client.get("/outcomes?since=yesterday")
    assert "octo/calc" in page and "qwen3-coder-plus" in page and "fixer:ruff-format" in page
    assert 'href="/jobs/1/audit"' in job_page
    assert "sh -c pytest -q → exit 1" in records and "POST /repos/octo/calc/issues/7/comments → 201 555" in records
    assert "accepted" in records  # the fix's outcome beside its records
    assert [r["kind"] for r in api["records"]] == ["sandbox", "github"]
    assert 'qwenfix_fixes{model="qwen3-coder-plus",outcome="accepted",repo="octo/calc"} 1.0' in metrics
    assert 'qwenfix_fixes{model="qwen3-coder-plus",outcome="ci_red",repo="octo/calc"} 1.0' in metrics
    assert 'qwenfix_fix_red_to_fix_seconds_median{model="qwen3-coder-plus",repo="octo/calc"} 360.0' in metrics
    assert 'qwenfix_fix_tokens_per_accepted{model="qwen3-coder-plus",repo="octo/calc"} 10000.0' in metrics
    assert bad.status_code == 400
