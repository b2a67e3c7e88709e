"""Reading test runners' summaries: counts, and the names of failing tests."""

from __future__ import annotations

import textwrap

from tests.repos import PYTEST_FAILURE
from workers.engine.test_results import TestRun, now_passing, read_test_run

PYTEST_PASS = "..                                                                       [100%]\n2 passed in 0.01s\n"
PYTEST_VERBOSE = textwrap.dedent("""\
    ============================= test session starts ==============================
    collected 4 items

    tests/test_a.py F.s                                                      [ 75%]
    tests/test_b.py E                                                        [100%]
    =========================== short test summary info ============================
    FAILED tests/test_a.py::test_one[1-2] - assert 3 == 4
    ERROR tests/test_b.py::test_two - fixture 'db' not found
    ============== 1 failed, 1 passed, 1 skipped, 1 error in 0.12s ===============
""")
UNITTEST = textwrap.dedent("""\
    ======================================================================
    FAIL: test_add (tests.test_calc.CalcTest.test_add)
    ----------------------------------------------------------------------
    Traceback (most recent call last):
    AssertionError: -1 != 5

    ----------------------------------------------------------------------
    Ran 3 tests in 0.001s

    FAILED (failures=1)
""")
GO = textwrap.dedent("""\
    === RUN   TestAdd
    --- FAIL: TestAdd (0.00s)
        calc_test.go:8: got -1, want 5
    === RUN   TestSub
    --- PASS: TestSub (0.00s)
    FAIL
    FAIL\texample.com/calc\t0.002s
""")
CARGO = textwrap.dedent("""\
    running 2 tests
    test tests::adds ... FAILED
    test tests::subs ... ok

    test result: FAILED. 1 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s
""")
JEST = textwrap.dedent("""\
    FAIL src/calc.test.js
      calc
        ✕ adds numbers (3 ms)
        ✓ subtracts numbers (1 ms)

    Tests:       1 failed, 1 passed, 2 total
""")


def test_pytest_counts_and_failing_node_ids():
    assert read_test_run(PYTEST_FAILURE) == TestRun(0, 1, ("tests/test_calc.py::test_add",))
    assert read_test_run(PYTEST_FAILURE).counts() == "1 failed"
    assert read_test_run(PYTEST_PASS).counts() == "2 passed"
    verbose = read_test_run(PYTEST_VERBOSE)
    assert (verbose.passed, verbose.failed) == (1, 2)
    assert verbose.failing == ("tests/test_a.py::test_one[1-2]", "tests/test_b.py::test_two")


def test_other_runners():
    assert read_test_run(UNITTEST) == TestRun(2, 1, ("tests.test_calc.CalcTest.test_add",))
    assert read_test_run("Ran 4 tests in 0.002s\n\nOK\n").counts() == "4 passed"
    assert read_test_run(GO) == TestRun(1, 1, ("TestAdd",))
    assert read_test_run(CARGO) == TestRun(1, 1, ("tests::adds",))
    assert read_test_run(JEST) == TestRun(1, 1, ("adds numbers",))
    assert read_test_run("  3 passing (12ms)\n  1 failing\n").counts() == "1 failed, 3 passed"
    assert read_test_run("make: *** [all] Error 2\n") == TestRun()


def test_tests_that_went_from_failing_to_passing():
    before = read_test_run(PYTEST_VERBOSE)
    assert now_passing(before, read_test_run(PYTEST_PASS), after_ok=True) == list(before.failing)
    still = TestRun(1, 1, ("tests/test_b.py::test_two",))
    assert now_passing(before, still, after_ok=False) == ["tests/test_a.py::test_one[1-2]"]
