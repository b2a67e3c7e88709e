"""Real PostgreSQL and Redis for tests, SQLite beside them, settings and a real Celery worker process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg
import pytest
import redis
from githubkit.versions import LATEST_VERSION
from sqlalchemy import text

from core.config import Settings
from core.db.migrate import upgrade
from core.db.models import Base
from core.db.session import engine_for

PG_ADMIN = os.environ.get("QWENFIX_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def _redis_url() -> str:
    """QWENFIX_TEST_REDIS (database 9 by default); under pytest-xdist each worker (gw0, gw1, …) takes
    the next database, so no worker takes another one's jobs."""
    url = os.environ.get("QWENFIX_TEST_REDIS", "redis://127.0.0.1:6379/9")
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker.startswith("gw"):
        return url
    base, _, db = url.rpartition("/")
    return f"{base}/{(int(db or 0) + 1 + int(worker[2:])) % 16}"


REDIS_URL = _redis_url()
SECRET = "test-webhook-secret"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def pg_url():
    name = f"qwenfix_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    upgrade(url)
    yield url
    engine_for(url).dispose()
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["postgresql", "sqlite"])
def database_url(request, tmp_path):
    """Each test that takes this runs on real PostgreSQL and on SQLite, starting empty."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'qwenfix.db'}"
        upgrade(url)
        return url
    url = request.getfixturevalue("pg_url")
    truncate(url)
    return url


@pytest.fixture
def postgres_url(pg_url):
    truncate(pg_url)
    return pg_url


def truncate(url: str) -> None:
    with engine_for(url).begin() as conn:
        names = ", ".join(table.name for table in Base.metadata.sorted_tables)
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY"))


@pytest.fixture
def redis_url():
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    yield REDIS_URL
    client.flushdb()


@pytest.fixture
def make_settings(tmp_path):
    def make(**overrides) -> Settings:
        # the fakes speak githubkit's newest REST API version (tests/core/test_api_version.py and the
        # Enterprise end-to-end test leave it to be chosen); GitHub's pacing kept short (its rules
        # are tested in tests/core/test_ratelimits.py)
        values = dict(webhook_secret=SECRET, data_dir=tmp_path / "data", sweep_interval_s=0.5,
                      github_api_version=LATEST_VERSION, github_write_interval_s=0.02,
                      github_secondary_backoff_s=0.5, redeliver_interval_s=0)
        values.update(overrides)
        return Settings(_env_file=None, **values)

    return make


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that gives a child process these settings."""
    env = {}
    as_json = settings.model_dump(mode="json")
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        env[f"QWENFIX_{name.upper()}"] = json.dumps(as_json[name]) if isinstance(value, (dict, list)) else str(value)
    return env


@pytest.fixture
def start_worker(tmp_path):
    """Start real `qwenfix worker` processes with given settings; stopped at teardown."""
    procs: list[subprocess.Popen] = []

    def start(settings: Settings, extra_env: dict[str, str] | None = None, beat: bool = False):
        env = {k: v for k, v in os.environ.items() if not k.startswith("QWENFIX_")}
        env.update(settings_env(settings))
        env.update(extra_env or {})
        log = open(tmp_path / f"worker-{len(procs)}.log", "w")
        argv = [sys.executable, "-m", "app.cli", "worker", "--concurrency", "2"] + (["--beat"] if beat else [])
        # its own process group: a test can kill the worker with its pool, as a crash would
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        proc.log_path = log.name  # type: ignore[attr-defined]
        procs.append(proc)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if "ready." in Path(log.name).read_text():
                return proc
            if proc.poll() is not None:
                raise RuntimeError(f"worker exited early:\n{Path(log.name).read_text()}")
            time.sleep(0.2)
        raise RuntimeError(f"worker not ready in 30 s:\n{Path(log.name).read_text()}")

    yield start
    # The test is over: the workers go at once (a warm or a cold shutdown takes ~2 s each); a
    # sandbox a failed test left behind is swept by the next worker's start.
    for proc in procs:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.2, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {message}")
