"""The `qwenfix` command as an operator uses it: serve on embedded defaults, replay, db upgrade, doctor."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import httpx
from sqlalchemy import inspect

from core.db.models import Base, Job
from core.db.session import engine_for, session_scope
from tests.support.db import ROOT, SECRET, wait_for
from tests.webhook_payloads import workflow_run


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def qwenfix(*args, env=None, cwd=None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app.cli", *args], env=env, cwd=cwd or ROOT,
                          capture_output=True, text=True, timeout=120, **kw)


def clean_env(**values) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QWENFIX_")}
    env["PYTHONPATH"] = str(ROOT)
    env.update(values)
    return env


def test_serve_on_embedded_defaults_runs_a_replayed_delivery_end_to_end(tmp_path):
    port = free_port()
    env = clean_env(QWENFIX_WEBHOOK_SECRET=SECRET)
    log = open(tmp_path / "serve.log", "w")
    server = subprocess.Popen([sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
                              cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: _get(base + "/healthz"), timeout=30, message="serve to answer")
        assert (tmp_path / "var" / "qwenfix.db").exists()  # SQLite upgraded by serve itself
        home = httpx.get(base + "/", follow_redirects=True)  # no App yet: / leads to setup
        assert home.status_code == 200 and home.url.path == "/setup" and "Create GitHub App" in home.text
        payload = tmp_path / "run.json"
        payload.write_text(json.dumps({**workflow_run(), "action": "created", "installation": {"id": 3}}))
        replay = qwenfix("replay", str(payload), "--event", "installation", "--url", base + "/webhooks/github",
                         env=env, cwd=tmp_path)
        assert replay.returncode == 0, replay.stdout + replay.stderr
        assert replay.stdout.startswith("202 ")
        job_id = json.loads(replay.stdout[4:])["job"]

        def finished():  # read from the embedded database: the API is for signed-in people
            with session_scope(f"sqlite:///{tmp_path / 'var' / 'qwenfix.db'}") as session:
                job = session.get(Job, job_id).as_dict()
            return job["state"] in ("succeeded", "failed", "skipped") and job

        job = wait_for(finished, timeout=60, message=f"job to finish; log:\n{(tmp_path / 'serve.log').read_text()}")
        assert job["state"] == "succeeded" and job["kind"] == "installation_sync"
        assert httpx.get(base + "/readyz").json() == {"ready": True, "database": "ok", "broker": "ok"}
    finally:
        server.terminate()
        server.wait(timeout=30)


def _get(url):
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_replay_without_a_secret_says_so(tmp_path):
    payload = tmp_path / "p.json"
    payload.write_text("{}")
    result = qwenfix("replay", str(payload), "--event", "ping", env=clean_env(), cwd=tmp_path)
    assert result.returncode == 2 and "QWENFIX_WEBHOOK_SECRET" in result.stderr


def test_db_upgrade_creates_the_schema_on_postgresql(postgres_url, tmp_path):
    engine = engine_for(postgres_url)
    with engine.begin() as conn:
        names = ", ".join(table.name for table in Base.metadata.sorted_tables)
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {names}, alembic_version")
    result = qwenfix("db", "upgrade", env=clean_env(QWENFIX_DATABASE_URL=postgres_url), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert set(inspect(engine).get_table_names()) >= {"deliveries", "jobs", "installations", "locks", "people",
                                                      "web_sessions", "api_tokens", "github_budgets", "redeliveries",
                                                      "fix_outcomes", "model_calls", "audit_records"}


def test_doctor_names_what_is_missing_and_how_to_fix_it(tmp_path):
    result = qwenfix("doctor", env=clean_env(QWENFIX_BROKER_URL="redis://127.0.0.1:1/0", COLUMNS="200"), cwd=tmp_path)
    assert result.returncode == 1
    out = result.stdout
    assert "FAIL  webhook secret" in out and "set QWENFIX_WEBHOOK_SECRET" in out
    assert "FAIL  GitHub App" in out and "QWENFIX_APP_ID" in out
    assert "FAIL  database" in out and "qwenfix db upgrade" in out  # fresh SQLite file, not migrated
    assert "FAIL  broker" in out and "broker unreachable" in out
    assert "FAIL  model" in out and "QWENFIX_LLM_BASE_URL" in out


def test_env_example_lists_every_setting():
    import re

    from core.config import Settings

    listed = set(re.findall(r"^QWENFIX_([A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))
    assert listed == {name.upper() for name in Settings.model_fields}


def test_report_prints_the_fix_table_in_each_format(postgres_url, tmp_path):
    from tests.app.test_report import seed

    seed(postgres_url)
    env = clean_env(QWENFIX_DATABASE_URL=postgres_url)
    md = qwenfix("report", "--since", "30d", env=env, cwd=tmp_path)
    assert md.returncode == 0, md.stderr
    assert "| octo/calc | qwen3-coder-plus | 3 | 1 | 1 | 1 | 1 | 6 min | 10,000 | 0.1000 |" in md.stdout
    one = qwenfix("report", "--since", "30d", "--repo", "octo/lint", "--format", "json", env=env, cwd=tmp_path)
    assert [row["repo"] for row in json.loads(one.stdout)] == ["octo/lint"]
    csv_out = qwenfix("report", "--format", "csv", env=env, cwd=tmp_path).stdout.splitlines()
    assert csv_out[0].startswith("repo,model,delivered,accepted,rejected,green_in_ci,red_in_ci") and len(csv_out) == 3
    bad = qwenfix("report", "--since", "soon", env=env, cwd=tmp_path)
    assert bad.returncode == 2 and "use a span such as 30d" in bad.stderr


def test_audit_export_writes_json_lines(postgres_url, tmp_path):
    from core import audit
    from core.db.session import session_scope

    with session_scope(postgres_url) as session:
        audit.add(session, "trigger", {"actor": "alice", "delivery": "d-1"}, job_id=1, repo="octo/calc")
        audit.add(session, "github", {"method": "POST", "path": "/repos/octo/other/pulls", "id": 9}, job_id=2,
                  repo="octo/other")
    env = clean_env(QWENFIX_DATABASE_URL=postgres_url)
    out = qwenfix("audit", "export", "--since", "1d", env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert [(r["kind"], r["repo"]) for r in lines] == [("trigger", "octo/calc"), ("github", "octo/other")]
    only = qwenfix("audit", "export", "--since", "1d", "--repo", "octo/other", env=env, cwd=tmp_path)
    assert [json.loads(line)["data"]["id"] for line in only.stdout.splitlines()] == [9]


def test_doctor_checks_the_toolchain_image_mapping(tmp_path, docker_engine):
    bad = qwenfix("doctor", env=clean_env(QWENFIX_SANDBOX_TOOLCHAIN_IMAGES="python3.12", COLUMNS="200"), cwd=tmp_path)
    assert "FAIL  toolchain images" in bad.stdout and "is not TOOLCHAIN[:VERSION]=IMAGE" in bad.stdout
    assert "python:3.12=IMAGE" in bad.stdout  # how to fix it
    missing = qwenfix("doctor", env=clean_env(QWENFIX_SANDBOX_TOOLCHAIN_IMAGES='{"go:1.22": "no-such-image:1"}',
                                              COLUMNS="200"), cwd=tmp_path)
    assert "FAIL  toolchain images" in missing.stdout and "go:1.22=no-such-image:1: image missing" in missing.stdout
    good = qwenfix("doctor", env=clean_env(QWENFIX_SANDBOX_TOOLCHAIN_IMAGES=f"python:3.11={docker_engine.image}",
                                           COLUMNS="200"), cwd=tmp_path)
    assert f"ok  toolchain images: {docker_engine.image} provides" in good.stdout
    assert f"mapped: python:3.11={docker_engine.image}" in good.stdout
