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
def stack_settings() -> dict:
    """Settings a test module gives its stack (override this fixture there), e.g. budgets."""
    return {}


@pytest.fixture
def stack(fake_github, fake_model, make_settings, postgres_url, redis_url, start_worker, docker_engine, tmp_path,
          stack_settings):
    fake_github.add_installation(INSTALLATION, "octo")
    settings = make_settings(
        database_url=postgres_url, broker_url=redis_url,
        app_id=str(fake_github.app_id), private_key=fake_github.private_key_pem, github_api_url=fake_github.url,
        public_url="http://qwenfix.test", llm_base_url=fake_model.base_url, llm_api_key=MODEL_KEY,
        llm_model="qwen3-coder-test", llm_max_retries=1, sandbox_engine="docker", sandbox_command_timeout_s=120,
        mirror_dir=tmp_path / "mirrors", **stack_settings,
    )
    start_worker(settings)
    with TestClient(create_app(settings, sweep=False)) as client:
        yield Stack(settings, fake_github, fake_model, client)
