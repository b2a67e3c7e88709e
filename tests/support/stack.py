"""The whole product wired together for end-to-end tests: the webhook app, real PostgreSQL and Redis,
a real Celery worker process, Docker sandboxes, the fake GitHub (with git over smart HTTP) and the
scripted model."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import httpx
import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from core.config import Settings
from core.db.models import Job
from core.db.session import session_scope
from tests.support.db import SECRET, wait_for
from tests.webhook_payloads import encode, headers

MODEL_KEY = "sk-e2e-model-key-0123456789abcdef"
INSTALLATION = 1
FINAL = ("succeeded", "failed", "skipped", "cancelled")


@dataclass
class Stack:
    settings: Settings
    github: object
    model: object
    client: TestClient

    def deliver(self, event: str, payload: dict, delivery: str | None = None) -> httpx.Response:
        body = encode(payload)
        response = self.client.post("/webhooks/github", content=body, headers=headers(SECRET, body, event, delivery or str(uuid.uuid4())))
        assert response.status_code == 202, response.text
        return response

    def job(self, job_id: int) -> Job:
        with session_scope(self.settings.database_url) as session:
            return session.get(Job, job_id)

    def jobs(self) -> list[Job]:
        from sqlalchemy import select

        with session_scope(self.settings.database_url) as session:
            return list(session.scalars(select(Job).order_by(Job.id)))

    def wait(self, job_id: int, timeout: float = 180) -> Job:
        return wait_for(lambda: (job := self.job(job_id)) and job.state in FINAL and job, timeout=timeout,
                        interval=0.3, message=f"job {job_id} to finish")


@pytest.fixture
def make_stack(fake_github, fake_model, make_settings, postgres_url, redis_url, start_worker, docker_engine, tmp_path):
    """Build the stack with settings overrides (a short lease, a sweeping web side, ...)."""
    clients: list[TestClient] = []

    def make(sweep: bool = False, workers: int = 1, **overrides) -> Stack:
        fake_github.add_installation(INSTALLATION, "octo")
        values = dict(
            database_url=postgres_url, broker_url=redis_url,
            app_id=str(fake_github.app_id), private_key=fake_github.private_key_pem, github_api_url=fake_github.url,
            public_url="http://qwenfix.test", llm_base_url=fake_model.base_url, llm_api_key=MODEL_KEY,
            llm_model="qwen3-coder-test", llm_max_retries=1, sandbox_engine="docker", sandbox_command_timeout_s=120,
            mirror_dir=tmp_path / "mirrors",
        )
        values.update(overrides)
        settings = make_settings(**values)
        for _ in range(workers):
            start_worker(settings)
        client = TestClient(create_app(settings, sweep=sweep))
        client.__enter__()
        clients.append(client)
        return Stack(settings, fake_github, fake_model, client)

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def stack_settings() -> dict:
    """More settings for the stack's app and worker: a test module overrides this fixture."""
    return {}


@pytest.fixture
def stack_overrides() -> dict:
    """Settings a test module needs besides the stack's own (override this fixture there)."""
    return {}


@pytest.fixture
def stack(request, make_stack, stack_settings, stack_overrides):
    """The product, started with extra operator settings from the `stack_settings` or
    `stack_overrides` fixture and from a `stack_settings` mark when the test has one."""
    marker = request.node.get_closest_marker("stack_settings")
    return make_stack(**stack_settings, **stack_overrides, **(marker.kwargs if marker else {}))
