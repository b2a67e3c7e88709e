"""POST /webhooks/github: every answer a sender can get, and what is stored for each."""

from __future__ import annotations

import asyncio

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.main import create_app
from core.db.models import Delivery, FixOutcome, Job
from core.db.session import session_scope
from tests.support.db import SECRET
from tests.support.people import api_token
from tests.webhook_payloads import (
    REPO,
    base,
    encode,
    headers,
    issue_comment,
    pull_request,
    sign,
    workflow_run,
)

DEAD_BROKER = "redis://127.0.0.1:1/0"  # nothing listens on port 1


@pytest.fixture
def settings(make_settings, database_url):
    return make_settings(database_url=database_url, broker_url=DEAD_BROKER, admins="root",
                         metrics_token="scrape-me-0123")


@pytest.fixture
def client(settings):
    with TestClient(create_app(settings, sweep=False)) as client:
        yield client


def post(client, payload, event, delivery=None, secret=SECRET):
    body = encode(payload)
    return client.post("/webhooks/github", content=body, headers=headers(secret, body, event, delivery))


def count(url, model) -> int:
    with session_scope(url) as session:
        return session.scalar(select(func.count()).select_from(model))


def deliveries(url) -> list[Delivery]:
    with session_scope(url) as session:
        return list(session.scalars(select(Delivery)))


def jobs(url) -> list[Job]:
    with session_scope(url) as session:
        return list(session.scalars(select(Job).order_by(Job.id)))


def test_missing_signature_is_401_and_nothing_is_stored(client, settings):
    body = encode(workflow_run())
    response = client.post(
        "/webhooks/github", content=body, headers={"X-GitHub-Event": "workflow_run", "X-GitHub-Delivery": "d1"}
    )
    assert response.status_code == 401
    assert count(settings.database_url, Delivery) == 0 and count(settings.database_url, Job) == 0


def test_wrong_signature_is_401(client, settings):
    response = post(client, workflow_run(), "workflow_run", secret="not-the-secret")
    assert response.status_code == 401
    assert count(settings.database_url, Delivery) == 0


def test_signature_over_a_different_body_is_401(client, settings):
    body = encode(workflow_run())
    hdrs = headers(SECRET, body, "workflow_run")
    hdrs["X-Hub-Signature-256"] = sign(SECRET, body + b" ")
    assert client.post("/webhooks/github", content=body, headers=hdrs).status_code == 401


def test_no_secret_configured_refuses_everything(make_settings, database_url):
    settings = make_settings(database_url=database_url, webhook_secret="", broker_url=DEAD_BROKER)
    with TestClient(create_app(settings, sweep=False)) as client:
        response = post(client, workflow_run(), "workflow_run")
    assert response.status_code == 401
    assert "not configured" in response.json()["error"]


def _post_streamed(settings, headers: dict[str, str], chunks: int, chunk: bytes = b" " * (1 << 20)):
    """POST a body of ``chunks`` chunks straight to the ASGI app, counting the bytes it asked for."""
    app = create_app(settings, sweep=False)
    read, sent = [], []

    async def receive():
        if len(read) < chunks:
            read.append(len(chunk))
            return {"type": "http.request", "body": chunk, "more_body": len(read) < chunks}
        return {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/webhooks/github", "raw_path": b"/webhooks/github", "query_string": b"", "root_path": "",
             "server": ("testserver", 80), "client": ("127.0.0.1", 5000),
             "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]}
    asyncio.run(app(scope, receive, send))
    return sent[0]["status"], sum(read)


def test_an_unsigned_body_is_refused_before_a_byte_of_it_is_read(settings):
    """Fails on main: the app buffered up to 25 MiB of a body nobody signed before looking at the
    signature header."""
    unsigned = {"X-GitHub-Event": "workflow_run", "X-GitHub-Delivery": "big-1", "Transfer-Encoding": "chunked"}
    status, read = _post_streamed(settings, unsigned, chunks=20)
    assert status == 401 and read == 0
    malformed = dict(unsigned, **{"X-Hub-Signature-256": "sha1=deadbeef"})
    assert _post_streamed(settings, malformed, chunks=20) == (401, 0)


def test_a_signed_looking_body_is_hashed_while_read_and_cut_at_the_limit(settings):
    forged = {"X-GitHub-Event": "workflow_run", "X-GitHub-Delivery": "big-2", "Transfer-Encoding": "chunked",
              "X-Hub-Signature-256": "sha256=" + "0" * 64}
    status, read = _post_streamed(settings, forged, chunks=40)
    assert status == 413 and read <= settings.max_body_bytes + (1 << 20)
    declared = dict(forged, **{"Content-Length": str(settings.max_body_bytes + 1)})
    declared.pop("Transfer-Encoding")
    assert _post_streamed(settings, declared, chunks=40) == (413, 0)  # refused on its declared size
    status, read = _post_streamed(settings, forged, chunks=2)
    assert status == 401 and read == 2 << 20


def test_body_over_25_mib_is_413(client, settings):
    body = b"{" + b" " * (25 * 1024 * 1024) + b"}"
    response = client.post("/webhooks/github", content=body, headers=headers(SECRET, body, "push"))
    assert response.status_code == 413
    assert count(settings.database_url, Delivery) == 0


@pytest.mark.parametrize("body", [b"not json", b"\xff\xfe", b"[1, 2]", b"42"])
def test_body_that_is_not_a_json_object_is_400(client, body):
    response = client.post("/webhooks/github", content=body, headers=headers(SECRET, body, "workflow_run"))
    assert response.status_code == 400


def test_missing_delivery_header_is_400(client):
    body = encode(workflow_run())
    hdrs = headers(SECRET, body, "workflow_run")
    del hdrs["X-GitHub-Delivery"]
    assert client.post("/webhooks/github", content=body, headers=hdrs).status_code == 400


def test_ping_is_200(client):
    response = post(client, {"zen": "Keep it logically awesome.", "hook_id": 1}, "ping")
    assert response.status_code == 200 and response.json()["ok"] is True


def test_unknown_event_is_202_and_recorded_as_ignored(client, settings):
    response = post(client, {"ref": "refs/heads/main"}, "push", delivery="push-1")
    assert response.status_code == 202
    with session_scope(settings.database_url) as session:
        delivery = session.get(Delivery, "push-1")
    assert delivery.status == "ignored" and "push" in delivery.reason
    assert count(settings.database_url, Job) == 0


@pytest.mark.parametrize(
    "event, payload",
    [
        ("workflow_run", {}),
        ("workflow_run", {"action": "completed"}),
        ("workflow_run", {"action": "completed", "installation": {"id": "seven"}, "repository": {}}),
        ("workflow_run", {**workflow_run(), "workflow_run": {"conclusion": "failure", "head_sha": None}}),
        ("workflow_run", {**workflow_run(), "workflow_run": ["not", "a", "dict"]}),
        ("pull_request", {**pull_request(), "pull_request": {"number": 3}}),
        ("issue_comment", {**issue_comment("/qwen fix"), "comment": None}),
        ("check_run", {"action": "completed", "installation": {"id": 1}, "repository": {"full_name": "o/r"}}),
        ("installation", {"action": "created"}),
    ],
)
def test_payloads_missing_what_an_intent_needs_are_ignored_with_a_reason(client, settings, event, payload):
    response = post(client, payload, event, delivery="odd-1")
    assert response.status_code == 202
    with session_scope(settings.database_url) as session:
        delivery = session.get(Delivery, "odd-1")
    assert delivery.status == "ignored" and delivery.reason
    assert count(settings.database_url, Job) == 0


def test_failed_workflow_run_writes_a_queued_repair_job(client, settings):
    response = post(client, workflow_run(sha="f" * 40, prs=(4,)), "workflow_run", delivery="run-1")
    assert response.status_code == 202
    [job] = jobs(settings.database_url)
    assert (job.kind, job.state, job.repo, job.pr_number, job.head_sha) == ("repair", "queued", "octo/widgets", 4, "f" * 40)
    assert job.delivery_id == "run-1" and job.params["run_id"] == 101
    assert response.json()["job"] == job.id


def test_a_forks_red_run_records_where_its_head_lives(client, settings):
    payload = workflow_run(sha="e" * 40, prs=())
    payload["workflow_run"]["head_repository"] = {"full_name": "contributor/widgets", "fork": True}
    post(client, payload, "workflow_run", delivery="fork-run-1")
    [job] = jobs(settings.database_url)
    assert job.pr_number is None and job.params["head_repo"] == "contributor/widgets"


def test_same_delivery_twice_creates_one_job(client, settings):
    first = post(client, workflow_run(), "workflow_run", delivery="dup-1")
    second = post(client, workflow_run(), "workflow_run", delivery="dup-1")
    assert first.status_code == second.status_code == 202
    assert first.json()["job"] == second.json()["job"]
    assert count(settings.database_url, Job) == 1 and count(settings.database_url, Delivery) == 1


def test_a_rerun_of_the_same_failing_workflow_on_the_same_commit_creates_no_second_job(client, settings):
    post(client, workflow_run(run_id=1), "workflow_run", delivery="a")
    post(client, workflow_run(run_id=2), "workflow_run", delivery="b")
    assert count(settings.database_url, Job) == 1
    assert count(settings.database_url, Delivery) == 2


def test_successful_runs_and_bot_commands_create_no_job(client, settings):
    post(client, workflow_run(conclusion="success"), "workflow_run")
    post(client, issue_comment("/qwen fix", sender="dependabot[bot]", sender_type="Bot"), "issue_comment")
    post(client, issue_comment("/qwen fix", action="edited"), "issue_comment")
    post(client, issue_comment("/qwen fix", on_pr=False), "issue_comment")
    post(client, issue_comment("looks good to me"), "issue_comment")
    assert count(settings.database_url, Job) == 0


def test_qwen_command_comment_writes_a_job_of_that_kind(client, settings):
    post(client, issue_comment("please\n/qwen fix the flaky import\nthanks", comment_id=31), "issue_comment")
    [job] = jobs(settings.database_url)
    assert job.kind == "fix" and job.trigger == "comment:31"
    assert job.params["text"].startswith("the flaky import") and job.params["actor"] == "alice"


def test_newer_push_cancels_queued_jobs_for_the_older_head(client, settings):
    post(client, pull_request(action="opened", sha="1" * 40), "pull_request")
    post(client, workflow_run(sha="1" * 40, prs=(1,)), "workflow_run")
    post(client, pull_request(action="synchronize", sha="2" * 40), "pull_request")
    states = {(j.kind, j.head_sha[0]): j.state for j in jobs(settings.database_url)}
    assert states == {("review", "1"): "cancelled", ("repair", "1"): "cancelled", ("review", "2"): "queued"}
    cancelled = [j for j in jobs(settings.database_url) if j.state == "cancelled"]
    assert all("superseded" in j.outcome for j in cancelled)


def test_database_down_is_503(make_settings):
    settings = make_settings(database_url="postgresql://postgres@127.0.0.1:1/none", broker_url=DEAD_BROKER)
    with TestClient(create_app(settings, sweep=False)) as client:
        response = post(client, workflow_run(), "workflow_run")
    assert response.status_code == 503


def test_broker_down_still_answers_202_and_keeps_the_job_queued(client, settings):
    response = post(client, workflow_run(), "workflow_run")
    assert response.status_code == 202
    [job] = jobs(settings.database_url)
    assert job.state == "queued" and job.enqueued_at is None


def test_readyz_reports_a_dead_broker(client):
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["database"] == "ok" and "broker unreachable" in response.json()["broker"]


def test_metrics_count_answers_and_jobs(client):
    post(client, workflow_run(), "workflow_run")
    post(client, workflow_run(), "workflow_run", secret="wrong")
    text = client.get("/metrics", headers={"Authorization": "Bearer scrape-me-0123"}).text
    assert 'qwenfix_webhooks_total{event="workflow_run",result="bad_signature"}' in text
    assert 'qwenfix_jobs{kind="repair",state="queued"} 1.0' in text


def test_jobs_api_lists_and_shows_jobs(client, settings):
    job_id = post(client, workflow_run(), "workflow_run").json()["job"]
    admin = api_token(settings, "root")
    listed = client.get("/api/jobs", headers=admin).json()["jobs"]
    assert [j["id"] for j in listed] == [job_id]
    detail = client.get(f"/api/jobs/{job_id}", headers=admin).json()
    assert detail["kind"] == "repair" and detail["params"]["workflow_name"] == "CI"
    assert client.get("/api/jobs/999", headers=admin).status_code == 404
    assert client.get(f"/jobs/{job_id}", headers=admin).status_code == 200


def test_what_the_apps_own_bot_caused_starts_no_job(client, settings):
    """Its pushes (push, synchronize), its fix pull request being opened, its comments and its check
    suite never make a job; only the CI result of its fix is taken (and repaired within the cap)."""
    own = {"sender": "qwenfix[bot]", "sender_type": "Bot"}
    post(client, pull_request(action="synchronize", sha="3" * 40, **own), "pull_request")
    post(client, pull_request(action="opened", number=2, sha="4" * 40, **own), "pull_request")
    post(client, {**base(**own), "ref": "refs/heads/feature", "before": "3" * 40, "after": "5" * 40, "commits": []},
         "push")
    post(client, issue_comment("/qwen fix", **own), "issue_comment")
    suite = {"id": 8, "head_sha": "5" * 40, "conclusion": "failure", "app": {"id": 424242, "slug": "qwenfix"}}
    post(client, {**base(**own), "action": "completed", "check_suite": suite}, "check_suite")
    assert count(settings.database_url, Job) == 0
    reasons = {d.reason for d in deliveries(settings.database_url)}
    assert "pull_request.synchronize was caused by qwenfix[bot] itself" in reasons
    # a red run on its own fix commit is CI's verdict on the fix: a repair job (capped per day)
    post(client, workflow_run(sha="5" * 40, sender="qwenfix[bot]", sender_type="Bot"),
         "workflow_run")
    [job] = jobs(settings.database_url)
    assert job.kind == "repair" and job.head_sha == "5" * 40


def test_a_ci_result_on_a_fix_commit_is_recorded_as_its_outcome(client, settings):

    with session_scope(settings.database_url) as session:
        session.add(FixOutcome(job_id=1, repo=REPO, model="m", how="commit", delivered_sha="6" * 40, ci_sha="6" * 40))
    post(client, workflow_run(conclusion="success", sha="6" * 40), "workflow_run")
    with session_scope(settings.database_url) as session:
        assert session.scalar(select(FixOutcome.ci)) == "green"
    post(client, workflow_run(sha="6" * 40, run_id=102, workflow_id=56), "workflow_run")  # another workflow, red
    with session_scope(settings.database_url) as session:
        assert session.scalar(select(FixOutcome.ci)) == "red"


def test_a_push_on_a_branch_with_a_fix_awaiting_its_verdict_makes_one_follow_up_job(client, settings):

    with session_scope(settings.database_url) as session:
        session.add(FixOutcome(job_id=1, repo=REPO, model="m", how="suggest", pr_number=1, branch="feature",
                               base_sha="1" * 40))
    post(client, {**base(), "ref": "refs/heads/other", "before": "0" * 40, "after": "9" * 40, "commits": []}, "push")
    assert count(settings.database_url, Job) == 0  # no fix lives on that branch
    post(client, pull_request(action="synchronize", sha="7" * 40), "pull_request", delivery="sync")
    post(client, {**base(), "ref": "refs/heads/feature", "before": "1" * 40, "after": "7" * 40, "commits": []},
         "push", delivery="push")
    post(client, {**base(), "ref": "refs/heads/feature", "before": "1" * 40, "after": "7" * 40, "commits": []},
         "push", delivery="push")  # redelivered
    follow_ups = [j for j in jobs(settings.database_url) if j.kind == "follow_up"]
    assert [(j.head_sha, j.params["observation"], j.params["branch"]) for j in follow_ups] == [("7" * 40, "push", "feature")]
    with session_scope(settings.database_url) as session:
        push = session.get(Delivery, "push")
        assert push.status == "ignored"  # the synchronize delivery made the job; the push adds nothing
        assert session.get(Delivery, "sync").job_id != follow_ups[0].id  # that delivery's own job is its review
