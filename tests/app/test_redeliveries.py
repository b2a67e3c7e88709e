"""Missed webhook deliveries: the sweep reads the App's delivery log on the fake GitHub and asks for
each failed event once, never one the app recorded."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from fastapi.testclient import TestClient
from sqlalchemy import select

from app.main import create_app
from app.redeliveries import Attempt, to_redeliver
from core.db.models import Delivery, Job
from core.db.session import session_scope
from tests.support.db import SECRET, wait_for
from tests.support.git_http import ServerThread
from tests.webhook_payloads import issue_comment, workflow_run

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=timezone.utc)


def attempt(n: int, guid: str, status: str, minutes: int) -> Attempt:
    return Attempt(n, guid, T0 + timedelta(minutes=minutes), status, 200 if status == "OK" else 0, "workflow_run")


def test_which_events_to_redeliver():
    log = [
        attempt(1, "down-twice", "failed to connect to host", 0),
        attempt(2, "down-twice", "Invalid HTTP Response: 503", 5),
        attempt(3, "fine", "OK", 1),
        attempt(4, "late-ok", "Invalid HTTP Response: 502", 2),
        attempt(5, "late-ok", "OK", 3),  # redelivered by hand since
        attempt(6, "recorded", "timed out", 4),  # the app got it and recorded it, answered too late
        attempt(7, "asked", "failed to connect to host", 6),  # asked for already
    ]
    chosen = to_redeliver(log, recorded={"recorded", "asked"})
    assert [(a.guid, a.id) for a in chosen] == [("down-twice", 2)]  # its latest failed attempt


def test_deliveries_missed_while_the_app_was_down_are_redelivered_once(
        fake_github, make_settings, postgres_url, redis_url):
    settings = make_settings(database_url=postgres_url, broker_url=redis_url, app_id=str(fake_github.app_id),
                             private_key=fake_github.private_key_pem, github_api_url=fake_github.url,
                             sweep_interval_s=0.3, redeliver_interval_s=0.5)
    receiver = ServerThread(create_app(settings, sweep=False))  # its port is reserved, nothing answers yet
    fake_github.webhook_url = f"{receiver.url}/webhooks/github"
    fake_github.webhook_secret = SECRET

    # the app is down: GitHub's attempts fail
    missed = [fake_github.send_webhook("workflow_run", workflow_run(run_id=500 + n, sha=f"{n}" * 40, prs=(n,)))
              for n in range(1, 4)]
    missed.append(fake_github.send_webhook("issue_comment", issue_comment("just a comment")))
    recorded = fake_github.send_webhook("workflow_run", workflow_run(run_id=599, sha="9" * 40, prs=(9,)))
    with session_scope(postgres_url) as session:  # this one reached the app, which answered too late
        session.add(Delivery(id=recorded["guid"], event="workflow_run", action="completed", status="ignored"))
    assert {a["status"] for a in fake_github.webhook_attempts()} == {"failed to connect to host"}

    receiver.start()  # the app is back, and its sweep looks at the delivery log
    try:
        with TestClient(create_app(settings, sweep=True)):
            def all_recorded():
                with session_scope(postgres_url) as session:
                    got = set(session.scalars(select(Delivery.id)))
                return {m["guid"] for m in missed} <= got
            wait_for(all_recorded, timeout=30, message="missed deliveries to be redelivered")
            looks = len(fake_github.calls("GET", "/app/hook/deliveries"))
            wait_for(lambda: len(fake_github.calls("GET", "/app/hook/deliveries")) >= looks + 2, timeout=20,
                     message="two more looks at the delivery log")
    finally:
        receiver.stop()

    asked = fake_github.calls("POST", r"re:/app/hook/deliveries/\d+/attempts")
    assert sorted(int(r.path.split("/")[4]) for r in asked) == sorted(m["id"] for m in missed)  # each once
    for m in missed:
        statuses = [a["status"] for a in fake_github.webhook_attempts(m["guid"])]
        assert statuses == ["failed to connect to host", "OK"]
        assert fake_github.webhook_attempts(m["guid"])[1]["redelivery"] is True
    assert len(fake_github.webhook_attempts(recorded["guid"])) == 1  # never asked: the app has it
    with session_scope(postgres_url) as session:
        assert session.scalar(select(Job.id).where(Job.delivery_id == missed[0]["guid"])) is not None
        assert len(list(session.scalars(select(Job)))) == 3  # the three red builds; the comment is ignored
