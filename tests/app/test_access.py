"""Who sees what, for every route of the app, listed from the app's own router: a route added
without an access rule, or without a row in MATRIX below, fails here.

Four people: nobody signed in, a signed-in person who cannot read the job's repository on GitHub,
one who can (read access, through the fake GitHub's /user/installations), and an admin
(QWENFIX_ADMINS) who has no access on GitHub at all. Everyone signs in through the real OAuth flow.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient

from app.access import route_rules
from app.main import create_app
from core import installations
from core.db.models import FixOutcome, Job
from core.db.session import session_scope
from tests.support.people import BASE, csrf_of, sign_in

DEAD_BROKER = "redis://127.0.0.1:1/0"
PEOPLE = ("anonymous", "stranger", "reader", "admin")
RULES = {"public", "metrics", "setup", "signed_in", "job_reader", "job_writer"}
LOGIN = "login"  # a redirect to /login?next=...


@dataclass
class World:
    clients: dict[str, TestClient]
    readable: int  # a job on octo/app, which `reader` may read
    hidden: int  # a job on octo/secret, which only the admin sees
    sync: int  # an installation job (no repository): admins only
    settings: object


@pytest.fixture
def world(fake_github, make_settings, database_url):
    fake_github.add_installation(1, "octo")
    fake_github.add_repo("octo/app", installation_id=1, private=True)
    fake_github.add_repo("octo/secret", installation_id=1, private=True)
    fake_github.set_permission("octo/app", "reader", "read")
    fake_github.add_repo("elsewhere/tool", installation_id=None)
    fake_github.set_permission("elsewhere/tool", "stranger", "admin")  # not where the App is
    settings = make_settings(
        database_url=database_url, broker_url=DEAD_BROKER, public_url=BASE, admins="Root",
        app_id=str(fake_github.app_id), private_key=fake_github.private_key_pem,
        github_api_url=fake_github.url, github_url=fake_github.server_url,
        client_id=fake_github.client_id, client_secret=fake_github.client_secret,
        metrics_token="scrape-token-123")
    with session_scope(database_url) as session:
        installations.record(session, 1, account="octo", repositories=["octo/app", "octo/secret"])
        ids = []
        for repo, kind in (("octo/app", "repair"), ("octo/secret", "repair"), (None, "installation_sync")):
            job = Job(kind=kind, installation_id=1, repo=repo, trigger=f"t-{kind}-{repo}",
                      idempotency_key=f"k-{repo}", state="failed", outcome="no verified fix",
                      result={"patch": "--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n"})
            session.add(job)
            session.flush()
            ids.append(job.id)
    app = create_app(settings, sweep=False)
    clients = {name: TestClient(app) for name in PEOPLE}
    for name in clients.values():
        name.__enter__()
    for name in ("stranger", "reader", "admin"):
        login = "root" if name == "admin" else name
        assert sign_in(clients[name], fake_github, login).status_code == 303
    try:
        yield World(clients, ids[0], ids[1], ids[2], settings)
    finally:
        for client in clients.values():
            client.__exit__(None, None, None)


def expect(anonymous, stranger, reader, admin):
    return dict(zip(PEOPLE, (anonymous, stranger, reader, admin), strict=True))


SAME = lambda code: expect(code, code, code, code)  # noqa: E731
SIGNED_IN_PAGE = expect(LOGIN, 200, 200, 200)
# (method, path) -> (the request's concrete URL, who gets which answer)
MATRIX = {
    ("POST", "/webhooks/github"): ("/webhooks/github", SAME(401)),  # only GitHub's signature counts
    ("GET", "/healthz"): ("/healthz", SAME(200)),
    ("GET", "/readyz"): ("/readyz", SAME(503)),  # the broker is down here; nobody is refused
    ("GET", "/metrics"): ("/metrics", SAME(401)),  # only the metrics token opens it
    ("GET", "/setup"): ("/setup", expect(LOGIN, 404, 404, 200)),
    ("GET", "/setup/callback"): ("/setup/callback", expect(LOGIN, 404, 404, 400)),
    ("GET", "/login"): ("/login", SAME(200)),
    ("GET", "/auth/github"): ("/auth/github", SAME(303)),
    ("GET", "/auth/callback"): ("/auth/callback", SAME(400)),
    ("POST", "/logout"): ("/logout", expect(LOGIN, 403, 403, 403)),  # no CSRF token: refused
    ("GET", "/"): ("/", expect(LOGIN, 200, 200, 200)),
    ("GET", "/jobs"): ("/jobs", SIGNED_IN_PAGE),
    ("GET", "/jobs/{job_id}"): ("/jobs/{readable}", expect(LOGIN, 404, 200, 200)),
    ("POST", "/jobs/{job_id}/retry"): ("/jobs/{readable}/retry", expect(LOGIN, 404, 403, 403)),
    ("POST", "/jobs/{job_id}/stop"): ("/jobs/{readable}/stop", expect(LOGIN, 404, 403, 403)),
    ("GET", "/installations"): ("/installations", SIGNED_IN_PAGE),
    ("GET", "/tokens"): ("/tokens", SIGNED_IN_PAGE),
    ("POST", "/tokens"): ("/tokens", expect(LOGIN, 403, 403, 403)),
    ("POST", "/tokens/{token_id}/revoke"): ("/tokens/1/revoke", expect(LOGIN, 403, 403, 403)),
    ("GET", "/docs"): ("/docs", SIGNED_IN_PAGE),
    ("GET", "/openapi.json"): ("/openapi.json", expect(401, 200, 200, 200)),
    ("GET", "/api/jobs"): ("/api/jobs", expect(401, 200, 200, 200)),
    ("GET", "/api/budgets"): ("/api/budgets", expect(401, 404, 404, 200)),
    ("GET", "/api/jobs/{job_id}"): ("/api/jobs/{readable}", expect(401, 404, 200, 200)),
    ("GET", "/api/jobs/{job_id}/trajectory"): ("/api/jobs/{readable}/trajectory", expect(401, 404, 200, 200)),
    ("GET", "/outcomes"): ("/outcomes", SIGNED_IN_PAGE),  # each sees the fixes of what they may read
    ("GET", "/api/outcomes"): ("/api/outcomes", expect(401, 200, 200, 200)),
    ("GET", "/jobs/{job_id}/audit"): ("/jobs/{readable}/audit", expect(LOGIN, 404, 200, 200)),
    ("GET", "/api/jobs/{job_id}/audit"): ("/api/jobs/{readable}/audit", expect(401, 404, 200, 200)),
}


def call(client: TestClient, method: str, url: str):
    return client.request(method, url, follow_redirects=False)


def outcome(response) -> int | str:
    if response.status_code == 303 and response.headers["location"].split("?")[0] == "/login":
        return LOGIN
    return response.status_code


def test_every_route_has_one_rule_and_a_row_in_the_matrix(world):
    routes = route_rules(world.clients["anonymous"].app)
    without_rule = [(m, p) for m, p, rules in routes if len(rules) != 1 or rules[0] not in RULES]
    assert without_rule == []
    listed = {(m, p) for m, p, _ in routes}
    assert listed - set(MATRIX) == set(), "a route without an access expectation"
    assert set(MATRIX) - listed == set(), "an expectation for a route that is gone"


def test_who_gets_what(world):
    wrong = {}
    for route, (url, expected) in sorted(MATRIX.items()):
        url = url.format(readable=world.readable)
        got = {name: outcome(call(world.clients[name], route[0], url)) for name in PEOPLE}
        if got != expected:
            wrong[route] = {"got": got, "expected": expected}
    assert wrong == {}


@pytest.mark.parametrize("path", ["/jobs/{id}", "/api/jobs/{id}", "/api/jobs/{id}/trajectory", "/jobs/{id}/audit",
                                  "/api/jobs/{id}/audit"])
def test_a_hidden_job_answers_like_a_missing_one(world, path):
    for name in ("stranger", "reader"):
        hidden = call(world.clients[name], "GET", path.format(id=world.hidden))
        missing = call(world.clients[name], "GET", path.format(id=99999))
        assert (hidden.status_code, hidden.text) == (missing.status_code, missing.text) == (404, missing.text)
    anonymous = world.clients["anonymous"]
    for job_id in (world.hidden, 99999):  # nobody signed in: the same answer, whatever the id
        answer = call(anonymous, "GET", path.format(id=job_id))
        if path.startswith("/api/"):
            assert (answer.status_code, answer.json()) == (401, {"detail": "sign in, or send a personal API token as a bearer token"})
        else:
            assert (answer.status_code, answer.headers["location"]) == (303, "/login?" + urlencode({"next": path.format(id=job_id)}))
    assert call(world.clients["admin"], "GET", path.format(id=world.hidden)).status_code == 200


def test_lists_show_each_person_only_their_jobs(world):
    def ids(name):
        return [j["id"] for j in world.clients[name].get("/api/jobs").json()["jobs"]]

    assert ids("stranger") == []
    assert ids("reader") == [world.readable]
    assert ids("admin") == [world.sync, world.hidden, world.readable]
    reader_page = world.clients["reader"].get("/jobs").text
    assert f'href="/jobs/{world.readable}"' in reader_page and f'href="/jobs/{world.hidden}"' not in reader_page
    installations = world.clients["reader"].get("/installations").text
    assert "octo/app" in installations and "octo/secret" not in installations


def test_fix_outcomes_show_each_person_only_their_repositories(world):
    with session_scope(world.settings.database_url) as session:
        for job_id, repo in ((world.readable, "octo/app"), (world.hidden, "octo/secret")):
            session.add(FixOutcome(job_id=job_id, repo=repo, model="qwen3-coder-test", how="commit",
                                   verdict="accepted"))

    def repos(name):
        return sorted(row["repo"] for row in world.clients[name].get("/api/outcomes").json()["rows"])

    assert repos("stranger") == []
    assert repos("reader") == ["octo/app"]
    assert repos("admin") == ["octo/app", "octo/secret"]
    page = world.clients["reader"].get("/outcomes").text
    assert f'href="/jobs/{world.readable}"' in page and "octo/secret" not in page
    assert "octo/secret" in world.clients["admin"].get("/outcomes").text


def test_metrics_open_to_the_metrics_token_only(world):
    client = world.clients["anonymous"]
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    scraped = client.get("/metrics", headers={"Authorization": "Bearer scrape-token-123"})
    assert scraped.status_code == 200 and 'qwenfix_jobs{kind="repair",state="failed"} 2.0' in scraped.text


def test_personal_api_tokens_act_as_their_owner_until_revoked(world):
    reader = world.clients["reader"]
    page = reader.get("/tokens").text
    made = reader.post("/tokens", data={"name": "ci script", "csrf": csrf_of(page)})
    assert made.status_code == 200 and made.headers["cache-control"] == "no-store"
    token = made.text.split('<pre id="new-token">')[1].split("</pre>")[0]
    assert token.startswith("qwf_")
    bearer = {"Authorization": f"Bearer {token}"}
    api = world.clients["anonymous"]
    assert [j["id"] for j in api.get("/api/jobs", headers=bearer).json()["jobs"]] == [world.readable]
    assert api.get(f"/api/jobs/{world.hidden}", headers=bearer).status_code == 404
    with session_scope(world.settings.database_url) as session:
        from core.db.models import ApiToken

        row = session.query(ApiToken).one()
        assert row.token_hash != token and token not in row.token_hash and row.last_used_at
    listing = reader.get("/tokens").text
    assert token not in listing and "ci script" in listing
    revoked = reader.post(f"/tokens/{row.id}/revoke", data={"csrf": csrf_of(listing)}, follow_redirects=False)
    assert revoked.status_code == 303
    assert api.get("/api/jobs", headers=bearer).status_code == 401
    # someone else cannot revoke (or learn about) another person's token
    stranger = world.clients["stranger"]
    other = stranger.post(f"/tokens/{row.id}/revoke", data={"csrf": csrf_of(stranger.get("/tokens").text)})
    assert other.status_code == 404
