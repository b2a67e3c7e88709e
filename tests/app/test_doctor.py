"""`qwenfix doctor` against the fake GitHub: the App's slug must be the one the app knows its bot by."""

from __future__ import annotations

from app.doctor import collect


def test_a_wrong_app_slug_is_named_with_the_right_one(fake_github, make_settings):
    common = dict(app_id=str(fake_github.app_id), private_key=fake_github.private_key_pem,
                  github_api_url=fake_github.url, broker_url="redis://127.0.0.1:1/0")
    [right] = [c for c in collect(make_settings(**common)) if c.name == "GitHub App"]
    assert right.ok and "authenticated as app 'qwenfix'" in right.detail
    [wrong] = [c for c in collect(make_settings(app_slug="qwen-fixer", **common)) if c.name == "GitHub App"]
    assert not wrong.ok and wrong.fix == "set QWENFIX_APP_SLUG=qwenfix"
