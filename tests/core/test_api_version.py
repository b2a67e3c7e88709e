"""The REST API version qwenfix speaks: settable; else githubkit's newest on api.github.com, else
what the server lists at GET /versions, else 2022-11-28 — and every request of a client carries it."""

from __future__ import annotations

import pytest
from githubkit.exception import GitHubException
from githubkit.versions import LATEST_VERSION

from core import github
from core.config import Settings
from core.github import GitHubApp, GitHubAppError, api_version, installed_api_versions


@pytest.fixture(autouse=True)
def fresh_choice():
    github._chosen_versions.clear()
    yield
    github._chosen_versions.clear()


def settings_for(fake, url: str, **overrides) -> Settings:
    return Settings(_env_file=None, app_id=str(fake.app_id), private_key=fake.private_key_pem,
                    github_api_url=url, **overrides)


def test_both_versions_githubkit_knows_are_installed():
    assert installed_api_versions() == ["2022-11-28", "2026-03-10"]


def test_api_github_com_gets_githubkits_newest_without_asking():
    assert api_version(Settings(_env_file=None)) == LATEST_VERSION == "2026-03-10"


def test_an_enterprise_server_without_the_versions_endpoint_gets_2022_11_28(fake_github):
    fake_github.api_versions = ["2022-11-28"]  # an Enterprise Server release before GET /versions
    assert api_version(settings_for(fake_github, fake_github.enterprise_url)) == "2022-11-28"
    assert [c.status for c in fake_github.calls("GET", "/versions")] == [404]


def test_a_server_that_lists_versions_gets_the_newest_both_know(fake_github):
    assert api_version(settings_for(fake_github, fake_github.enterprise_url)) == "2026-03-10"
    api_version(settings_for(fake_github, fake_github.enterprise_url))
    assert len(fake_github.calls("GET", "/versions")) == 1  # asked once per server


def test_the_setting_wins_and_a_version_githubkit_lacks_is_a_clear_error(fake_github):
    assert api_version(settings_for(fake_github, fake_github.url, github_api_version="2022-11-28")) == "2022-11-28"
    with pytest.raises(GitHubAppError, match="QWENFIX_GITHUB_API_VERSION=2099-01-01 is not"):
        api_version(settings_for(fake_github, fake_github.url, github_api_version="2099-01-01"))
    assert not fake_github.calls("GET", "/versions")


def test_every_request_carries_the_chosen_version_and_the_old_server_answers(fake_github):
    fake_github.api_versions = ["2022-11-28"]
    fake_github.add_installation(7, "octo")
    fake_github.add_repo("octo/app", installation_id=7)
    app = GitHubApp(settings_for(fake_github, fake_github.enterprise_url))
    client = app.installation_client(7, "octo/app")
    assert client.rest.repos.get("octo", "app").parsed_data.full_name == "octo/app"
    pages = list(client.rest.paginate(client.rest.apps.list_repos_accessible_to_installation,
                                      map_func=lambda r: r.json()["repositories"]))
    assert [r["full_name"] for r in pages] == ["octo/app"]
    sent = [c for c in fake_github.requests if c.path != "/versions"]
    assert {c.headers.get("x-github-api-version") for c in sent} == {"2022-11-28"}
    assert {c.status for c in sent} <= {200, 201}


def test_githubkits_default_version_is_refused_by_such_a_server(fake_github):
    """Why the version must be chosen: the same request with githubkit's default gets a 400."""
    fake_github.api_versions = ["2022-11-28"]
    fake_github.add_installation(7, "octo")
    fake_github.add_repo("octo/app", installation_id=7)
    app = GitHubApp(settings_for(fake_github, fake_github.enterprise_url, github_api_version=LATEST_VERSION))
    client = app.installation_client(7, "octo/app")
    with pytest.raises(GitHubException) as refused:
        client.rest.repos.get("octo", "app")
    assert github.status_code(refused.value) == 400  # already the token exchange is refused
    [exchange] = fake_github.token_exchanges()
    assert exchange.status == 400 and exchange.headers["x-github-api-version"] == LATEST_VERSION
