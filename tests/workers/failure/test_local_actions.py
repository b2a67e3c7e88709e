"""The repository's own actions (`uses: ./.github/actions/…`), as projects write them to share a
setup between jobs: a composite action's steps join the setup phase with its inputs applied."""

from __future__ import annotations

from workers.failure.ci_job import read_failing_job
from workers.failure.local_actions import action_command
from workers.failure.report import build_failure_report
from workers.failure.workflow import locate_step, parse_workflow

WORKFLOW = parse_workflow("""
on: pull_request
jobs:
  test:
    strategy:
      matrix:
        python-version: ['3.11', '3.12']
    steps:
      - uses: actions/checkout@v4
      - uses: ./.github/actions/setup-env
        with:
          python-version: ${{ matrix.python-version }}
          token: ${{ secrets.PRIVATE_INDEX_TOKEN }}
      - name: Run tests
        run: pytest -q
""")

SETUP_ENV = """
name: Set up the environment
description: Python, the project and its test dependencies
inputs:
  python-version:
    description: the Python to use
    default: '3.12'
  extras:
    description: extras to install
    default: test
  token:
    description: a token for the private index
    required: false
runs:
  using: composite
  steps:
    - uses: actions/setup-python@v5
      with:
        python-version: ${{ inputs.python-version }}
    - name: Install
      shell: bash
      run: python -m pip install -e ".[${{ inputs.extras }}]"
    - name: Configure the index
      if: ${{ inputs.token != '' }}
      shell: bash
      env:
        INDEX_TOKEN: ${{ inputs.token }}
      run: pip config set global.index-url "https://$INDEX_TOKEN@pypi.example.com/simple"
    - name: Windows only
      if: runner.os == 'Windows'
      shell: pwsh
      run: choco install make
    - uses: ./.github/actions/helpers
    - shell: bash
      run: ${{ github.action_path }}/post-install.sh
"""

HELPERS = """
runs:
  using: composite
  steps:
    - shell: bash
      run: echo helpers ready
"""


def read(files: dict[str, str], job: str = "test (3.11)"):
    step = locate_step(WORKFLOW, job, "Run tests", None).step
    asked: list[str] = []

    def read_file(path: str) -> str | None:
        asked.append(path)
        return files.get(path)

    return read_failing_job(WORKFLOW, job, step, read_file), asked


def test_a_composite_actions_steps_are_the_setup_with_its_inputs():
    ci, asked = read({".github/actions/setup-env/action.yml": SETUP_ENV,
                      ".github/actions/helpers/action.yaml": HELPERS})
    assert [(t.name, t.version) for t in ci.toolchains] == [("python", "3.11")]  # the matrix's, through `with:`
    runs = [(s.name, s.run, s.shell) for s in ci.setup_steps]
    assert runs == [
        ("Install (./.github/actions/setup-env)", 'python -m pip install -e ".[test]"', "bash"),
        # the token comes from a secret, which the sandbox never has: skipped, as on a fork's runner
        ("Run echo helpers ready (./.github/actions/helpers)", "echo helpers ready", "bash"),
        ("Run ${{ github.action_path }}/post-install.sh (./.github/actions/setup-env)",
         "/workspace/.github/actions/setup-env/post-install.sh", "bash"),
    ]
    assert ci.setup_steps[0].env == {"GITHUB_ACTION_PATH": "/workspace/.github/actions/setup-env"}
    assert ci.not_reproduced == ()
    assert ".github/actions/setup-env/action.yml" in asked


def test_an_action_that_is_missing_or_not_composite_is_named_as_not_reproduced():
    ci, _ = read({})
    assert ci.not_reproduced == ("./.github/actions/setup-env (no action.yml at the commit)",)
    ci, _ = read({".github/actions/setup-env/action.yml": "runs:\n  using: node20\n  main: index.js\n"})
    assert ci.not_reproduced == ("./.github/actions/setup-env (a node20 action qwenfix does not reproduce)",)
    ci, _ = read({".github/actions/setup-env/action.yml": "runs: [\n"})
    assert ci.not_reproduced == ("./.github/actions/setup-env (its action.yml is not YAML, or too large once its aliases "
                                 "are expanded)",)


def test_actions_that_call_themselves_stop_at_a_depth():
    looping = "runs:\n  using: composite\n  steps:\n    - uses: ./.github/actions/setup-env\n"
    ci, asked = read({".github/actions/setup-env/action.yml": looping})
    assert len(asked) == 3 and ci.setup_steps == ()
    assert ci.not_reproduced == ("./.github/actions/setup-env (the repository's own action, not read)",)


def test_an_action_outside_the_repository_is_not_read():
    workflow = parse_workflow("""
on: pull_request
jobs:
  t:
    steps:
      - uses: ./../../etc
      - run: pytest
""")
    asked: list[str] = []
    ci = read_failing_job(workflow, "t", locate_step(workflow, "t", "Run pytest", None).step,
                          lambda path: asked.append(path))
    assert asked == [] and ci.not_reproduced == ("./../../etc (outside the repository)",)


WORKFLOW_TEXT = """
on: pull_request
jobs:
  test:
    steps:
      - uses: actions/checkout@v4
      - name: Test
        uses: ./.github/actions/test
        with:
          pytest-args: -x tests/unit
"""


def test_a_failing_step_that_is_the_repositorys_composite_action_runs_its_test_step():
    workflow = parse_workflow(WORKFLOW_TEXT)
    files = {".github/actions/test/action.yml": """
inputs:
  pytest-args: {default: ''}
runs:
  using: composite
  steps:
    - uses: actions/setup-python@v5
      with: {python-version: '3.12'}
    - shell: bash
      run: pip install -e .
    - name: Run the tests
      shell: bash
      env: {PYTEST_ADDOPTS: --strict-markers}
      run: python -m pytest ${{ inputs.pytest-args }}
    - shell: bash
      run: coverage report
"""}
    lookup = locate_step(workflow, "test", "Test", None)
    assert lookup.command is None  # the workflow alone does not say
    command = action_command(workflow, "test", lookup.step, files.get)
    assert (command.run, command.shell, command.env["PYTEST_ADDOPTS"]) == (
        "python -m pytest -x tests/unit", "bash", "--strict-markers")
    ci = read_failing_job(workflow, "test", lookup.step, files.get)
    assert [s.run for s in ci.setup_steps] == ["pip install -e ."]  # before the test step, not after
    assert [(t.name, t.version) for t in ci.toolchains] == [("python", "3.12")]
    # what the red build's report says: the action's test step is the failing command, run as CI ran it
    report = build_failure_report("test", "Test", 3, None, WORKFLOW_TEXT, [], read_file=files.get)
    assert report.command == "python -m pytest -x tests/unit" and report.shell == "bash"
    assert not any("no run command" in note for note in report.notes), report.notes


def test_a_job_of_many_local_actions_reads_only_so_many_files():
    steps = "".join(f"      - uses: ./.github/actions/a{i}\n" for i in range(500))
    workflow = parse_workflow(f"on: pull_request\njobs:\n  t:\n    steps:\n{steps}      - run: pytest\n")
    asked: list[str] = []
    ci = read_failing_job(workflow, "t", locate_step(workflow, "t", "Run pytest", None).step,
                          lambda path: asked.append(path))
    assert len(asked) == 2 * 20  # action.yml and action.yaml for the first 20
    assert len(ci.not_reproduced) == 500
