"""Reproduced means the same failure: test ids or error lines compared with CI's log; a different
failure caused by the sandbox's environment is named with the setting that provides it."""

from __future__ import annotations

import pytest

from tests.repos import PYTEST_FAILURE
from workers.failure.reproduction import compare, environment_problem

PYTEST_TWO = PYTEST_FAILURE.replace(
    "FAILED tests/test_calc.py::test_add - assert -1 == 5",
    "FAILED tests/test_calc.py::test_add - assert -1 == 5\nFAILED tests/test_calc.py::test_sub - assert 1 == 0")
JEST = """\
FAIL ./sum.test.js
  ✕ adds 1 + 2 to equal 3 (4 ms)

  ● adds 1 + 2 to equal 3

    expect(received).toBe(expected) // Object.is equality
"""
VITEST = """\
 FAIL  test/sum.test.ts > sum > adds
AssertionError: expected -1 to be 3
 Test Files  1 failed (1)
"""
GO = "--- FAIL: TestAdd (0.00s)\n    add_test.go:9: Add(2, 3) = -1; want 5\nFAIL\nFAIL\texample.com/calc\t0.002s\n"
CARGO = "test tests::adds ... FAILED\n\nfailures:\n\n---- tests::adds stdout ----\nthread 'tests::adds' panicked\n"
UNITTEST = ("======================================================================\n"
            "FAIL: test_add (tests.test_calc.CalcTest.test_add)\n"
            "----------------------------------------------------------------------\n"
            "AssertionError: -1 != 5\n\nFAILED (failures=1)\n")
FLAKE8 = "./calc.py:3:1: F821 undefined name 'sub'\n1     F821 undefined name 'sub'\n1\n"
TSC = "src/index.ts(3,7): error TS2322: Type 'string' is not assignable to type 'number'.\n"


@pytest.mark.parametrize("ci,local", [
    (PYTEST_FAILURE, PYTEST_FAILURE.replace("0.02s", "1.31s")), (JEST, JEST.replace("4 ms", "9 ms")),
    (VITEST, VITEST), (GO, GO.replace("0.002s", "0.011s")), (CARGO, CARGO), (UNITTEST, UNITTEST),
    (FLAKE8, FLAKE8), (TSC, TSC),
])
def test_the_same_failure_is_exact(ci, local):
    assert compare(ci, local).level == "exact"


def test_some_of_the_same_tests_is_partial_and_others_is_no():
    assert compare(PYTEST_TWO, PYTEST_FAILURE).level == "partial"
    other = PYTEST_FAILURE.replace("test_add", "test_mul")
    result = compare(PYTEST_FAILURE, other)
    assert result.level == "no" and result.expected == ("test:tests/test_calc.py::test_add",)
    assert compare(GO, GO.replace("TestAdd", "TestSub")).level == "no"


def test_nothing_to_compare_with():
    assert compare("", PYTEST_FAILURE).level is None


def test_ci_colours_do_not_matter():
    coloured = PYTEST_FAILURE.replace("FAILED", "\x1b[31mFAILED\x1b[0m")
    assert compare(coloured, PYTEST_FAILURE).level == "exact"


@pytest.mark.parametrize("output,code,needle,setting", [
    ("sh: 1: python: not found\n", 127, "`python` (python) is not in the sandbox image",
     "QWENFIX_SANDBOX_TOOLCHAIN_IMAGES"),
    ("/bin/sh: 1: go: not found\n", 127, "`go` (go)", "QWENFIX_SANDBOX_TOOLCHAIN_IMAGES"),
    ("bash: line 1: cargo: command not found\n", 127, "`cargo` (rust)", "sandbox.image"),
    ("sh: 1: tox: not found\n", 127, "the command `tox` is not in the sandbox", "QWENFIX_SANDBOX_PACKAGE_CACHE"),
    ("E   ModuleNotFoundError: No module named 'requests'\n", 2, "`requests` is not installed",
     "QWENFIX_SANDBOX_PIP_INDEX_URL"),
    ("Error: Cannot find module 'jest'\nRequire stack:\n", 1, "npm package `jest`", "QWENFIX_SANDBOX_NPM_REGISTRY"),
    ("ERROR: Could not find a version that satisfies the requirement flask (from versions: none)\n", 1,
     "the network", "QWENFIX_SANDBOX_PACKAGE_CACHE"),
])
def test_environment_problems_name_the_missing_piece_and_the_setting(output, code, needle, setting):
    problem = environment_problem(output, code, PYTEST_FAILURE)
    assert needle in problem and setting in problem


def test_a_service_the_workflow_starts():
    output = ("E   psycopg.OperationalError: connection failed: connection to server at \"127.0.0.1\", port 5432 "
              "failed: Connection refused\n")
    problem = environment_problem(output, 1, PYTEST_FAILURE, ("postgres (postgres)",))
    assert "service container postgres (postgres)" in problem and "repair.command" in problem


def test_a_service_on_localhost_in_a_sandbox_without_network():
    output = "E   OSError: [Errno 99] Cannot assign requested address\nFAILED tests/test_db.py::test_x - OSError\n"
    problem = environment_problem(output, 1, PYTEST_FAILURE, ("postgres (postgres)",), reproduced=True)
    assert "postgres" in problem


def test_a_script_missing_from_the_checkout():
    problem = environment_problem("sh: 1: ./scripts/bootstrap.sh: not found\n", 127)
    assert problem.startswith("`./scripts/bootstrap.sh`, which is not in the checkout") and "repair.setup" in problem


def test_a_failure_ci_shows_too_is_not_the_environment():
    ci = "E   ModuleNotFoundError: No module named 'calc_old'\nERROR tests/test_calc.py\n"
    assert environment_problem(ci, 2, ci) is None
    assert environment_problem(PYTEST_FAILURE.replace("test_add", "test_mul"), 1, PYTEST_FAILURE) is None
