"""Installations tracked: events and a reconcile with GitHub keep the table right; a suspended or
uninstalled installation's jobs are cancelled and its webhooks start no new ones; the dashboard
lists installations and repositories."""

from __future__ import annotations

from fastapi.testclient import TestClient

from app.main import create_app
from app.reconcile import reconcile_installations
from app.sweep import sweep_forever
from core import installations
from core.db.models import Delivery, Installation, Job
from core.db.session import session_scope
from tests.support.db import SECRET, wait_for
from tests.webhook_payloads import base, encode, headers, workflow_run
from workers import runner

DEAD_BROKER = "redis://127.0.0.1:1/0"


def app_settings(make_settings, fake_github, database_url, **kw):
    return make_settings(database_url=database_url, broker_url=DEAD_BROKER, app_id=str(fake_github.app_id),
                         private_key=fake_github.private_key_pem, github_api_url=fake_github.url, **kw)


def post(client, payload, event):
    body = encode(payload)
    return client.post("/webhooks/github", content=body, headers=headers(SECRET, body, event))


def rows(url) -> dict[int, tuple]:
    with session_scope(url) as session:
        return {r.id: (r.account, r.account_type, r.status, r.repositories)
                for r in installations.listed(session)}


def test_reconcile_records_installations_repositories_suspensions_and_uninstalls(
        make_settings, fake_github, database_url):
    fake_github.add_installation(1, "octo")
    fake_github.add_repo("octo/app", installation_id=1)
    fake_github.add_repo("octo/lib", installation_id=1, private=True)
    fake_github.add_installation(2, "alice", account_type="User")
    fake_github.add_repo("alice/dots", installation_id=2)
    fake_github.suspend_installation(2)
    settings = app_settings(make_settings, fake_github, database_url)
    with session_scope(database_url) as session:
        installations.record(session, 3, account="gone", repositories=["gone/x"])  # uninstalled unseen
        session.add(Job(kind="repair", installation_id=2, repo="alice/dots", trigger="t", idempotency_key="a"))
        session.add(Job(kind="repair", installation_id=3, repo="gone/x", trigger="t", idempotency_key="b",
                        state="running"))
    counts = reconcile_installations(settings)
    assert counts == {"active": 1, "suspended": 1, "deleted": 1}
    assert rows(database_url) == {
        1: ("octo", "Organization", "active", ["octo/app", "octo/lib"]),
        2: ("alice", "User", "suspended", []),
        3: ("gone", None, "deleted", ["gone/x"]),
    }
    with session_scope(database_url) as session:
        jobs = session.query(Job).order_by(Job.id).all()
        assert [(j.state, j.outcome) for j in jobs] == [
            ("cancelled", "the App's installation was suspended"),
            ("cancelled", "the App's installation was deleted"),
        ]
    assert fake_github.calls("GET", "/app/installations")
    assert fake_github.calls("GET", "/installation/repositories")


def test_webhooks_of_a_suspended_installation_start_no_job(make_settings, fake_github, database_url):
    settings = app_settings(make_settings, fake_github, database_url)
    with session_scope(database_url) as session:
        installations.record(session, 7, account="octo", status=installations.SUSPENDED)
    with TestClient(create_app(settings, sweep=False)) as client:
        answer = post(client, workflow_run(installation=7), "workflow_run").json()
        other = post(client, workflow_run(installation=8), "workflow_run").json()
    assert answer["job"] is None and answer["reason"] == "installation 7 is suspended"
    assert other["job"] is not None
    with session_scope(database_url) as session:
        assert session.get(Delivery, answer["delivery"]).status == "ignored"


def test_suspend_and_unsuspend_events_cancel_jobs_then_take_new_ones(make_settings, database_url):
    settings = make_settings(database_url=database_url, broker_url=DEAD_BROKER)
    event = {**base(installation=5), "installation": {"id": 5, "account": {"login": "octo"}}}
    with TestClient(create_app(settings, sweep=False)) as client:
        created = post(client, {**event, "action": "created", "repositories": [{"full_name": "octo/a"}]},
                       "installation").json()["job"]
        runner.run_job(created, settings)
        queued = post(client, workflow_run(installation=5), "workflow_run").json()["job"]
        suspend = post(client, {**event, "action": "suspend"}, "installation").json()["job"]
        runner.run_job(suspend, settings)
        refused = post(client, workflow_run(installation=5, sha="c" * 40), "workflow_run").json()
        unsuspend = post(client, {**event, "action": "unsuspend"}, "installation").json()["job"]
        runner.run_job(unsuspend, settings)
        welcome = post(client, workflow_run(installation=5, sha="d" * 40), "workflow_run").json()
    with session_scope(database_url) as session:
        assert session.get(Job, queued).state == "cancelled"
        assert session.get(Installation, 5).status == "active"
        assert session.get(Installation, 5).repositories == ["octo/a"]
    assert refused["job"] is None and "suspended" in refused["reason"]
    assert welcome["job"] is not None


def test_a_job_queued_before_the_suspension_is_cancelled_when_a_worker_takes_it(make_settings, database_url):
    settings = make_settings(database_url=database_url, broker_url=DEAD_BROKER)
    with session_scope(database_url) as session:
        session.add(Job(kind="repair", installation_id=6, repo="octo/a", trigger="t", idempotency_key="k"))
        session.add(Installation(id=6, account="octo", repositories=[], active=False, status="deleted"))
    assert runner.run_job(1, settings) is None
    with session_scope(database_url) as session:
        job = session.get(Job, 1)
        assert (job.state, job.outcome) == ("cancelled", "installation 6 is deleted")


def test_the_sweep_reconciles_at_start(make_settings, fake_github, postgres_url):
    fake_github.add_installation(11, "octo")
    fake_github.add_repo("octo/app", installation_id=11)
    settings = app_settings(make_settings, fake_github, postgres_url)
    with TestClient(create_app(settings)):
        wait_for(lambda: rows(postgres_url).get(11), message="the reconcile at start")
    assert rows(postgres_url)[11] == ("octo", "Organization", "active", ["octo/app"])
    assert sweep_forever  # the lifespan's sweep did it
