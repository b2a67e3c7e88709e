"""Workflows in the shapes popular projects write them (Pallets' include-only matrices named
`${{ matrix.name || matrix.python }}`, matrices of objects, jobs named like another job's matrix
suffix, `if:` on the runner's OS, …), read as the Actions API names their jobs."""

from __future__ import annotations

import pytest

from workers.failure.ci_job import read_failing_job
from workers.failure.expressions import UNKNOWN, evaluate
from workers.failure.workflow import (
    job_runner,
    locate_step,
    match_job,
    parse_workflow,
    runner_os,
    substitute,
    test_command_guess,
)

INCLUDE_ONLY = parse_workflow("""
on: pull_request
jobs:
  tests:
    name: ${{ matrix.name || matrix.python }}
    runs-on: ${{ matrix.os || 'ubuntu-latest' }}
    strategy:
      matrix:
        include:
          - {python: '3.13'}
          - {name: Windows, python: '3.13', os: windows-latest}
          - {name: PyPy, python: 'pypy-3.11', tox: pypy3.11}
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with:
          python-version: ${{ matrix.python }}
      - run: uv run --locked --group dev tox run
        env:
          TOX_ENV: ${{ matrix.tox || format('py{0}', matrix.python) }}
""")


@pytest.mark.parametrize("job_name,python,tox_env", [
    ("3.13", "3.13", "py3.13"), ("PyPy", "pypy-3.11", "pypy3.11"),
])
def test_a_name_with_a_default_finds_its_entry_and_resolves_the_env(job_name, python, tox_env):
    job, matrix, known = match_job(INCLUDE_ONLY, job_name)
    assert job is not None and known
    assert matrix["python"] == python
    lookup = locate_step(INCLUDE_ONLY, job_name, "Run uv run --locked --group dev tox run", None)
    assert lookup.command.env == {"TOX_ENV": tox_env}
    assert lookup.command.unresolved == [] and lookup.command.dropped_env == []
    ci = read_failing_job(INCLUDE_ONLY, job_name, lookup.step)
    assert [t.describe() for t in ci.toolchains] == [f"python {python}"]


OBJECTS = parse_workflow("""
on: pull_request
jobs:
  race:
    name: ${{ matrix.config.name }} (${{ matrix.branch }})
    strategy:
      matrix:
        branch: [main, stable]
        config:
          - {name: Random 3.14, python: '3.14', tox: random}
          - {name: Stress 3.13, python: '3.13', tox: stress-py3.13}
    steps:
      - uses: actions/setup-python@v5
        with:
          python-version: ${{ matrix.config.python }}
      - run: tox run -e ${{ matrix.config.tox }}
  flask:
    name: Flask (${{ matrix.branch }})
    strategy:
      matrix:
        branch: [main, stable]
    steps:
      - run: pytest
""")


def test_matrix_values_that_are_objects_are_read_through():
    job, matrix, known = match_job(OBJECTS, "Stress 3.13 (stable)")
    assert job.key == "race" and known and matrix["branch"] == "stable"
    lookup = locate_step(OBJECTS, "Stress 3.13 (stable)", "Run tox run -e ${{ matrix.config.tox }}", None)
    assert lookup.command.run == "tox run -e stress-py3.13"
    assert read_failing_job(OBJECTS, "Stress 3.13 (stable)", lookup.step).toolchains[0].version == "3.13"


def test_a_fixed_name_is_not_taken_for_another_jobs_object_name():
    job, matrix, known = match_job(OBJECTS, "Flask (main)")
    assert job.key == "flask" and matrix == {"branch": "main"} and known


def test_a_job_named_like_another_jobs_matrix_suffix_is_found_by_its_own_name():
    wf = parse_workflow("""
on: pull_request
jobs:
  test:
    name: Test suite
    steps: [{run: cargo test}]
  windows:
    name: Test suite (windows)
    runs-on: windows-latest
    steps: [{run: cargo test --features windows}]
""")
    assert match_job(wf, "Test suite (windows)")[0].key == "windows"


def test_a_name_with_an_expression_gets_no_suffix_even_when_its_key_would_fit():
    wf = parse_workflow("""
on: pull_request
jobs:
  build:
    name: build (${{ matrix.platform }})
    runs-on: ${{ matrix.runner }}
    strategy:
      matrix:
        include:
          - {platform: linux/amd64, runner: ubuntu-latest}
          - {platform: linux/arm64, runner: ubuntu-24.04-arm}
    steps: [{run: make}]
""")
    job, matrix, known = match_job(wf, "build (linux/arm64)")
    assert matrix == {"platform": "linux/arm64", "runner": "ubuntu-24.04-arm"} and known


def test_an_empty_value_at_the_end_of_a_name_is_trimmed():
    wf = parse_workflow("""
on: pull_request
jobs:
  test:
    name: ${{ matrix.os }} @ Go ${{ matrix.go }} ${{ matrix.test-tags }}
    strategy:
      matrix:
        os: [ubuntu-latest]
        go: ['1.25', '1.26']
        include:
          - {os: ubuntu-latest, go: '1.26', test-tags: nomsgpack}
    steps:
      - run: go test -tags "${{ matrix.test-tags }}" ./...
""")
    job, matrix, known = match_job(wf, "ubuntu-latest @ Go 1.25")
    assert matrix["go"] == "1.25" and known
    assert locate_step(wf, "ubuntu-latest @ Go 1.25", None, 2).command.run == 'go test -tags "" ./...'


def test_a_suffix_lists_each_entrys_own_values_when_include_adds_different_keys():
    wf = parse_workflow("""
on: pull_request
jobs:
  build:
    strategy:
      matrix:
        name: [py310-xdist, py311-coverage]
        include:
          - {name: py310-xdist, python: '3.10', tox_env: py310-xdist}
          - {name: py311-coverage, python: '3.11', tox_env: py311, use_coverage: true}
    steps: [{run: 'tox -e ${{ matrix.tox_env }}'}]
""")
    job, matrix, known = match_job(wf, "build (py310-xdist, 3.10, py310-xdist)")
    assert known and matrix["python"] == "3.10" and matrix["use_coverage"] == ""
    assert match_job(wf, "build (py311-coverage, 3.11, py311, true)")[1]["use_coverage"] == "true"


def test_runner_specific_steps_are_decided_for_linux():
    wf = parse_workflow("""
on: pull_request
jobs:
  test:
    strategy:
      matrix:
        os: [ubuntu-latest, windows-latest]
    runs-on: ${{ matrix.os }}
    steps:
      - if: startsWith(matrix.os, 'windows')
        run: choco install make
      - if: ${{ !contains(matrix.os, 'windows') }}
        run: sudo apt-get install -y gettext
      - if: runner.os != 'Windows' && matrix.os != 'macos-latest'
        run: echo linux
      - run: make test
""")
    lookup = locate_step(wf, "test (ubuntu-latest)", "Run make test", None)
    ci = read_failing_job(wf, "test (ubuntu-latest)", lookup.step)
    assert [s.run for s in ci.setup_steps] == ["sudo apt-get install -y gettext", "echo linux"]
    assert ci.notes == ()


@pytest.mark.parametrize("expr,value", [
    ("matrix.name || matrix.python", "3.12"),
    ("format('py{0}{{x}}', matrix.python)", "py3.12{x}"),
    ("endsWith(matrix.python, 't') && '4' || '1'", "1"),
    ("matrix.cfg.os || 'ubuntu-latest'", "ubuntu-latest"),
    ("fromJSON('[1, 2]')[1]", 2.0),
    ("secrets.TOKEN || 'x'", UNKNOWN),
    ("false && secrets.TOKEN", False),
    ("hashFiles('**/uv.lock')", UNKNOWN),
    ("matrix.python ==", UNKNOWN),
    ("(" * 100 + "1" + ")" * 100, UNKNOWN),  # nested beyond reason
])
def test_expressions(expr, value):
    matrix = {"python": "3.12", "name": "", "cfg": '{"python": "3.12"}'}
    assert evaluate(expr, matrix, {}) == value or evaluate(expr, matrix, {}) is value


def test_a_long_hostile_expression_is_read_in_linear_time():
    import time
    text = "matrix.a || " * 20000 + "'x'"
    started = time.monotonic()
    assert evaluate(text, {"a": ""}, {}) == "x"
    assert evaluate("!" * 100000 + "matrix.a", {"a": ""}, {}) is False
    assert evaluate("(" * 100000, {}, {}) is UNKNOWN
    assert time.monotonic() - started < 2


def test_test_command_guess_keeps_the_substituted_name_of_a_pallets_job():
    assert test_command_guess(INCLUDE_ONLY, "PyPy") == "uv run --locked --group dev tox run"


def test_an_include_only_matrix_keeps_each_include_as_its_own_entry():
    from workers.failure.workflow import expand_matrix
    assert [e["python"] for e in expand_matrix(INCLUDE_ONLY.jobs["tests"])] == ["3.13", "3.13", "pypy-3.11"]
    # GitHub's documented example: an entry `include:` added is never joined by a later one
    wf = parse_workflow("""
on: push
jobs:
  t:
    strategy:
      matrix:
        fruit: [apple, pear]
        animal: [cat, dog]
        include:
          - color: green
          - {color: pink, animal: cat}
          - {fruit: apple, shape: circle}
          - fruit: banana
          - {fruit: banana, animal: cat}
    steps: [{run: make}]
""")
    assert expand_matrix(wf.jobs["t"]) == [
        {"fruit": "apple", "animal": "cat", "color": "pink", "shape": "circle"},
        {"fruit": "apple", "animal": "dog", "color": "green", "shape": "circle"},
        {"fruit": "pear", "animal": "cat", "color": "pink"},
        {"fruit": "pear", "animal": "dog", "color": "green"},
        {"fruit": "banana"},
        {"fruit": "banana", "animal": "cat"},
    ]


@pytest.mark.parametrize("run", [
    "uv run --locked --no-default-groups --group dev tox run",
    'uv run --with "git+https://github.com/o/r.git@${REF}" -- pytest',
    "uv run --no-sync --directory api pytest tests/unit_tests/",
    "uv run coverage run -m pytest tests/mypy --test-mypy",
    "scripts/test", "bash scripts/test.sh", "./run_tests.sh",
    "python manage.py test",
    "cargo insta test --all-features --unreferenced reject",
    "cd serde_core && cargo miri test --features rc,unstable",
    "yarn workspace jest-environment-node test",
    "pdm test",
    "tox run --skip-pkg-install -e py312",
    "RICHGO_FORCE_COLOR=1 PATH=$HOME/go/bin/:$PATH make richtest", "make test-unit",
])
def test_test_commands_as_real_workflows_write_them(run):
    from workers.failure.workflow import is_test_command
    assert is_test_command(run)


@pytest.mark.parametrize("run", [
    "tox run -vv --notest --skip-missing-interpreters false -e 3.14",  # only makes the environments
    "cargo test --no-run --all-features",
    "uv run --group dev ruff check",
    "test -z \"$(git status --porcelain)\"",
    "ci/test-complete",
    "python -m pip install --upgrade pip 'tox' tox-gh-actions",
    "uv sync --locked --only-group ruff-lsp-test",
    "mvn -B verify -DskipTests", "./gradlew check -x test", "make typecheck",
])
def test_not_test_commands(run):
    from workers.failure.workflow import is_test_command
    assert not is_test_command(run)


def test_the_guess_reads_a_program_given_by_env():
    wf = parse_workflow("""
on: pull_request
jobs:
  test:
    env:
      CARGO: cargo
    steps:
      - run: tox run -vv --notest -e py312
      - run: ${{ env.CARGO }} test --verbose --workspace
""")
    assert test_command_guess(wf, "test") == "cargo test --verbose --workspace"


def test_common_actions_of_real_workflows():
    from workers.failure.actions import interpret
    for harmless in ("Swatinem/rust-cache@v2", "rui314/setup-mold@v1", "SimenB/github-actions-cpu-cores@v2"):
        assert interpret(harmless, {}).kind == "ignored"
    uv = interpret("hynek/setup-cached-uv@v2", {})
    assert uv.kind == "toolchain" and uv.toolchains[0].name == "uv"
    pdm = interpret("pdm-project/setup-pdm@v4", {"python-version": "3.12"})
    assert pdm.toolchains[0].describe() == "python 3.12" and "pip install pdm" in pdm.setup
    pnpm = interpret("pnpm/action-setup@v4", {"version": "9"})
    assert pnpm.kind == "command" and pnpm.setup.endswith("npm install -g pnpm@9")
    retry = interpret("nick-fields/retry@v3", {"timeout_minutes": "10", "command": "yarn test-ci --shard=1/4"})
    assert retry.kind == "command" and retry.command == "yarn test-ci --shard=1/4"
    assert interpret("nick-fields/retry@v3", {}).kind == "unsupported"
    assert interpret("gradle/actions/setup-gradle@v4", {}).kind == "ignored"
    assert interpret("gradle/actions/setup-gradle@v4", {"gradle-version": "8.5"}).kind == "unsupported"


def test_a_test_run_through_the_retry_action_is_reproduced_and_guessed():
    wf = parse_workflow("""
on: pull_request
jobs:
  test:
    steps:
      - uses: pdm-project/setup-pdm@v4
        with: {python-version: '3.12'}
      - uses: SimenB/github-actions-cpu-cores@v2
        id: cpu-cores
      - name: run tests
        uses: nick-fields/retry@v3
        with:
          timeout_minutes: 10
          command: yarn test-ci --max-workers 2
""")
    lookup = locate_step(wf, "test", "run tests", None)
    assert lookup.command.run == "yarn test-ci --max-workers 2"
    ci = read_failing_job(wf, "test", lookup.step)
    assert ci.not_reproduced == () and [s.run for s in ci.setup_steps] == [
        "command -v pdm >/dev/null 2>&1 || python -m pip install pdm"]
    assert test_command_guess(wf, "test") == "yarn test-ci --max-workers 2"


def test_a_step_named_for_the_tests_is_the_guess_when_no_command_says_so():
    wf = parse_workflow("""
on: pull_request
jobs:
  build:
    strategy:
      matrix:
        python-version: ['3.10', '3.11']
        os: [ubuntu-22.04]
    steps:
      - name: Install dependencies
        run: make
      - name: Test wheel
        run: pip install dist/*.whl && mod --help
      - name: Run tests
        run: make ci
""")
    assert test_command_guess(wf, "build (3.11, ubuntu-22.04)") == "make ci"


@pytest.mark.parametrize("run", ["pip install -e .[test]", "python -m pip install pytest && make",
                                 "npm ci", "uv sync --group test", "cargo build --tests"])
def test_a_step_named_for_the_tests_that_installs_or_builds_is_no_guess(run):
    wf = parse_workflow(f"""
on: pull_request
jobs:
  build:
    steps:
      - name: Tests
        run: {run}
      - name: Lint
        run: flake8 .
""")
    assert test_command_guess(wf, "build") is None


def test_a_step_is_found_by_the_name_the_api_shows_for_the_matrix_entry():
    wf = parse_workflow("""
on: pull_request
jobs:
  Unit:
    strategy:
      matrix:
        python-version: ['3.11', '3.12']
    steps:
      - run: uv run --locked tox run -e py${{ matrix.python-version }}
      - name: >
          Run tox for
          "${{ matrix.python-version }}-unit"
        run: tox --verbose
""")
    assert locate_step(wf, "Unit (3.12)", "Run uv run --locked tox run -e py3.12", None).step.index == 0
    assert locate_step(wf, "Unit (3.12)", 'Run tox for "3.12-unit"', None).step.index == 1


def test_the_runner_a_job_ran_on_comes_from_runs_on_and_its_matrix_entry():
    wf = parse_workflow("""
on: pull_request
jobs:
  test:
    runs-on: ${{ matrix.os }}
    strategy:
      matrix:
        os: [ubuntu-22.04, windows-2022, macos-14]
  gpu:
    runs-on: [self-hosted, linux, gpu]
  grouped:
    runs-on: {group: big-runners, labels: [windows, x64]}
""")
    assert [job_runner(wf, f"test ({os})") for os in ("ubuntu-22.04", "windows-2022", "macos-14")] == [
        "ubuntu-22.04", "windows-2022", "macos-14"]
    assert [runner_os(job_runner(wf, f"test ({os})")) for os in ("ubuntu-22.04", "windows-2022", "macos-14")] == [
        "Linux", "Windows", "macOS"]
    assert runner_os(job_runner(wf, "gpu")) == "Linux" and runner_os(job_runner(wf, "grouped")) == "Windows"
    assert runner_os(job_runner(wf, "test")) == "Linux"  # the entry unknown: `${{ matrix.os }}` says nothing


def test_expressions_cannot_multiply_the_workflows_size():
    """A pull request's workflow is at most a megabyte; repeating a big value through expressions
    must not turn it into gigabytes in the worker."""
    big = "A" * 200_000
    assert evaluate("format('" + "{0}" * 5_000 + "', '" + big + "')", {}, {}) is UNKNOWN
    assert evaluate("join(fromJSON(env.LIST), env.BIG)", {}, {"LIST": '["a","b","c"]', "BIG": big}) is UNKNOWN
    assert evaluate("format('{0}-{1}', 'py', '3.12')", {}, {}) == "py-3.12"
    unresolved: list[str] = []
    text = substitute("${{ env.BIG }}" * 10_000, {}, {"BIG": big}, unresolved)
    assert len(text) < 1_000_000 and unresolved == ["${{ env.BIG }}"]
    assert substitute("x${{ env.SMALL }}y", {}, {"SMALL": "1"}, []) == "x1y"
