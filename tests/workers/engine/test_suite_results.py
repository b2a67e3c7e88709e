"""What a test run checked, read from reports and output the code under test wrote (hostile), and
whether a patch made the suite check less."""

from __future__ import annotations

import subprocess
import sys

from tests.support.db import ROOT
from workers.engine.suite_results import SuiteRun, checks_less, parse_junit, parse_output

JUNIT = (ROOT / "tests/data/reports/pytest_junit.xml").read_bytes()  # pytest 7.2 in the sandbox image


def test_a_pytest_junit_report_names_what_ran_and_what_was_skipped():
    run = parse_junit(JUNIT)
    assert run.tests == {
        "tests/test_mod.py": False,  # skipped at module level
        "tests/test_a.py::test_pass": True,
        "tests/test_a.py::test_fail": True,
        "tests/test_a.py::test_skip": False,
        "tests/test_a.py::test_xfail": False,
        "tests/test_a.py::test_xpass": True,
        "tests/test_a.py::TestK::test_p[1]": True,
        "tests/test_a.py::TestK::test_p[a/b]": True,
    }
    assert (run.ran, run.skipped, run.collected) == (5, 3, 8)


def test_reports_that_are_not_plain_xml_are_not_read():
    bomb = (b'<?xml version="1.0"?><!DOCTYPE t [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]>'
            b"<testsuites><testcase classname='x' name='&b;'/></testsuites>")
    assert parse_junit(bomb) is None
    assert parse_junit(b"<testsuites><testcase") is None
    assert parse_junit(b"") is None and parse_junit(None) is None


def test_summaries_of_other_runners():
    assert parse_output("...\n==== 1 failed, 2 passed, 1 skipped, 3 deselected, 1 xfailed, 2 warnings in 0.12s ====\n") \
        == SuiteRun("pytest", 3, 2)
    assert parse_output("3 passed in 0.05s\n") == SuiteRun("pytest", 3, 0)
    assert parse_output("==== no tests ran in 0.01s ====\n") == SuiteRun("pytest", 0, 0)
    assert parse_output("Test Suites: 1 passed, 1 total\nTests:       1 skipped, 1 todo, 2 passed, 4 total\n") \
        == SuiteRun("jest", 2, 2)
    assert parse_output(" Test Files  1 passed (1)\n      Tests  2 passed | 1 skipped (3)\n") == SuiteRun("jest", 2, 1)
    cargo = ("running 3 tests\ntest tests::adds ... ok\ntest tests::slow ... ignored\ntest tests::subs ... ok\n\n"
             "test result: ok. 2 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.00s\n")
    assert parse_output(cargo) == SuiteRun("cargo", 2, 1, {"tests::adds": True, "tests::slow": False,
                                                           "tests::subs": True})
    go = "=== RUN   TestAdd\n--- PASS: TestAdd (0.00s)\n=== RUN   TestNet\n    --- SKIP: TestNet (0.00s)\nok  calc 0.01s\n"
    assert parse_output(go) == SuiteRun("go", 1, 1, {"TestAdd": True, "TestNet": False})
    assert parse_output(cargo, truncated=True) is None  # a sum over a cut output means nothing
    assert parse_output("ok  calc 0.01s\n") is None  # go test without -v names nothing


def test_reading_hostile_output_takes_linear_time():
    hostile = """
from workers.engine.suite_results import parse_output
parse_output(("1" * 1900 + " in 1s\\n") * 200 + "Tests " + " " * 1900 + "\\n" + ("--- SKIP: " + "x" * 5000 + "\\n") * 200)
parse_output("1" * 10_000_000 + " in 1s")
print("done")
"""
    done = subprocess.run([sys.executable, "-c", hostile], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert done.stdout.strip() == "done", done.stderr


def test_a_patch_that_checks_less_is_named_and_one_that_checks_as_much_is_not():
    before = SuiteRun("pytest", 2, 0, {"t.py::a": True, "t.py::b": True})
    assert checks_less(before, SuiteRun("pytest", 2, 0, {"t.py::a": True, "t.py::b": True}), "pytest") == []
    assert checks_less(before, SuiteRun("pytest", 3, 0, {"t.py::a": True, "t.py::b": True, "t.py::c": True}),
                       "pytest") == []
    skipped = checks_less(before, SuiteRun("pytest", 1, 1, {"t.py::a": False, "t.py::b": True}), "pytest")
    assert skipped == ["the patch skips 1 test that ran before: t.py::a (allow with repair.allow_test_changes)"]
    fewer = checks_less(before, SuiteRun("pytest", 1, 0, {"t.py::b": True}), "pytest")
    assert fewer == ["`pytest` runs fewer tests: 2 collected before the patch, 1 after; no longer run: t.py::a "
                     "(allow with repair.allow_test_changes)"]
    # counts only (a runner that names nothing): one more skipped is enough
    assert checks_less(SuiteRun("jest", 4, 0), SuiteRun("jest", 3, 1), "npm test") == [
        "`npm test` skips more tests: 0 skipped or xfailed before the patch, 1 after "
        "(allow with repair.allow_test_changes)"]
    assert checks_less(SuiteRun("jest", 4, 0), None, "npm test") == [
        "`npm test` no longer reports its tests (4 ran before the patch) (allow with repair.allow_test_changes)"]
    assert checks_less(None, SuiteRun("jest", 4, 0), "npm test") == []  # nothing to compare with
    # a repository that lets fixes delete tests (repair.allow_test_deletion) runs fewer, not more skipped
    assert checks_less(before, SuiteRun("pytest", 1, 0, {"t.py::b": True}), "pytest", fewer_allowed=True) == []
    assert checks_less(before, SuiteRun("pytest", 1, 1, {"t.py::a": False, "t.py::b": True}), "pytest",
                       fewer_allowed=True) == skipped
