"""From a red job's log and workflow file to what the repair needs to know."""

from __future__ import annotations

from pathlib import Path

import pytest

from workers.failure.log import clean_log, command_from_log, error_section
from workers.failure.report import FailureReport, as_prompt, build_failure_report, failure_signature
from workers.failure.workflow import (
    WorkflowError,
    find_failing_step,
    locate_step,
    parse_workflow,
    test_command_guess,
)

DATA = Path(__file__).resolve().parents[2] / "data"


def log(name: str) -> str:
    return (DATA / "logs" / name).read_text()


def workflow_text(name: str) -> str:
    return (DATA / "workflows" / name).read_text()


@pytest.fixture(scope="module")
def ci():
    return parse_workflow(workflow_text("ci.yml"))


@pytest.fixture(scope="module")
def node():
    return parse_workflow(workflow_text("node.yml"))


# --------------------------------------------------------------------------- clean_log


def test_clean_log_strips_timestamps_ansi_and_install_noise():
    cleaned = clean_log(log("pytest_failure.log"))
    assert "2024-05-14T" not in cleaned
    assert "\x1b" not in cleaned
    for noise in ("Collecting pytest", "Downloading", "Requirement already satisfied",
                  "Installing collected packages", "Successfully installed", "━━━━", "eta 0:00",
                  "##[group]", "##[endgroup]", "[command]", "##[debug]", "Cache primary key",
                  "shell: /usr/bin/bash", "pythonLocation"):
        assert noise not in cleaned, noise
    # the step headers survive as one line each, the error stays
    assert "Run python -m pytest -q --junitxml=reports/py3.11-ubuntu-latest.xml" in cleaned
    assert "E       KeyError: 'save10'" in cleaned
    assert "Error: Process completed with exit code 1." in cleaned


def test_clean_log_npm_noise():
    cleaned = clean_log(log("jest_failure.log"))
    for noise in ("npm WARN deprecated", "added 412 packages", "looking for funding",
                  "npm fund", "found 0 vulnerabilities"):
        assert noise not in cleaned, noise
    assert "FAIL src/components/PriceTag.test.jsx" in cleaned


def test_clean_log_keeps_errors_inside_a_group_and_drops_workflow_commands():
    raw = "\n".join([
        "2024-01-01T12:00:00.1234567Z ##[group]Build docs",
        "2024-01-01T12:00:00.2234567Z Collecting sphinx",
        "2024-01-01T12:00:00.3234567Z docs/index.rst:12: ERROR: Unknown directive type.",
        "2024-01-01T12:00:00.4234567Z ##[endgroup]",
        "2024-01-01T12:00:00.5234567Z ::debug::cache miss",
        "2024-01-01T12:00:00.5234567Z ::add-mask::hunter2",
        "2024-01-01T12:00:00.6234567Z ##[warning]Node.js 16 actions are deprecated.",
        "2024-01-01T12:00:00.7234567Z \x1b]8;;https://example.com\x07link\x1b]8;;\x07 done",
        "2024-01-01T12:00:00.8234567Z 10%\r50%\r100% complete",
        "2024-01-01T12:00:00.9234567Z ##[error]Process completed with exit code 2.",
    ])
    cleaned = clean_log(raw)
    assert cleaned.splitlines() == [
        "Build docs",
        "docs/index.rst:12: ERROR: Unknown directive type.",
        "Warning: Node.js 16 actions are deprecated.",
        "link done",
        "100% complete",
        "Error: Process completed with exit code 2.",
    ]


def test_clean_log_of_nothing():
    assert clean_log("") == ""


# --------------------------------------------------------------------------- error_section


def test_pytest_excerpt_has_test_names_and_assertion_but_no_pip_noise():
    excerpt = error_section(clean_log(log("pytest_failure.log")))
    assert "FAILED tests/test_cart.py::test_total_with_tax" in excerpt
    assert "FAILED tests/test_cart.py::test_discount_code_case" in excerpt
    assert "AssertionError: assert Decimal('30.00') == Decimal('36.00')" in excerpt
    assert "src/widgets/discounts.py:9: KeyError" in excerpt
    assert "Exit code" not in excerpt and "exit code 1" in excerpt
    assert "Collecting" not in excerpt and "Downloading" not in excerpt
    assert "Run actions/checkout" not in excerpt
    assert excerpt.startswith("=" * 10)  # starts at the FAILURES header


def test_ruff_check_excerpt_keeps_every_violation():
    excerpt = error_section(clean_log(log("ruff_check.log")))
    assert excerpt.splitlines() == [
        "Error: src/widgets/cart.py:3:8: F401 `os` imported but unused",
        "Error: src/widgets/cart.py:41:5: F841 Local variable `subtotal` is assigned to but "
        "never used",
        "Error: tests/test_cart.py:1:1: I001 Import block is un-sorted or un-formatted",
        "Error: Process completed with exit code 1.",
    ]


def test_ruff_full_output_format_and_plain_lint_lines():
    text = """\
Run ruff check src
I001 [*] Import block is un-sorted or un-formatted
 --> src/app.py:1:1
  |
1 | / import sys
2 | | import os
  | |_________^
  |
help: Organize imports

F401 [*] `os` imported but unused
 --> src/app.py:2:8
  |
2 | import os
  |        ^^
  |
help: Remove unused import: `os`

Found 2 errors.
[*] 2 fixable with the `--fix` option.
mypy src
src/app.py:10: error: Incompatible return value type (got "int", expected "str")  [return-value]
Found 1 error in 1 file (checked 3 source files)
Error: Process completed with exit code 1."""
    excerpt = error_section(text)
    assert "Run ruff check src" not in excerpt and "mypy src" not in excerpt
    assert "I001 [*] Import block" in excerpt and " --> src/app.py:2:8" in excerpt
    assert "help: Remove unused import" in excerpt
    assert 'src/app.py:10: error: Incompatible return value type' in excerpt


def test_black_excerpt():
    excerpt = error_section(clean_log(log("black_check.log")))
    assert "would reformat /home/runner/work/widgets/widgets/src/widgets/cart.py" in excerpt
    assert "1 file would be reformatted" in excerpt
    assert "All checks passed!" not in excerpt  # the earlier, green ruff step


def test_jest_excerpt_has_the_failing_test_and_the_expectation():
    excerpt = error_section(clean_log(log("jest_failure.log")))
    assert "FAIL src/components/PriceTag.test.jsx" in excerpt
    assert "● PriceTag › renders the price with currency" in excerpt
    assert 'Expected: "€12.50"' in excerpt and 'Received: "€12.5"' in excerpt
    assert "Tests:       1 failed, 17 passed, 18 total" in excerpt
    assert "npm ERR! Lifecycle script `test` failed" in excerpt
    assert "PASS src/utils/format.test.js" not in excerpt


@pytest.mark.parametrize("text, expected", [
    ("Traceback (most recent call last):\n  File \"tool.py\", line 3, in <module>\n"
     "    main()\nValueError: bad config\nsomething after", "ValueError: bad config"),
    ("src/main.c:5:3: error: 'x' undeclared (first use in this function)\n", "'x' undeclared"),
    ("./main.go:10:2: undefined: fooBar\n", "undefined: fooBar"),
    ("error[E0425]: cannot find value `y` in this scope\n --> src/main.rs:2:13\n  |\n"
     "2 |     let x = y;\n  |             ^ not found in this scope\n\nnoise", "--> src/main.rs"),
    ("src/index.ts(3,7): error TS2322: Type 'string' is not assignable to type 'number'.\n",
     "TS2322"),
    ("--- FAIL: TestParse (0.00s)\n    parse_test.go:14: got 3, want 4\nFAIL\nok other", "want 4"),
])
def test_other_toolchains(text, expected):
    assert expected in error_section("setup line\n" + text)
    assert "setup line" not in error_section("setup line\n" + text)


def test_unrecognised_output_falls_back_to_the_tail():
    text = "\n".join(f"step {i}: all good" for i in range(2000)) + "\nsegfault in worker"
    excerpt = error_section(text, budget_chars=500)
    assert len(excerpt) <= 500
    assert excerpt.endswith("segfault in worker")
    assert excerpt.startswith("[… ") and "chars elided …]" in excerpt


def test_long_section_keeps_head_and_tail_within_budget():
    body = "\n".join(f"E       line {i} of a very long assertion diff" for i in range(1000))
    text = ("=" * 20 + " FAILURES " + "=" * 20 + "\n" + "_" * 10 + " test_big " + "_" * 10 + "\n"
            + body + "\n" + "=" * 10 + " short test summary info " + "=" * 10
            + "\nFAILED tests/test_big.py::test_big - assert ...\n"
            + "=" * 10 + " 1 failed in 1.23s " + "=" * 10)
    excerpt = error_section(text, budget_chars=2000)
    assert len(excerpt) <= 2000
    assert "test_big" in excerpt.splitlines()[1]  # head: which test
    assert "FAILED tests/test_big.py::test_big" in excerpt  # tail: the summary
    assert "chars elided" in excerpt


# --------------------------------------------------------------------------- workflows


def test_matrix_job_is_found_and_expressions_substituted(ci):
    step = find_failing_step(ci, "test (3.11, ubuntu-latest)", "Run tests", None)
    assert step is not None
    assert step.run.strip() == (
        "python -m pytest -q --junitxml=reports/py3.11-ubuntu-latest.xml")
    assert step.unresolved == []
    assert step.env["PY_VERSION"] == "3.11"
    assert step.env["DATABASE_URL"] == "sqlite:///test.db"
    assert step.env["PIP_DISABLE_PIP_VERSION_CHECK"] == "1"
    assert step.env["FORCE_COLOR"] == "1"


def test_secret_env_is_dropped(ci):
    step = find_failing_step(ci, "test (3.12, macos-latest)", "Run tests", None)
    for name in ("CODECOV_TOKEN", "GH_TOKEN", "UPLOAD_URL"):
        assert name not in step.env
    assert set(step.dropped_env) == {"CODECOV_TOKEN", "GH_TOKEN", "UPLOAD_URL"}
    assert not any("secrets" in v or "github.token" in v for v in step.env.values())


def test_secret_looking_names_and_values_are_dropped():
    wf = parse_workflow("""
on: push
env:
  AWS_SECRET_ACCESS_KEY: literally-in-the-file
  DB_PASSWORD: hunter2
  SIGNING_KEY: abc
  TOKEN_FOR_X: "${{ secrets['X'] }}"
  ALSO: ${{secrets.PAT}}
  PLAIN: ${{ env.OTHER }}
  OTHER: value
  TOKEN_HOLDER: ${{ github.token }}
  FROM_GH: ${{ secrets.GITHUB_TOKEN }}
  CI: true
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - run: make test
""")
    step = find_failing_step(wf, "build", None, 2)
    assert step.env == {"CI": "true", "OTHER": "value"}
    assert "PLAIN" in step.dropped_env  # defined after the variable it refers to


def test_step_found_by_api_number_and_by_default_name(ci):
    # the Actions API numbers "Set up job" as 1: the workflow's first step is 2
    by_number = find_failing_step(ci, "Lint", None, 5)
    assert by_number.run == "ruff check --output-format=github src tests"
    by_name = find_failing_step(ci, "Lint", "Run pip install ruff black", None)
    assert by_name.run == "pip install ruff black"
    assert find_failing_step(ci, "lint", "Black", None).run == "black --check --diff src tests"


def test_uses_step_has_no_command_and_says_why(ci):
    lookup = locate_step(ci, "test (3.11, ubuntu-latest)", "Set up Python 3.11", None)
    assert lookup.command is None
    assert "actions/setup-python@v5" in lookup.reason
    assert find_failing_step(ci, "test (3.11, ubuntu-latest)", "Upload coverage", None) is None


def test_unknown_job_and_step(ci):
    assert "no job named" in locate_step(ci, "deploy", "x", None).reason
    assert "no step" in locate_step(ci, "Lint", "Complete job", None).reason


def test_job_name_template_with_matrix_values(node):
    step = find_failing_step(node, "Unit tests (node 20)", "Run npm test -- --ci", None)
    assert step.run == "npm test -- --ci"
    assert step.working_directory == "frontend"  # from the job's defaults
    assert step.shell == "bash"  # from the workflow's defaults
    assert step.env == {"NODE_OPTIONS": "--max-old-space-size=4096"}
    assert "${{ vars.API_BASE }}" in step.unresolved


def test_unknown_matrix_values_are_left_and_flagged(ci):
    step = find_failing_step(ci, "test", "Run tests", None)
    assert "${{ matrix.python }}" in step.run
    assert any("matrix" in x for x in step.unresolved)


def test_matrix_with_include_keys():
    wf = parse_workflow("""
on: push
jobs:
  test:
    strategy:
      matrix:
        python: ["3.11", "3.12"]
        include:
          - python: "3.13"
            experimental: true
    steps:
      - run: tox -e py${{ matrix.python }} ${{ matrix.experimental && '--pre' || '' }}
""")
    step = find_failing_step(wf, "test (3.12)", None, 2)
    assert step.run.startswith("tox -e py3.12 ")
    assert step.run == "tox -e py3.12 "  # 3.12's entry has no `experimental`: null, so ''
    assert step.unresolved == []


def test_reusable_workflow_job_name():
    wf = parse_workflow("on: workflow_call\njobs:\n  unit:\n    steps:\n      - run: pytest\n")
    assert find_failing_step(wf, "ci / unit", None, 2).run == "pytest"


def test_parse_workflow_rejects_non_workflows():
    with pytest.raises(WorkflowError):
        parse_workflow("jobs: [")
    with pytest.raises(WorkflowError):
        parse_workflow("name: just a name\n")


def test_test_command_guess(ci, node):
    assert test_command_guess(ci, "test (3.12, ubuntu-latest)") == (
        "python -m pytest -q --junitxml=reports/py3.12-ubuntu-latest.xml")
    # a lint job has no tests: the workflow's test job is the regression check
    assert test_command_guess(ci, "Lint").startswith("python -m pytest -q")
    assert test_command_guess(node, "Unit tests (node 18)") == "cd frontend && npm test -- --ci"
    none = parse_workflow("on: push\njobs:\n  a:\n    steps:\n      - run: echo hi\n")
    assert test_command_guess(none, "a") is None


@pytest.mark.parametrize("run", ["tox -e py311", "nox -s tests", "npm test", "go test ./...",
                                 "cargo test --all", "make test", "make -j4 check",
                                 "uv run pytest", "yarn test --ci"])
def test_test_runners_are_recognised(run):
    wf = parse_workflow(f"on: push\njobs:\n  a:\n    steps:\n      - run: {run}\n")
    assert test_command_guess(wf, "a") == run


# --------------------------------------------------------------------------- reports


def test_report_for_a_pytest_failure():
    report = build_failure_report(
        "test (3.11, ubuntu-latest)", "Run tests", 5, log("pytest_failure.log"),
        workflow_text("ci.yml"),
        [{"path": ".github", "start_line": 1, "end_line": 1, "annotation_level": "failure",
          "message": "Process completed with exit code 1.", "title": None},
         {"path": "tests/test_cart.py", "start_line": 14, "end_line": 14,
          "annotation_level": "failure", "title": "test_total_with_tax",
          "message": "AssertionError: assert Decimal('30.00') == Decimal('36.00')"}],
        log_url="https://github.com/acme/widgets/actions/runs/1/job/2",
    )
    assert isinstance(report, FailureReport)
    assert report.workflow_name == "CI"
    assert report.step_name == "Run tests"
    assert report.command.strip() == (
        "python -m pytest -q --junitxml=reports/py3.11-ubuntu-latest.xml")
    assert report.working_directory is None
    assert "CODECOV_TOKEN" not in report.env and report.env["PY_VERSION"] == "3.11"
    assert report.files == ["tests/test_cart.py", "src/widgets/discounts.py"]
    assert report.annotations[1] == {
        "path": "tests/test_cart.py", "start_line": 14, "end_line": 14, "level": "failure",
        "message": "test_total_with_tax: AssertionError: assert Decimal('30.00') == "
                   "Decimal('36.00')"}
    assert "Post job cleanup" not in report.error_excerpt
    assert report.log_url.endswith("/job/2")
    assert len(report.signature) == 16


def test_report_for_a_matrix_collection_error_keeps_repository_paths_only():
    report = build_failure_report(
        "test (3.10, macos-latest)", "Run tests", None, log("matrix_collection_error.log"),
        workflow_text("ci.yml"), [])
    assert report.command.strip().endswith("reports/py3.10-macos-latest.xml")
    assert "ImportError: cannot import name 'UTC' from 'datetime'" in report.error_excerpt
    assert report.files == ["tests/test_dates.py", "src/widgets/dates.py"]


def test_report_paths_are_relative_to_the_repository_not_the_step():
    report = build_failure_report("Unit tests (node 20)", "Run npm test -- --ci", 6,
                                  log("jest_failure.log"), workflow_text("node.yml"), [])
    assert report.working_directory == "frontend"
    assert report.files == ["frontend/src/components/PriceTag.test.jsx"]
    assert report.command == "npm test -- --ci"


def test_same_failure_after_a_rerun_has_the_same_signature():
    first = build_failure_report("test (3.11, ubuntu-latest)", "Run tests", 5,
                                 log("pytest_failure.log"), workflow_text("ci.yml"), [])
    rerun = build_failure_report("test (3.11, ubuntu-latest)", "Run tests", 5,
                                 log("pytest_failure_rerun.log"), workflow_text("ci.yml"), [])
    assert first.error_excerpt != rerun.error_excerpt  # timings and addresses differ
    assert first.signature == rerun.signature
    other = build_failure_report("test (3.10, macos-latest)", "Run tests", 5,
                                 log("matrix_collection_error.log"), workflow_text("ci.yml"), [])
    assert other.signature != first.signature


def test_lint_signature_ignores_line_numbers_but_not_rules():
    a = failure_signature("src/a.py:3:8: F401 `os` imported but unused")
    b = failure_signature("src/a.py:5:8: F401 `os` imported but unused")
    c = failure_signature("src/a.py:3:8: F841 Local variable `x` is assigned to but never used")
    assert a == b != c
    d = failure_signature("Error: boom at 0x7f00aa in /tmp/tmpa1b2/x.py after 1.52s")
    e = failure_signature("Error: boom at 0x7f11bb in /tmp/tmpzz99/x.py after 0.40s")
    assert d == e


def test_override_command_runs_from_the_repository_root():
    report = build_failure_report("Unit tests (node 20)", "Run npm test -- --ci", 6,
                                  log("jest_failure.log"), workflow_text("node.yml"), [],
                                  override_command="make frontend-test")
    assert report.command == "make frontend-test"
    assert report.working_directory is None
    assert any("repair.command" in n for n in report.notes)


def test_command_from_the_log_when_the_workflow_is_unknown():
    report = build_failure_report("Lint", "Black", 6, log("black_check.log"), None, [])
    assert report.command == "black --check --diff src tests"
    assert report.shell == "/usr/bin/bash -e {0}"
    assert any("from the job log" in n for n in report.notes)
    assert command_from_log(log("jest_failure.log")) == (
        "npm test -- --ci", "/usr/bin/bash --noprofile --norc -e -o pipefail {0}")


def test_action_step_failure_has_no_command():
    raw = ("2024-01-01T00:00:00.0000000Z ##[group]Run actions/setup-node@v4\n"
           "2024-01-01T00:00:00.0000000Z with:\n"
           "2024-01-01T00:00:00.0000000Z   node-version: 99\n"
           "2024-01-01T00:00:00.0000000Z ##[endgroup]\n"
           "2024-01-01T00:00:01.0000000Z ##[error]Unable to find Node version '99'.\n")
    report = build_failure_report("build", "Run actions/setup-node@v4", 3, raw,
                                  "on: push\njobs:\n  build:\n    steps:\n"
                                  "      - uses: actions/checkout@v4\n"
                                  "      - uses: actions/setup-node@v4\n", [])
    assert report.command is None
    assert any("actions/setup-node@v4" in n for n in report.notes)
    assert "Unable to find Node version '99'" in report.error_excerpt


def test_the_failing_steps_output_is_used_not_an_earlier_tolerated_error():
    ts = "2024-01-01T00:00:00.0000000Z "
    raw = "\n".join(ts + x for x in [
        "##[group]Run ./scripts/optional-audit.sh",
        "./scripts/optional-audit.sh",
        "shell: /usr/bin/bash -e {0}",
        "##[endgroup]",
        "audit: advisory GHSA-xxxx in left-pad",
        "##[error]Process completed with exit code 3.",
        "##[group]Run pytest -q",
        "pytest -q",
        "shell: /usr/bin/bash -e {0}",
        "##[endgroup]",
        "FAILED tests/test_a.py::test_one - assert 1 == 2",
        "1 failed in 0.01s",
        "##[error]Process completed with exit code 1.",
    ])
    workflow = ("on: push\njobs:\n  t:\n    steps:\n"
                "      - run: ./scripts/optional-audit.sh\n        continue-on-error: true\n"
                "      - run: pytest -q\n")
    report = build_failure_report("t", "Run pytest -q", 3, raw, workflow, [])
    assert "FAILED tests/test_a.py::test_one" in report.error_excerpt
    assert "GHSA" not in report.error_excerpt


def test_report_without_a_log_uses_the_annotations():
    report = build_failure_report(
        "Lint", "Ruff", 5, None, workflow_text("ci.yml"),
        [{"path": "src/a.py", "start_line": 3, "end_line": 3, "annotation_level": "failure",
          "message": "F401 `os` imported but unused"}])
    assert report.error_excerpt == "src/a.py:3: F401 `os` imported but unused"
    assert report.files == ["src/a.py"]


def test_files_skip_urls_virtualenvs_and_system_paths():
    report = build_failure_report("x", None, None, "\n".join([
        "Traceback (most recent call last):",
        '  File "/opt/hostedtoolcache/Python/3.11.9/x64/lib/python3.11/json/decoder.py", line 3',
        '  File "/home/runner/work/w/w/.venv/lib/python3.11/site-packages/req/api.py", line 9',
        '  File "/home/runner/work/w/w/app/main.py", line 12, in run',
        "RuntimeError: see https://docs.example.com/guide/setup.py for help",
        "app/../../etc/passwd.txt:1: error: nope",
        "##[error]Process completed with exit code 1.",
    ]), None, [])
    assert report.files == ["app/main.py"]


def test_as_prompt_is_compact_and_complete():
    report = build_failure_report(
        "test (3.11, ubuntu-latest)", "Run tests", 5, log("pytest_failure.log"),
        workflow_text("ci.yml"),
        [{"path": "tests/test_cart.py", "start_line": 14, "end_line": 16,
          "annotation_level": "failure", "message": "assert failed"}])
    text = as_prompt(report)
    assert "Job: test (3.11, ubuntu-latest)" in text
    assert "    python -m pytest -q --junitxml=reports/py3.11-ubuntu-latest.xml" in text
    assert "- tests/test_cart.py:14-16 [failure] assert failed" in text
    assert "Files mentioned: tests/test_cart.py, src/widgets/discounts.py" in text
    assert "FAILED tests/test_cart.py::test_total_with_tax" in text
    assert "CODECOV_TOKEN" in text  # named in the notes as dropped, never its value
    assert "${{ secrets" not in text
    assert len(text) < 6000
