"""Secrets never reach the logs; the dashboard shows a job's outcome, patch and trajectory."""

from __future__ import annotations

from fastapi.testclient import TestClient

from app.main import create_app
from core import logs
from core.db.models import Job
from core.db.session import session_scope
from tests.support.people import api_token


def test_secret_values_are_redacted_from_every_log_field(capsys):
    logs.configure("INFO", json=True, secrets=["s3cr3t-webhook-value", "ghs_tokenvalue1234567890"])
    log = logs.get_logger("test")
    log.info("pushing with ghs_tokenvalue1234567890", header="Authorization: token ghs_tokenvalue1234567890",
             note="signed with s3cr3t-webhook-value")
    err = capsys.readouterr().err
    assert "ghs_tokenvalue1234567890" not in err and "s3cr3t-webhook-value" not in err
    assert err.count("[redacted]") == 3


def test_job_page_shows_outcome_patch_candidates_and_trajectory(make_settings, database_url):
    settings = make_settings(database_url=database_url, broker_url="redis://127.0.0.1:1/0", admins="root")
    with session_scope(database_url) as session:
        job = Job(kind="repair", repo="octo/calc", pr_number=7, head_sha="a" * 40, trigger="workflow:1",
                  idempotency_key="k", state="failed", outcome="no verified fix: <script>alert(1)</script>",
                  result={"patch": "--- a/calc.py\n+++ b/calc.py\n-return a - b\n+return a + b\n",
                          "candidates": [{"verified": False, "reasons": ["`pytest` still fails (exit 1)"], "diff_lines": 2}]},
                  trajectory=[{"tool": "read_file", "arguments": {"path": "calc.py"}, "observation": "1  def add(a, b):"}])
        session.add(job)
        session.flush()
        job_id = job.id
    admin = api_token(settings, "root")
    with TestClient(create_app(settings, sweep=False)) as client:
        page = client.get(f"/jobs/{job_id}", headers=admin).text
        listing = client.get("/jobs", headers=admin).text
    assert "no verified fix" in page and "<script>alert(1)</script>" not in page  # escaped
    assert "+return a + b" in page and "still fails (exit 1)" in page and "read_file" in page
    assert f'href="/jobs/{job_id}"' in listing and "octo/calc" in listing
