"""The pure decision: does a failure also happen on the base?"""

from __future__ import annotations

from workers.engine.base_check import fails_on_base
from workers.sandbox import ExecResult

HEAD = "F.\nFAILED tests/test_calc.py::test_add - assert -1 == 5\n1 failed, 1 passed in 0.02s\n"


def run(output: str, code: int = 1, timed_out: bool = False) -> ExecResult:
    return ExecResult(code, output, 0.5, timed_out=timed_out)


def test_the_same_failing_test_on_the_base_is_not_the_pull_requests_fault():
    base = "FAILED tests/test_calc.py::test_add - assert -1 == 5\n1 failed, 1 passed in 0.05s\n"
    assert fails_on_base(run(HEAD), run(base))
    more = base + "FAILED tests/test_other.py::test_x - boom\n"  # the base is even worse: still not the PR
    assert fails_on_base(run(HEAD), run(more))


def test_a_base_that_passes_or_fails_otherwise_leaves_the_failure_to_the_pull_request():
    assert not fails_on_base(run(HEAD), run("2 passed in 0.01s\n", 0))
    assert not fails_on_base(run(HEAD), run("FAILED tests/test_other.py::test_x - boom\n"))
    assert not fails_on_base(run(HEAD), None)  # the base could not be run: no claim either way
    assert not fails_on_base(run(HEAD), run("error: could not import calc\n"))


def test_error_lines_compare_without_their_numbers_and_timeouts_only_match_timeouts():
    head = run("src/vec.c:7:26: error: expected ';' before 'return'\nmake: *** [Makefile:2: check] Error 1\n", 2)
    base = run("src/vec.c:9:26: error: expected ';' before 'return'\nmake: *** [Makefile:2: check] Error 1\n", 2)
    assert fails_on_base(head, base)
    assert fails_on_base(run("", 124, timed_out=True), run("", 124, timed_out=True))
    assert not fails_on_base(run("", 124, timed_out=True), run(HEAD))
