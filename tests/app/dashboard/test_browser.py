"""The dashboard in a real headless Chromium (Debian's `chromium`, driven by Playwright): sign in
through the fake GitHub's Authorize page, open a job from the list, see its diff, press Retry, sign
out. A screenshot of each page is kept: the test prints where."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from app.main import create_app
from core import installations
from core.db.models import Job, utcnow
from core.db.session import session_scope
from tests.support.db import ROOT
from tests.support.git_http import ServerThread

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(os.environ.get("QWENFIX_TEST_ARTIFACTS", ROOT / "var" / "test-artifacts"))
PATCH = """diff --git a/calc.py b/calc.py
--- a/calc.py
+++ b/calc.py
@@ -1,3 +1,3 @@
 def add(a, b):
-    return a - b
+    return a + b
 
"""


@pytest.fixture
def served(fake_github, make_settings, postgres_url, tmp_path):
    fake_github.add_installation(1, "octo")
    fake_github.add_repo("octo/calc", installation_id=1, private=True)
    fake_github.set_permission("octo/calc", "alice", "write")
    fake_github.browser_login = "alice"  # who GitHub's Authorize page says is signed in
    settings = make_settings(
        database_url=postgres_url, broker_url="redis://127.0.0.1:1/0", app_id=str(fake_github.app_id),
        private_key=fake_github.private_key_pem, github_api_url=fake_github.url,
        github_url=fake_github.server_url, client_id=fake_github.client_id,
        client_secret=fake_github.client_secret)
    now = utcnow()
    with session_scope(postgres_url) as session:
        installations.record(session, 1, account="octo", repositories=["octo/calc"])
        session.add(Job(
            kind="repair", installation_id=1, repo="octo/calc", pr_number=7, head_sha="a" * 40,
            trigger="workflow:ci.yml", idempotency_key="k1", state="succeeded", attempts=1,
            outcome="verified fix delivered as a commit", created_at=now, started_at=now, finished_at=now,
            timings={"reproduce": 2.4, "agent": 9.1, "total": 13.0},
            usage={"prompt_tokens": 5400, "completion_tokens": 610, "model_calls": 3},
            result={"patch": PATCH, "failure": "Job: test\nStep: Run pytest\nCommand:\n    pytest -q\n"
                                               "E   assert add(1, 2) == 3",
                    "delivery": {"how": "commit", "commit_sha": "b" * 40},
                    "candidates": [{"index": 1, "source": "agent", "outcome": "finished", "verified": False,
                                    "reasons": ["`pytest -q` still fails (exit 1)"], "diff_lines": 6},
                                   {"index": 2, "source": "agent", "outcome": "finished", "verified": True,
                                    "reasons": [], "diff_lines": 2, "summary": "add instead of subtract"}]},
            trajectory=[{"candidate": 2, "tool": "read_file", "arguments": {"path": "calc.py"},
                         "observation": "1  def add(a, b):\n2      return a - b", "response": "Let me look.",
                         "prompt_tokens": 1800, "completion_tokens": 40},
                        {"candidate": 2, "tool": "edit_file", "arguments": {"path": "calc.py"},
                         "observation": "edited calc.py", "response": "", "prompt_tokens": 1900,
                         "completion_tokens": 90}]))
    app = create_app(settings, sweep=False)
    server = ServerThread(app)
    app.state.settings = settings.model_copy(update={"public_url": server.url})
    server.start()
    try:
        yield server.url, settings
    finally:
        server.stop()


def test_sign_in_open_a_job_see_its_diff_retry_and_sign_out(served, tmp_path):
    base, settings = served
    assert Path(CHROMIUM).exists(), "install Debian's chromium (scripts/test does)"
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        try:
            page.goto(base + "/")
            expect(page).to_have_url(f"{base}/login")
            page.screenshot(path=shots / "1-sign-in.png", full_page=True)
            page.click("#sign-in")
            expect(page.locator("#authorize")).to_be_visible()  # GitHub's Authorize page
            page.screenshot(path=shots / "2-github-authorize.png", full_page=True)
            page.click("#authorize")
            expect(page).to_have_url(f"{base}/")
            expect(page.locator("#who")).to_have_text("alice")
            expect(page.locator("#per-repo")).to_contain_text("octo/calc")
            page.screenshot(path=shots / "3-overview.png", full_page=True)

            page.click("header >> text=Jobs")
            page.click('a[href="/jobs/1"]')
            expect(page).to_have_url(f"{base}/jobs/1")
            expect(page.locator("#diff .add")).to_have_text("+    return a + b")
            expect(page.locator("#diff .del")).to_have_text("-    return a - b")
            expect(page.locator("#candidates")).to_contain_text("still fails (exit 1)")
            page.screenshot(path=shots / "4-job.png", full_page=True)

            page.click("#retry")
            expect(page).to_have_url(f"{base}/jobs/2")
            expect(page.locator("#state")).to_have_text("queued")
            page.screenshot(path=shots / "5-retried.png", full_page=True)

            page.click("#sign-out")
            expect(page).to_have_url(f"{base}/login")
            page.goto(base + "/jobs/1")
            expect(page).to_have_url(f"{base}/login?next=%2Fjobs%2F1")
            page.screenshot(path=shots / "6-signed-out.png", full_page=True)
        finally:
            kept = ARTIFACTS / f"browser-{time.strftime('%Y%m%d-%H%M%S')}"
            shutil.copytree(shots, kept)
            print(f"\nscreenshots: {kept}")
            browser.close()
    with session_scope(settings.database_url) as session:
        again = session.get(Job, 2)
        assert (again.kind, again.state, again.params["retry_of"], again.params["retried_by"]) == \
            ("repair", "queued", 1, "alice")
