"""Setup by App manifest, end to end against the fake GitHub: the page, GitHub's "create" page, the
callback that redeems the code, credentials stored 0600, and webhooks then accepted with the stored
secret. Environment settings win over stored ones."""

from __future__ import annotations

import html
import json
import re
import stat

import httpx
import pytest
from fastapi.testclient import TestClient

from app.cli import main as qwenfix
from app.main import create_app
from core import stored_app
from core.config import Settings
from tests.support.people import sign_in
from tests.webhook_payloads import encode, headers

DEAD_BROKER = "redis://127.0.0.1:1/0"


def fresh_settings(tmp_path, fake_github, database_url, **overrides) -> Settings:
    """A server on its defaults: no App id, key or webhook secret anywhere."""
    values = dict(data_dir=tmp_path / "data", database_url=database_url, broker_url=DEAD_BROKER,
                  github_api_url=fake_github.url, github_url=fake_github.server_url,
                  public_url="http://testserver")
    values.update(overrides)
    return Settings(_env_file=None, **values)


def form_of(page: str) -> tuple[str, dict[str, str]]:
    """The manifest form: where it posts and its fields, as a browser reads them."""
    match = re.search(r'<form method="post" action="([^"]+)">(.*?)</form>', page, re.S)
    assert match, page
    fields = {name: html.unescape(value) for name, value in
              re.findall(r'name="([^"]+)" value="([^"]*)"', match.group(2))}
    return html.unescape(match.group(1)), fields


def register(client: TestClient, fake_github, org: str | None = "octo") -> httpx.Response:
    """What a person does: open /setup, press Create, press GitHub's Create, come back."""
    page = client.get("/setup", params={"org": org} if org else None)
    assert page.status_code == 200, page.text
    action, fields = form_of(page.text)
    with httpx.Client() as browser:
        confirm = browser.post(action, data=fields)
        assert confirm.status_code == 200 and "Create GitHub App for" in confirm.text
        ticket = re.search(r"name='ticket' value='([^']+)'", confirm.text).group(1)
        back = browser.post(fake_github.server_url + "/settings/apps/new/confirm",
                            data={"ticket": ticket})
    assert back.status_code == 302
    callback = back.headers["location"]
    assert callback.startswith("http://testserver/setup/callback?")
    return client.get(callback.removeprefix("http://testserver"), follow_redirects=False)


def test_fresh_install_leads_to_setup_and_registers_the_app_on_the_organization(
        tmp_path, fake_github, database_url):
    settings = fresh_settings(tmp_path, fake_github, database_url)
    with TestClient(create_app(settings, sweep=False)) as client:
        home = client.get("/", follow_redirects=False)
        assert home.status_code in (302, 303, 307) and home.headers["location"] == "/setup"
        page = client.get("/setup", params={"org": "octo"}).text
        action, fields = form_of(page)
        assert action.startswith(f"{fake_github.server_url}/organizations/octo/settings/apps/new?state=")
        manifest = json.loads(fields["manifest"])
        assert manifest["hook_attributes"]["url"] == "http://testserver/webhooks/github"
        assert manifest["redirect_url"] == "http://testserver/setup/callback"
        assert manifest["public"] is False
        assert manifest["default_permissions"]["contents"] == "write"
        assert "workflow_run" in manifest["default_events"]

        done = register(client, fake_github)
        assert done.status_code == 303
        assert done.headers["location"] == f"{fake_github.server_url}/apps/qwenfix-octo/installations/new"

        created = fake_github.created_apps[0]
        assert created["account"] == "octo"
        assert fake_github.calls("POST", "re:/app-manifests/[0-9a-f]+/conversions")[0].status == 201
        path = stored_app.path(settings.data_dir)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        stored = json.loads(path.read_text())
        assert stored == {"app_id": str(fake_github.app_id), "app_slug": "qwenfix-octo",
                          "private_key": fake_github.private_key_pem,
                          "webhook_secret": created["webhook_secret"],
                          "client_id": fake_github.client_id,
                          "client_secret": fake_github.client_secret}

        # the running app now takes webhooks signed with the secret it stored, and only those
        body = encode({"zen": "Design for failure.", "hook_id": 1})
        good = client.post("/webhooks/github", content=body,
                           headers=headers(created["webhook_secret"], body, "ping"))
        assert good.status_code == 200 and good.json()["ok"] is True
        bad = client.post("/webhooks/github", content=body, headers=headers("guess", body, "ping"))
        assert bad.status_code == 401

        # an App is configured: the setup page is for admins only; people sign in with the new App
        assert client.get("/setup", follow_redirects=False).headers["location"] == "/login?next=%2Fsetup"
        assert client.get("/", follow_redirects=False).headers["location"] == "/login"
        assert sign_in(client, fake_github, "someone").status_code == 303
        assert client.get("/setup").status_code == 404

    # a restarted server reads them too
    again = Settings(_env_file=None, data_dir=settings.data_dir)
    assert again.app_id == str(fake_github.app_id) and again.app_configured
    assert again.client_secret.get_secret_value() == fake_github.client_secret


def test_personal_account_setup_posts_to_the_personal_page(tmp_path, fake_github, database_url):
    settings = fresh_settings(tmp_path, fake_github, database_url)
    with TestClient(create_app(settings, sweep=False)) as client:
        page = client.get("/setup").text
        assert "GitHub cannot deliver webhooks" not in page
        action, _ = form_of(page)
        assert action.startswith(f"{fake_github.server_url}/settings/apps/new?state=")
        assert client.get("/setup", params={"org": "bad org!"}).status_code == 400


def test_environment_settings_win_over_stored_ones(tmp_path, fake_github, database_url):
    stored_app.save(tmp_path / "data", {"app_id": "1", "webhook_secret": "stored-secret",
                                        "private_key": "PEM", "client_id": "Iv1.stored"})
    settings = fresh_settings(tmp_path, fake_github, database_url, webhook_secret="env-secret",
                              client_id="Iv1.env")
    assert settings.webhook_secret.get_secret_value() == "env-secret"
    assert settings.client_id == "Iv1.env" and settings.app_id == "1"
    keyed = fresh_settings(tmp_path, fake_github, database_url, private_key_path=tmp_path / "k.pem")
    assert keyed.private_key.get_secret_value() == ""  # a key file in the environment wins too


def test_a_callback_whose_state_does_not_match_is_refused(tmp_path, fake_github, database_url):
    settings = fresh_settings(tmp_path, fake_github, database_url)
    with TestClient(create_app(settings, sweep=False)) as client:
        client.get("/setup")
        answer = client.get("/setup/callback", params={"code": "abc", "state": "forged"})
    assert answer.status_code == 400 and "expired" in answer.text
    assert not fake_github.calls("POST", "re:/app-manifests/.*")
    assert not stored_app.path(settings.data_dir).exists()


def test_a_used_code_says_to_start_again(tmp_path, fake_github, database_url):
    settings = fresh_settings(tmp_path, fake_github, database_url)
    with TestClient(create_app(settings, sweep=False)) as client:
        client.get("/setup")
        state = client.cookies.get("qwenfix_setup_state")
        answer = client.get("/setup/callback", params={"code": "0" * 20, "state": state})
    assert answer.status_code == 400 and "start again" in answer.text


def test_operator_who_keeps_secrets_elsewhere_sees_them_once(tmp_path, fake_github, database_url):
    settings = fresh_settings(tmp_path, fake_github, database_url, store_app_credentials=False)
    with TestClient(create_app(settings, sweep=False)) as client:
        done = register(client, fake_github, org=None)
    assert done.status_code == 200 and done.headers["cache-control"] == "no-store"
    assert f"QWENFIX_APP_ID={fake_github.app_id}" in done.text
    assert "QWENFIX_PRIVATE_KEY=&#34;-----BEGIN RSA PRIVATE KEY-----\\n" in done.text
    assert not stored_app.path(settings.data_dir).exists()


def test_setup_warns_when_github_cannot_reach_the_public_url(tmp_path, fake_github, database_url):
    settings = fresh_settings(tmp_path, fake_github, database_url, public_url="http://127.0.0.1:8000")
    with TestClient(create_app(settings, sweep=False)) as client:
        page = client.get("/setup").text
    assert "GitHub cannot deliver webhooks to http://127.0.0.1:8000" in page


@pytest.mark.parametrize("org, expected", [("octo", "/setup?org=octo"), (None, "/setup")])
def test_cli_prints_the_setup_link(tmp_path, monkeypatch, capsys, org, expected):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("QWENFIX_PUBLIC_URL", "https://qwenfix.example.com")
    from core.config import _from_environment

    _from_environment.cache_clear()
    try:
        assert qwenfix(["setup", *(["--org", org] if org else [])]) == 0
    finally:
        _from_environment.cache_clear()
    assert capsys.readouterr().out.strip() == "https://qwenfix.example.com" + expected
