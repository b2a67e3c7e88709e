"""GitHub Enterprise Server that knows only REST API 2022-11-28 (and answers 400 to any other
`X-GitHub-Api-Version`): install qwenfix on it in one click and have it repair a red build, end to
end — manifest setup on the server's web pages, the installation event and reconcile, then webhook
→ Redis → Celery worker → Docker sandbox → scripted model → verified commit.

Without choosing the version (githubkit sends 2026-03-10), the very first token exchange is refused:
tests/core/test_api_version.py shows that 400."""

from __future__ import annotations

import json
import uuid

import pytest
import yaml
from fastapi.testclient import TestClient

from app.main import create_app
from app.reconcile import reconcile_installations
from core import github
from core.config import Settings
from tests.app.test_setup import register
from tests.repos import BASE_FILES, BROKEN_CALC, FIXED_CALC, REPO, failing_job, workflow_run_event
from tests.support.db import wait_for
from tests.support.fake_openai import call, finish
from tests.support.stack import MODEL_KEY
from tests.webhook_payloads import encode, headers

pytestmark = pytest.mark.docker


def test_install_and_repair_on_an_enterprise_server_that_only_knows_2022_11_28(
        fake_github, fake_model, postgres_url, redis_url, start_worker, docker_engine, tmp_path):
    github._chosen_versions.clear()
    fake_github.api_versions = ["2022-11-28"]
    settings = Settings(  # nothing about the App yet, and no version: both come from the server
        _env_file=None, data_dir=tmp_path / "data", database_url=postgres_url, broker_url=redis_url,
        github_api_url=fake_github.enterprise_url, public_url="http://testserver", sweep_interval_s=0.5,
        llm_base_url=fake_model.base_url, llm_api_key=MODEL_KEY, llm_model="qwen3-coder-test",
        llm_max_retries=1, sandbox_engine="docker", sandbox_command_timeout_s=120,
        mirror_dir=tmp_path / "mirrors")
    assert settings.github_web_url == fake_github.server_url  # https://HOST for https://HOST/api/v3

    with TestClient(create_app(settings, sweep=False)) as client:
        # one click: the manifest goes to the server's own "new App" page and comes back
        assert register(client, fake_github).status_code == 303
        configured = client.app.state.settings
        secret = configured.webhook_secret.get_secret_value()
        assert configured.app_configured and secret

        # the organization installs it on a repository
        fake_github.add_installation(1, "octo")
        base = dict(BASE_FILES, **{".github/qwen.yml": yaml.safe_dump({"repair": {"mode": "commit"}})})
        fake_github.add_repo(REPO, base, installation_id=1)
        head = fake_github.push(REPO, "feature", {"calc.py": BROKEN_CALC}, "Refactor add", parent_branch="main")
        fake_github.add_pull(REPO, 7, head_ref="feature", base_ref="main")
        assert reconcile_installations(configured) == {"active": 1, "suspended": 0, "deleted": 0}

        start_worker(configured)  # the worker reads the same credentials, and chooses the version itself
        fake_github.add_workflow_run(REPO, 900, head, jobs=[failing_job(9000)], pull_numbers=(7,),
                                     head_branch="feature")
        fake_model.script([
            call("read_file", path="calc.py"),
            call("edit_file", path="calc.py", old="return a - b", new="return a + b"),
            call("run", command="python3 -m pytest -q"),
            finish("add() subtracted instead of adding."),
        ])
        body = encode(workflow_run_event(REPO, {"id": 900, "head_sha": head}, (7,)))
        answer = client.post("/webhooks/github", content=body,
                             headers=headers(secret, body, "workflow_run", str(uuid.uuid4())))
        assert answer.status_code == 202, answer.text
        job_id = answer.json()["job"]

        def finished():
            from core.db.models import Job
            from core.db.session import session_scope

            with session_scope(postgres_url) as session:
                job = session.get(Job, job_id)
                return job.state in ("succeeded", "failed", "skipped", "cancelled") and job

        job = wait_for(finished, timeout=240, interval=0.5, message="the repair job")
    assert job.state == "succeeded", job.outcome
    new_head = fake_github.ref(REPO, "refs/heads/feature")
    assert fake_github.file_at(REPO, new_head, "calc.py") == FIXED_CALC
    [check] = fake_github.check_runs(REPO, head)
    assert check["conclusion"] == "success"

    # every REST call spoke 2022-11-28, and the server refused none of them
    api = [r for r in fake_github.requests if r.raw_path.startswith("/api/v3/")]
    versions = {r.headers.get("x-github-api-version") for r in api if r.path != "/versions"}
    assert versions == {"2022-11-28"}, json.dumps(sorted(map(str, versions)))
    assert [r.path for r in api if r.status == 400] == []
    assert {r.status for r in api if r.path == "/versions"} == {404}
    assert fake_github.calls("POST", "re:/app-manifests/.*/conversions")[0].raw_path.startswith("/api/v3/")
