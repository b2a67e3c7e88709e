"""core.github against the fake GitHub server, through the real githubkit client."""

from __future__ import annotations

import logging
import socket

import pytest
from githubkit.exception import RequestFailed
from githubkit.versions import LATEST_VERSION

from core.config import Settings
from core.github import (
    GitHubApp,
    GitHubAppError,
    RateLimited,
    is_transient,
    retry_after,
    status_code,
)

REPO = "octo/app"


def settings_for(fake, **overrides) -> Settings:
    values = {
        "app_id": str(fake.app_id),
        "private_key": fake.private_key_pem,
        "github_api_url": fake.url,
        "github_api_version": LATEST_VERSION,  # the fake speaks it; test_api_version.py chooses
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@pytest.fixture
def gh_fake(fake_github):
    fake_github.add_installation(7, "octo")
    fake_github.add_repo(REPO, {"README.md": "hello\n"}, installation_id=7)
    fake_github.add_repo("octo/other", {"README.md": "other\n"}, installation_id=7)
    return fake_github


class Clock:
    def __init__(self) -> None:
        import time

        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def test_token_exchange_comes_first_is_narrowed_and_cached(gh_fake):
    app = GitHubApp(settings_for(gh_fake))
    gh = app.installation_client(7, REPO)
    assert gh.rest.repos.get("octo", "app").parsed_data.full_name == REPO
    assert gh.rest.repos.get("octo", "app").status_code == 200

    paths = [(r.method, r.path) for r in gh_fake.requests]
    assert paths == [
        ("POST", "/app/installations/7/access_tokens"),
        ("GET", "/repos/octo/app"),
        ("GET", "/repos/octo/app"),
    ]
    exchange = gh_fake.token_exchanges()[0]
    assert exchange.json == {"repositories": ["app"]}
    assert exchange.authorization.startswith("Bearer ")  # the app JWT
    (token,) = gh_fake.tokens
    assert gh_fake.tokens[token].repositories == [REPO]
    assert all(r.authorization == f"token {token}" for r in gh_fake.calls("GET"))

    # the same token for git, no new exchange; the narrowed token cannot see other repos
    assert app.installation_token(7, REPO) == token
    assert len(gh_fake.token_exchanges()) == 1
    with pytest.raises(RequestFailed) as err:
        gh.rest.repos.get("octo", "other")
    assert err.value.response.status_code == 404

    # another repository is another token
    other = app.installation_token(7, "octo/other")
    assert other != token and len(gh_fake.token_exchanges()) == 2
    assert gh_fake.token_exchanges()[1].json == {"repositories": ["other"]}


def test_token_refreshed_five_minutes_before_expiry(gh_fake):
    clock = Clock()
    app = GitHubApp(settings_for(gh_fake), clock=clock)
    first = app.installation_token(7, REPO)
    clock.now += 3600 - 5 * 60 - 30  # still more than 5 minutes left
    assert app.installation_token(7, REPO) == first
    assert len(gh_fake.token_exchanges()) == 1
    clock.now += 60  # now inside the margin
    second = app.installation_token(7, REPO)
    assert second != first and len(gh_fake.token_exchanges()) == 2


def test_revoked_token_is_replaced_transparently(gh_fake):
    app = GitHubApp(settings_for(gh_fake))
    gh = app.installation_client(7, REPO)
    gh.rest.repos.get("octo", "app")
    gh_fake.revoke_tokens()
    assert gh.rest.repos.get("octo", "app").status_code == 200
    assert [r.status for r in gh_fake.calls("GET", "/repos/octo/app")] == [200, 401, 200]
    assert len(gh_fake.token_exchanges()) == 2


def test_whole_installation_token_when_no_repository(gh_fake):
    app = GitHubApp(settings_for(gh_fake))
    gh = app.installation_client(7)
    gh.rest.repos.get("octo", "app")
    gh.rest.repos.get("octo", "other")
    assert gh_fake.token_exchanges()[0].json in (None, {})


def test_describe_app_proves_the_credentials(gh_fake):
    assert GitHubApp(settings_for(gh_fake)).describe_app() == "qwenfix"
    (call,) = gh_fake.requests
    assert (call.method, call.path) == ("GET", "/app")
    assert call.authorization.startswith("Bearer ey")


def test_bad_private_key_is_a_clear_error(gh_fake):
    app = GitHubApp(settings_for(gh_fake, private_key="-----BEGIN RSA PRIVATE KEY-----\nnope\n"))
    with pytest.raises(GitHubAppError, match="not a valid unencrypted PEM key") as err:
        app.installation_client(7, REPO)
    assert "nope" not in str(err.value)
    assert gh_fake.requests == []

    with pytest.raises(GitHubAppError, match="QWENFIX_PRIVATE_KEY"):
        GitHubApp(settings_for(gh_fake, private_key="")).installation_token(7, REPO)


def test_key_of_another_app_is_refused_with_a_clear_error(gh_fake):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()).decode()
    app = GitHubApp(settings_for(gh_fake, private_key=other))
    with pytest.raises(GitHubAppError, match="refused the app's JSON web token") as err:
        app.installation_token(7, REPO)
    assert err.value.status == 401 and not is_transient(err.value)


def test_key_with_escaped_newlines_from_an_env_line(gh_fake):
    one_line = gh_fake.private_key_pem.strip().replace("\n", "\\n")
    app = GitHubApp(settings_for(gh_fake, private_key=one_line))
    assert app.installation_token(7, REPO).startswith("ghs_")


def test_enterprise_base_url_with_path_prefix(gh_fake):
    app = GitHubApp(settings_for(gh_fake, github_api_url=gh_fake.enterprise_url))
    gh = app.installation_client(7, REPO)
    assert gh.rest.repos.get("octo", "app").status_code == 200
    assert [r.raw_path for r in gh_fake.requests] == [
        "/api/v3/app/installations/7/access_tokens",
        "/api/v3/repos/octo/app",
    ]


def test_uninstalled_app_and_inaccessible_repository(gh_fake):
    app = GitHubApp(settings_for(gh_fake))
    with pytest.raises(GitHubAppError, match="installation 99 not found"):
        app.installation_token(99, REPO)
    with pytest.raises(GitHubAppError, match="no access to octo/secret"):
        app.installation_token(7, "octo/secret")


def test_transient_failures_are_classified(gh_fake):
    app = GitHubApp(settings_for(gh_fake), auto_retry=False)
    gh = app.installation_client(7, REPO)
    gh.rest.repos.get("octo", "app")

    gh_fake.fail_next("GET", "/repos/octo/app", 502)
    with pytest.raises(RequestFailed) as err:
        gh.rest.repos.get("octo", "app")
    assert is_transient(err.value) and retry_after(err.value) is None
    assert status_code(err.value) == 502

    gh_fake.fail_next("GET", "/repos/octo/app", 403, {"retry-after": "7"})
    with pytest.raises(RequestFailed) as err:
        gh.rest.repos.get("octo", "app")
    assert is_transient(err.value) and retry_after(err.value) == 7.0

    gh_fake.fail_next("GET", "/repos/octo/app", 403, message="Resource not accessible")
    with pytest.raises(RequestFailed) as err:
        gh.rest.repos.get("octo", "app")
    assert not is_transient(err.value)

    with pytest.raises(RequestFailed) as err:
        gh.rest.repos.get_content("octo", "app", "missing")
    assert not is_transient(err.value) and status_code(err.value) == 404

    # wrapped by a caller, still recognised
    try:
        try:
            gh_fake.fail_next("GET", "/repos/octo/app", 503)
            gh.rest.repos.get("octo", "app")
        except RequestFailed as inner:
            raise RuntimeError("delivery failed") from inner
    except RuntimeError as outer:
        assert is_transient(outer)

    # nothing listening
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    dead = GitHubApp(settings_for(gh_fake, github_api_url=f"http://127.0.0.1:{port}"),
                     auto_retry=False)
    with pytest.raises(Exception) as err:
        dead.installation_token(7, REPO)
    assert is_transient(err.value)


def test_failures_of_the_token_exchange_inside_a_request(gh_fake):
    app = GitHubApp(settings_for(gh_fake), auto_retry=False)
    gh_fake.fail_next("POST", "/app/installations/7/access_tokens", 502)
    gh = app.installation_client(7, REPO)  # keep the client: githubkit holds it weakly
    with pytest.raises(Exception) as err:
        gh.rest.repos.get("octo", "app")
    assert is_transient(err.value) and status_code(err.value) == 502
    gone = app.installation_client(99, REPO)
    with pytest.raises(Exception) as err:
        gone.rest.repos.get("octo", "app")
    assert not is_transient(err.value) and status_code(err.value) == 404
    assert "installation 99 not found" in repr(err.value) + str(err.value.__cause__)
    # with in-process retries the 502 is absorbed
    gh_fake.fail_next("POST", "/app/installations/7/access_tokens", 502)
    gh = GitHubApp(settings_for(gh_fake)).installation_client(7, REPO)
    assert gh.rest.repos.get("octo", "app").status_code == 200


def test_short_failures_are_retried_in_process(gh_fake):
    app = GitHubApp(settings_for(gh_fake, github_max_wait_s=60))
    gh = app.installation_client(7, REPO)
    gh.rest.repos.get("octo", "app")
    gh_fake.fail_next("GET", "/repos/octo/app", 502)
    assert gh.rest.repos.get("octo", "app").status_code == 200
    assert [r.status for r in gh_fake.calls("GET", "/repos/octo/app")] == [200, 502, 200]
    # a rate-limit wait longer than a job waits in place is not slept through: the caller retries later
    gh_fake.fail_next("GET", "/repos/octo/app", 403, {"retry-after": "120"})
    with pytest.raises(RateLimited) as err:
        gh.rest.repos.get("octo", "app")
    assert is_transient(err.value) and retry_after(err.value) == pytest.approx(120, abs=2)
    # and the pause holds every request of the installation, not only the one that met it
    with pytest.raises(RateLimited):
        gh.rest.repos.get("octo", "other")
    assert [r.status for r in gh_fake.calls("GET", "/repos/octo/app")] == [200, 502, 200, 403]


def test_tokens_and_key_never_logged(gh_fake, caplog):
    caplog.set_level(logging.DEBUG)
    app = GitHubApp(settings_for(gh_fake))
    gh = app.installation_client(7, REPO)
    gh.rest.repos.get("octo", "app")
    gh_fake.fail_next("GET", "/repos/octo/app", 502)
    gh.rest.repos.get("octo", "app")
    (token,) = gh_fake.tokens
    assert "installation token issued" in caplog.text
    assert token not in caplog.text
    assert "PRIVATE KEY" not in caplog.text
    jwt_sent = gh_fake.token_exchanges()[0].token
    assert jwt_sent not in caplog.text
