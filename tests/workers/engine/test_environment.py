"""The job's environment in its sandboxes: the step's shell, the workflow's setup as one script,
where packages come from, and the setup environment mounted writable once, read-only after."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.docker import TEST_LIMITS
from workers.engine.environment import ENV_MOUNT, JobEnvironment, JobSandboxes, as_shell
from workers.engine.setup_cache import SetupCache
from workers.engine.workflow_setup import job_environment, prepare_tox, setup_script
from workers.failure.ci_job import read_failing_job
from workers.failure.workflow import locate_step, parse_workflow

CORPUS = Path(__file__).resolve().parents[2] / "data" / "workflows" / "corpus"


@pytest.mark.parametrize("script,shell,expected", [
    ("pytest -q", None, "pytest -q"),
    ("pytest a\npytest b", None, "bash -e -c 'pytest a\npytest b'"),
    ("pytest | tee log", "bash", "bash --noprofile --norc -eo pipefail -c 'pytest | tee log'"),
    ("make test", "sh", "sh -e -c 'make test'"),
    ("print(1)", "python", "python -c 'print(1)'"),
    ("pytest", "bash -l {0}", "bash -l -c pytest"),
    ("Invoke-Pester", "pwsh", "Invoke-Pester"),
])
def test_a_step_runs_in_its_shell(script, shell, expected):
    assert as_shell(script, shell) == expected


def ci_job(name, job_name, step_name):
    workflow = parse_workflow((CORPUS / name).read_text())
    return read_failing_job(workflow, job_name, locate_step(workflow, job_name, step_name, None).step)


def test_the_workflow_setup_script_keeps_order_directories_and_step_env():
    workflow = parse_workflow("""
on: push
jobs:
  t:
    defaults: {run: {working-directory: web}}
    steps:
      - uses: astral-sh/setup-uv@v5
        with: {version: "0.5.4"}
      - run: npm ci
        env: {NODE_ENV: "test"}
      - run: ./seed.sh
        working-directory: .
        continue-on-error: true
      - run: npm test
""")
    job = read_failing_job(workflow, "t", locate_step(workflow, "t", "Run npm test", None).step)
    script = setup_script(job)
    assert script.splitlines() == [
        "set -e",
        "command -v uv >/dev/null 2>&1 || python -m pip install uv==0.5.4",
        "echo '--- Run npm ci'",
        "( cd /workspace/web && export NODE_ENV=test; npm ci )",
        "echo '--- Run ./seed.sh'",
        "( cd /workspace && ./seed.sh ) || true",
    ]
    assert setup_script(ci_job("pre-commit.yml", "pre-commit", "Run pre-commit/action@v3.0.1")).splitlines()[-1] == \
        "( cd /workspace && pip install pre-commit && pre-commit install-hooks )"
    pipx = setup_script(ci_job("poetry-pipx.yml", "test", "Run poetry run pytest")).splitlines()
    assert pipx[1] == "command -v pipx >/dev/null 2>&1 || python -m pip install pipx"  # runners have it
    assert setup_script(ci_job("go.yml", "build", "Build")) is None  # nothing before the failing step but actions
    # a tox run's environments are made in the setup, where packages come from, with the step's env
    tox = setup_script(ci_job("tox.yml", "py311", "Run tox"), "tox -e py311 -- -k add", "src", {"TOX_X": "1"})
    assert tox.splitlines()[-1] == "( cd /workspace/src && export TOX_X=1; tox -e py311 --notest -- -k add )"
    assert prepare_tox("python -m tox run -e lint") == "python -m tox run -e lint --notest"
    assert [prepare_tox(c) for c in ("tox -e py && coverage report", "toxic", "pytest", "tox -e $(echo py)")] == \
        [None] * 4  # only a plain tox run


def test_where_packages_come_from_in_the_setup_sandbox(tmp_path):
    job = ci_job("python-app.yml", "build", "Test with pytest")
    offline = job_environment(job, package_cache=tmp_path)
    assert offline.package_variables == {
        "PIP_FIND_LINKS": "/opt/qwenfix/packages/wheels", "UV_FIND_LINKS": "/opt/qwenfix/packages/wheels",
        "npm_config_cache": "/opt/qwenfix/packages/npm", "PIP_NO_INDEX": "1", "UV_NO_INDEX": "1", "UV_OFFLINE": "1",
        "npm_config_offline": "true"}
    index = job_environment(job, pip_index_url="https://pypi.internal/simple", npm_registry="https://npm.internal/",
                            network=True)
    assert index.package_variables == {"PIP_INDEX_URL": "https://pypi.internal/simple",
                                     "UV_DEFAULT_INDEX": "https://pypi.internal/simple",
                                     "npm_config_registry": "https://npm.internal/"}
    assert "export PIP_INDEX_URL=https://pypi.internal/simple\n" in index.prelude(with_env_dir=True)
    assert 'export PATH="/opt/qwenfix/env/python/bin:$PATH"\n' in index.prelude(with_env_dir=True)
    assert "VIRTUAL_ENV" not in index.prelude(with_env_dir=True)  # not activated, as on the runner


@pytest.mark.docker
def test_setup_writes_the_environment_once_and_later_sandboxes_only_read_it(docker_engine, tmp_path):
    package_cache = tmp_path / "packages"
    (package_cache / "wheels").mkdir(parents=True)
    started = []

    def start(workspace, network=False, mounts=()):
        sandbox = docker_engine.start(workspace, docker_engine.image, TEST_LIMITS, {"qwenfix.job": "test:env"},
                                      mounts=mounts)
        started.append(sandbox)
        return sandbox

    environment = JobEnvironment(variables={"APP_MODE": "ci test"}, package_variables={"PIP_NO_INDEX": "1"},
                                 package_cache=package_cache)
    worktree = tmp_path / "wt"
    worktree.mkdir()
    try:
        with JobSandboxes(environment, start, SetupCache(tmp_path / "cache", "octo/calc", keep=0)) as sandboxes:
            result = sandboxes.setup_runner(
                "echo made > /opt/qwenfix/env/python/made && ls /opt/qwenfix/packages && touch built.txt && echo $APP_MODE",
                ".")(worktree)
            assert result.ok, result.output
            assert "wheels" in result.output and "ci test" in result.output
            assert (sandboxes.env_dir / "python" / "made").read_text() == "made\n"
            later = sandboxes.start(worktree)
            seen = later.exec("command -v python; command -v pip; python -c 'import pytest'; cat /opt/qwenfix/env/python/made; "
                              "echo $APP_MODE $PIP_NO_INDEX; ls /opt/qwenfix/packages; "
                              "touch /opt/qwenfix/env/python/x 2>&1 || echo env read-only; "
                              "touch /opt/qwenfix/packages/x 2>&1 || echo cache read-only")
            assert f"{ENV_MOUNT}/python/bin/python" in seen.output and f"{ENV_MOUNT}/python/bin/pip" in seen.output
            assert "made" in seen.output and "ci test 1" in seen.output and "wheels" in seen.output
            assert "env read-only" in seen.output and "cache read-only" in seen.output
            env_dir = sandboxes.env_dir
        assert not env_dir.exists()  # not kept: keep=0 (the setup cache is off)
    finally:
        for sandbox in started:
            sandbox.stop()
    assert os.path.exists(worktree / "built.txt")


@pytest.mark.docker
def test_the_setup_serves_the_package_cache_as_one_index_for_every_installer(docker_engine, package_cache, tmp_path):
    """Poetry, PDM and Pipenv ignore pip's find-links: the setup sandbox serves the cache's wheels/
    as a simple index on its loopback and points them at it (Poetry through a plugin on
    PYTHONPATH); the setup's exec returns although the server ran in the background."""
    started = []

    def start(workspace, network=False, mounts=()):
        started.append(docker_engine.start(workspace, docker_engine.image, TEST_LIMITS, {"qwenfix.job": "test:index"},
                                           mounts=mounts))
        return started[-1]

    environment = job_environment(None, package_cache=package_cache)
    worktree = tmp_path / "wt"
    worktree.mkdir()
    probe = ("echo index=$QWENFIX_PACKAGE_INDEX pdm=$PDM_PYPI_URL pipenv=$PIPENV_PYPI_MIRROR; "
             "python -m pip download -q --no-deps -d /tmp/got --index-url \"$QWENFIX_PACKAGE_INDEX\" tabulate==0.9.0 "
             "&& ls /tmp/got; python -c \"import importlib.metadata as m; "
             "print([e.value for e in m.entry_points(group='poetry.plugin')])\"")
    try:
        with JobSandboxes(environment, start) as sandboxes:
            result = sandboxes.setup_runner(probe, ".")(worktree)
            assert result.ok, result.output
            index = result.output.split("index=")[1].split()[0]
            assert index.startswith("http://127.0.0.1:") and index.endswith("/simple/")
            assert f"pdm={index} pipenv={index}" in result.output
            assert "tabulate-0.9.0-py3-none-any.whl" in result.output
            assert "['qwenfix_poetry_index:PackageIndex']" in result.output
            later = sandboxes.start(worktree).exec("echo index=${QWENFIX_PACKAGE_INDEX:-none} $PYTHONPATH")
            assert later.output.strip() == "index=none"  # later stages install nothing through it
    finally:
        for sandbox in started:
            sandbox.stop()


def test_the_operators_index_is_the_one_every_installer_uses():
    environment = job_environment(None, pip_index_url="https://pypi.internal/simple/", network=True)
    preamble = environment.setup_preamble()
    assert "export QWENFIX_PACKAGE_INDEX=https://pypi.internal/simple/" in preamble
    assert 'PDM_PYPI_URL="$QWENFIX_PACKAGE_INDEX" PIPENV_PYPI_MIRROR="$QWENFIX_PACKAGE_INDEX"' in preamble
    assert "http.server" not in preamble  # nothing served: the operator's index is reachable
    assert "QWENFIX_PACKAGE_INDEX" not in job_environment(None, network=True).setup_preamble()  # PyPI itself
