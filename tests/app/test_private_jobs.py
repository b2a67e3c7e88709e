"""The attack from issue 14, end to end: a webhook for a private repository makes a job whose row
holds the CI failure and the trajectory; then someone who merely reaches the port (as GitHub must)
asks for it by repository name and by its sequential id, and for the metrics and the API schema.

Fails on main (a628e5a): there every one of these requests answered 200, listing the job and handing
out its params, logs and trajectory (checked by running this file against an export of main's tree).
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from app.main import create_app
from core.db.models import Job
from core.db.session import session_scope
from tests.support.db import SECRET
from tests.webhook_payloads import encode, headers, workflow_run

SECRET_LOG = "FAILED tests/test_billing.py::test_invoice - AssertionError: private-customer-42"


def test_someone_who_reaches_the_port_learns_nothing_about_a_private_repositorys_jobs(make_settings, database_url):
    settings = make_settings(database_url=database_url, broker_url="redis://127.0.0.1:1/0")
    with TestClient(create_app(settings, sweep=False)) as client:
        body = encode(workflow_run(repo="acme/private-billing"))
        job_id = client.post("/webhooks/github", content=body,
                             headers=headers(SECRET, body, "workflow_run")).json()["job"]
        with session_scope(database_url) as session:  # what a worker records for this job
            job = session.get(Job, job_id)
            job.result = {"failure": SECRET_LOG, "patch": "--- a/billing.py\n+++ b/billing.py\n"}
            job.trajectory = [{"tool": "read_file", "arguments": {"path": "billing.py"},
                               "observation": "API_KEY = load('customer-42')"}]

        answers = {
            "list by repository": client.get("/api/jobs", params={"repo": "acme/private-billing"}),
            "job by id": client.get(f"/api/jobs/{job_id}"),
            "trajectory": client.get(f"/api/jobs/{job_id}/trajectory"),
            "job page": client.get(f"/jobs/{job_id}", follow_redirects=False),
            "job list page": client.get("/jobs", follow_redirects=False),
            "metrics": client.get("/metrics"),
            "schema": client.get("/openapi.json"),
            "docs": client.get("/docs", follow_redirects=False),
        }
    leaked = {name: answer.status_code for name, answer in answers.items()
              if answer.status_code == 200 or "private-billing" in answer.text or "customer-42" in answer.text}
    assert leaked == {}
    assert {answers[n].status_code for n in ("list by repository", "job by id", "trajectory", "metrics", "schema")} == {401}
    assert all(answers[n].headers["location"].startswith("/login?next=") for n in ("job page", "job list page", "docs"))
