"""The failing job read as a whole: matrix entry (include/exclude), env, setup steps before the
failing step, setup actions as toolchains, services; and which step is the test command."""

from __future__ import annotations

from pathlib import Path

import pytest

from workers.failure.actions import Toolchain, interpret
from workers.failure.ci_job import evaluate_condition, read_failing_job
from workers.failure.report import build_failure_report
from workers.failure.workflow import (
    expand_matrix,
    is_test_command,
    locate_step,
    parse_workflow,
    test_command_guess,
)

CORPUS = Path(__file__).resolve().parents[2] / "data" / "workflows" / "corpus"


def corpus(name: str):
    return parse_workflow((CORPUS / name).read_text())


def job_of(workflow, job_name, step_name):
    lookup = locate_step(workflow, job_name, step_name, None)
    assert lookup.step is not None, lookup.reason
    return lookup, read_failing_job(workflow, job_name, lookup.step)


def test_starter_python_app_setup_is_the_install_and_lint_steps():
    lookup, job = job_of(corpus("python-app.yml"), "build", "Test with pytest")
    assert lookup.command.run.strip() == "pytest"
    assert [s.name for s in job.setup_steps] == ["Install dependencies", "Lint with flake8"]
    assert "pip install flake8 pytest" in job.setup_steps[0].run
    assert job.toolchains == (Toolchain("python", "3.10", "actions/setup-python@v3"),)
    assert job.not_reproduced == () and job.services == {}


def test_matrix_entry_from_the_job_name_with_exclude_and_include():
    wf = corpus("python-package.yml")
    entries = expand_matrix(wf.jobs["build"])
    assert [e["python-version"] for e in entries] == ["3.10", "3.11", "3.12"]  # 3.9 excluded
    assert entries[-1] == {"python-version": "3.12", "coverage": True}  # include joins its entry
    lookup, job = job_of(wf, "build (3.12)", "Test with pytest")
    assert job.matrix == {"python-version": "3.12", "coverage": "true"}
    assert job.toolchains[0].version == "3.12"
    _, job = job_of(wf, "build (3.11)", "Test with pytest")
    assert job.matrix == {"python-version": "3.11", "coverage": ""}  # only 3.12's entry has it: null


def test_include_only_matrix_and_a_name_template():
    wf = corpus("tox.yml")
    lookup, job = job_of(wf, "py312", "Run tox")
    assert lookup.command.run == "tox -e py312"
    assert job.matrix == {"python": "3.12", "tox-env": "py312"}
    assert job.toolchains == (Toolchain("python", "3.12", "actions/setup-python@v5"),)
    assert [s.run for s in job.setup_steps] == ["python -m pip install --upgrade tox"]


def test_cache_actions_are_ignored_and_workflow_env_kept():
    lookup, job = job_of(corpus("nox.yml"), "tests (ubuntu-latest, 3.11)", "Run tests")
    assert lookup.command.run == 'nox --non-interactive --session "tests-3.11"'
    assert job.env == {"FORCE_COLOR": "1"}
    assert [s.run for s in job.setup_steps] == ["pip install nox"] and job.not_reproduced == ()


def test_node_go_rust_toolchains():
    _, job = job_of(corpus("node.yml"), "build (20.x)", "Run npm test")
    assert job.toolchains == (Toolchain("node", "20.x", "actions/setup-node@v4"),)
    assert [s.run for s in job.setup_steps] == ["npm ci", "npm run build --if-present"]
    _, job = job_of(corpus("go.yml"), "build", "Test")
    assert job.toolchains == (Toolchain("go", "1.20", "actions/setup-go@v4"),)
    _, job = job_of(corpus("rust.yml"), "build", "Run tests")
    assert job.toolchains == (Toolchain("rust", "stable", "dtolnay/rust-toolchain@stable"),)
    assert job.env == {"CARGO_TERM_COLOR": "always"}


def test_uv_poetry_and_pre_commit_shapes():
    _, job = job_of(corpus("uv.yml"), "python", "Run tests")
    assert {t.name: t.version for t in job.toolchains} == {"uv": "0.6.14", "python": None}
    assert any("version file" in n for n in job.notes)
    lookup, job = job_of(corpus("poetry.yml"), "test", "Run tests")
    assert lookup.command.shell == "bash" and job.setup_steps[1].shell == "bash"
    lookup, job = job_of(corpus("pre-commit.yml"), "pre-commit", "Run pre-commit/action@v3.0.1")
    assert lookup.command.run == "pre-commit run --show-diff-on-failure --color=always --all-files"
    # what the action installs first: pre-commit, and its hooks' environments while packages can be had
    assert [s.run for s in job.setup_steps] == ["pip install pre-commit && pre-commit install-hooks"]
    assert job.toolchains == (Toolchain("python", None, "actions/setup-python@v3"),)


def test_poetry_installed_by_an_action_keeps_its_settings_for_the_later_steps():
    lookup, job = job_of(corpus("install-poetry.yml"), "test", "Run tests")
    assert lookup.command.run.split() == ["source", ".venv/bin/activate", "pytest", "tests/"]
    assert [s.run for s in job.setup_steps] == [
        "command -v poetry >/dev/null 2>&1 || python -m pip install 'poetry'",
        "poetry install --no-interaction --no-root"]
    assert job.env["POETRY_VIRTUALENVS_IN_PROJECT"] == "true" and job.env["POETRY_VIRTUALENVS_CREATE"] == "true"
    assert not job.not_reproduced  # the cache action is ignored, the installer understood
    _, pinned = job_of(parse_workflow(
        "on: push\njobs:\n  t:\n    steps:\n      - uses: abatilo/actions-poetry@v4\n"
        "        with: {poetry-version: '1.8.5'}\n      - run: poetry run pytest\n"), "t", "Run poetry run pytest")
    assert [s.run for s in pinned.setup_steps] == [
        "command -v poetry >/dev/null 2>&1 || python -m pip install 'poetry==1.8.5'"]


def test_services_and_secrets_are_named_never_reproduced():
    wf = corpus("postgres.yml")
    _, job = job_of(wf, "container-job", "Run tests")
    assert job.services == {"postgres": "postgres"}
    assert job.env == {"DATABASE_URL": "postgresql://postgres:postgres@localhost:5432/postgres"}
    wf = parse_workflow("""
on: push
env:
  API_TOKEN: ${{ secrets.API_TOKEN }}
jobs:
  t:
    runs-on: ubuntu-latest
    container: python:3.12
    steps:
      - uses: actions/checkout@v4
      - uses: docker/login-action@v3
        with: {password: "${{ secrets.PASS }}"}
      - run: pytest
""")
    _, job = job_of(wf, "t", "Run pytest")
    assert job.dropped_env == ("API_TOKEN",) and "API_TOKEN" not in job.env
    assert job.not_reproduced[0].startswith("docker/login-action@v3")
    assert "python:3.12" in job.not_reproduced[1]
    report = build_failure_report("t", "Run pytest", None, None, (
        "on: push\nenv:\n  API_TOKEN: ${{ secrets.API_TOKEN }}\njobs:\n  t:\n    steps:\n"
        "      - uses: foo/bar@v1\n      - run: pytest\n"), [])
    assert any("secrets (never reproduced): API_TOKEN" in n for n in report.notes)
    assert any(n.startswith("not reproduced: foo/bar@v1") for n in report.notes)
    assert report.ci_job is not None and report.ci_job.setup_steps == ()


def test_step_conditions_and_working_directories():
    wf = parse_workflow("""
on: push
defaults:
  run:
    working-directory: app
jobs:
  t:
    runs-on: ${{ matrix.os }}
    strategy:
      matrix:
        os: [ubuntu-latest, windows-latest]
    steps:
      - if: runner.os == 'Windows'
        run: choco install make
      - if: ${{ matrix.os == 'ubuntu-latest' && success() }}
        run: sudo apt-get install -y libpq-dev
      - if: github.ref == 'refs/heads/main'
        run: echo main only
      - run: make test
        working-directory: ${{ github.workspace }}
""")
    lookup, job = job_of(wf, "t (ubuntu-latest)", "Run make test")
    assert [s.run for s in job.setup_steps] == ["sudo apt-get install -y libpq-dev", "echo main only"]
    assert job.setup_steps[0].working_directory == "app"
    assert any("refs/heads/main" in n for n in job.notes)  # undecidable here: run, and said
    assert lookup.command.working_directory is None


@pytest.mark.parametrize("expr,expected", [
    ("matrix.os == 'ubuntu-latest'", True), ("${{ matrix.os != 'ubuntu-latest' }}", False),
    ("always()", True), ("failure()", False), ("!cancelled() && env.CI == 'true'", True),
    ("matrix.experimental", None), ("contains(matrix.os, 'ubuntu')", True),
    ("startsWith(matrix.os, 'windows')", False),
    # the sandbox has no secrets, as a fork's runner has none: steps that need one are skipped
    ("secrets.TOKEN != ''", False), ("${{ secrets.CODECOV_TOKEN }}", False), ("secrets.TOKEN == ''", True),
    ("github.event.pull_request.head.repo.fork", None),
    ("runner.os == 'linux' || matrix.os == 'x'", True),
])
def test_conditions(expr, expected):
    assert evaluate_condition(expr, {"os": "ubuntu-latest"}, {"CI": "true"}) is expected


@pytest.mark.parametrize("uses,inputs,kind,versions", [
    ("actions/setup-python@v5", {"python-version": "3.12"}, "toolchain", {"python": "3.12"}),
    ("actions/setup-python@v5", {"python-version": "3.10\n3.11"}, "toolchain", {"python": "3.11"}),
    ("actions/setup-node@v4", {"node-version": "20", "cache": "npm"}, "toolchain", {"node": "20"}),
    ("actions/setup-java@v4", {"distribution": "temurin", "java-version": "21"}, "toolchain", {"java": "21"}),
    ("dtolnay/rust-toolchain@master", {"toolchain": "1.75"}, "toolchain", {"rust": "1.75"}),
    ("astral-sh/setup-uv@v5", {"python-version": "3.12"}, "toolchain", {"uv": None, "python": "3.12"}),
    ("actions/checkout@v4", {}, "ignored", {}),
    ("actions/cache@v4", {"path": "~/.npm"}, "ignored", {}),
    ("snok/install-poetry@v1", {}, "command", {}),
    ("docker/build-push-action@v6", {"push": "false"}, "unsupported", {}),
])
def test_setup_actions(uses, inputs, kind, versions):
    meaning = interpret(uses, inputs)
    assert meaning.kind == kind
    assert {t.name: t.version for t in meaning.toolchains} == versions


@pytest.mark.parametrize("run", [
    "pytest", "python -m pytest -q -x tests/test_x.py", "python3 -m unittest discover -s tests",
    "tox -e py311", "nox -s tests", "npm test", "npm run test -- --coverage", "yarn test --ci",
    "pnpm test", "npx jest --ci", "npx vitest run", "go test -v ./...", "cargo test --verbose",
    "mvn -B test", "./gradlew test", "make test", "uv run pytest tests", "poetry run pytest -q",
    "coverage run -m pytest", "PYTHONPATH=src pytest", "cd web && npm test",
    "python -m pip install -e . && pytest --cov",
])
def test_test_commands(run):
    assert is_test_command(run)


@pytest.mark.parametrize("run", [
    "pip install pytest", "python -m pip install pytest tox", "npm ci", "npm run build --if-present",
    "flake8 . --count", "ruff check .", "go build -v ./...", "cargo build --verbose",
    "twine upload dist/*", "echo pytest", "pip install -r requirements-test.txt", "mvn -B package",
    "docker build -t app .", "# pytest later",
])
def test_not_test_commands(run):
    assert not is_test_command(run)


def test_the_regression_command_is_never_an_install_step():
    wf = parse_workflow("""
on: push
jobs:
  test:
    steps:
      - uses: actions/setup-python@v5
        with: {python-version: "3.11"}
      - run: pip install pytest
      - name: Run tests
        run: python -m pytest -q -x tests/test_x.py
""")
    assert test_command_guess(wf, "test") == "python -m pytest -q -x tests/test_x.py"
    lint_only = parse_workflow("on: push\njobs:\n  l:\n    steps:\n      - run: pip install pytest flake8\n"
                               "      - run: flake8 .\n")
    assert test_command_guess(lint_only, "l") is None
    assert test_command_guess(corpus("node.yml"), "build (18.x)") == "npm test"
