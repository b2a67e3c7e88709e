"""Docker fixtures: the real engine and the real sandbox image (no mocks).

* ``docker_engine`` (session): a ``DockerEngine`` whose engine answers and whose image
  (``QWENFIX_SANDBOX_IMAGE`` or qwenfix-sandbox:bookworm) is present; fails with a clear message
  otherwise — CI guarantees both with scripts/ensure-docker.
* ``sandbox_factory`` (function): ``sandbox_factory(workspace: Path, limits=Limits(...)) ->
  Sandbox``; every sandbox it made is stopped at teardown.
* ``bwrap_engine`` (session): a ``BwrapEngine``, skipped only when bwrap truly cannot run here.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from workers.sandbox import Limits, Sandbox
from workers.sandbox.image import DEFAULT_TAG

SANDBOX_IMAGE = os.environ.get("QWENFIX_SANDBOX_IMAGE", DEFAULT_TAG)
TEST_LIMITS = Limits(memory_mb=512, cpus=1.0, pids=128, timeout_s=60.0, output_bytes=64_000)


@pytest.fixture(scope="session")
def docker_engine():
    import docker

    from workers.sandbox.docker import DockerEngine

    try:
        client = docker.from_env(timeout=120)
        client.ping()
    except Exception as e:
        pytest.fail(
            f"Docker engine not reachable ({e}). Run scripts/ensure-docker "
            "(installs docker.io, starts dockerd --bridge=none --iptables=false, builds the image).",
            pytrace=False,
        )
    try:
        client.images.get(SANDBOX_IMAGE)
    except docker.errors.ImageNotFound:
        pytest.fail(
            f"sandbox image {SANDBOX_IMAGE} missing. Build it with scripts/ensure-docker or "
            "`python -m workers.sandbox.image build`.",
            pytrace=False,
        )
    engine = DockerEngine(client=client)
    engine.image = SANDBOX_IMAGE  # convenience for tests
    return engine


@pytest.fixture
def sandbox_factory(docker_engine, request) -> Iterator[Callable[..., Sandbox]]:
    made: list[Sandbox] = []

    def factory(
        workspace: Path, limits: Limits = TEST_LIMITS, labels: dict[str, str] | None = None,
        mounts: tuple = (),
    ) -> Sandbox:
        job_labels = {"qwenfix.job": f"test:{request.node.name}"[:200], **(labels or {})}
        sb = docker_engine.start(Path(workspace), SANDBOX_IMAGE, limits, job_labels, mounts=mounts)
        made.append(sb)
        return sb

    yield factory
    for sb in made:
        try:
            sb.stop()
        except Exception:
            pass


@pytest.fixture(scope="session")
def bwrap_engine():
    from workers.sandbox.bwrap import BwrapEngine

    engine = BwrapEngine()
    ok, why = engine.available()
    if not ok:
        pytest.skip(f"bubblewrap cannot run on this host: {why}")
    return engine


@pytest.fixture
def bwrap_factory(bwrap_engine) -> Iterator[Callable[..., Sandbox]]:
    made: list[Sandbox] = []

    def factory(workspace: Path, limits: Limits = TEST_LIMITS, mounts: tuple = ()) -> Sandbox:
        sb = bwrap_engine.start(Path(workspace), "", limits, {}, mounts=mounts)
        made.append(sb)
        return sb

    yield factory
    for sb in made:
        sb.stop()
