"""What a test run's output says: how many tests passed and failed, and which failed — read from the
summaries pytest, unittest, go test, cargo test, Jest and Mocha print. Plain text in, plain values
out; used to show which tests a fix turned from failing to passing."""

from __future__ import annotations

import re
from dataclasses import dataclass

from workers.failure.log import PYTEST_NODE

_PYTEST_COUNTS = re.compile(r"^(?:=+ )?((?:\d+ (?:failed|passed|errors?|skipped|xfailed|xpassed|warnings?|"
                            r"deselected|rerun)(?:, )?)+) in [\d.]+s")
_COUNT = re.compile(r"(\d+) (\w+)")
_UNITTEST_RAN = re.compile(r"^Ran (\d+) tests? in ")
_UNITTEST_FAILED = re.compile(r"^FAILED \((.*)\)$")
_UNITTEST_NAME = re.compile(r"^(?:FAIL|ERROR): (\S+) \(([\w.]+)\)")
_GO_FAIL = re.compile(r"^\s*--- FAIL: (\S+)")
_GO_PASS = re.compile(r"^\s*--- PASS: (\S+)")
_CARGO = re.compile(r"^test result: \w+\. (\d+) passed; (\d+) failed")
_CARGO_NAME = re.compile(r"^test (\S+) \.\.\. FAILED")
_JEST = re.compile(r"^Tests:\s+(.*\d+ total)")
_JEST_NAME = re.compile(r"^\s*✕ (.+?)(?: \(\d+ ?m?s\))?$")
_MOCHA = re.compile(r"^\s*(\d+) (passing|failing)\b")
MAX_NAMES = 200


@dataclass(frozen=True)
class TestRun:
    __test__ = False  # not a pytest test class

    passed: int | None = None  # None: the output shows no count
    failed: int | None = None
    failing: tuple[str, ...] = ()

    def counts(self) -> str:
        """e.g. "1 failed, 4 passed"; "" when the output has no summary."""
        parts = [f"{n} {word}" for n, word in ((self.failed, "failed"), (self.passed, "passed")) if n]
        if not parts and self.passed == 0 and self.failed == 0:
            return "no tests ran"
        return ", ".join(parts)


def read_test_run(output: str) -> TestRun:
    lines = output.splitlines()
    passed = failed = None
    failing: list[str] = []

    def add(n_passed: int | None, n_failed: int | None) -> None:
        nonlocal passed, failed
        if n_passed is not None:
            passed = (passed or 0) + n_passed
        if n_failed is not None:
            failed = (failed or 0) + n_failed

    ran = None
    for line in lines:
        text = line.rstrip()
        if m := _PYTEST_COUNTS.match(text):
            counts = {word: int(n) for n, word in _COUNT.findall(m.group(1))}
            add(counts.get("passed", 0), counts.get("failed", 0) + counts.get("error", 0) + counts.get("errors", 0))
        elif m := _UNITTEST_RAN.match(text):
            ran = int(m.group(1))
        elif (m := _UNITTEST_FAILED.match(text)) and ran is not None:
            bad = sum(int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(1)) if k in ("failures", "errors"))
            add(ran - bad, bad)
            ran = None
        elif (text == "OK" or text.startswith("OK (")) and ran is not None:
            add(ran, 0)
            ran = None
        elif m := _UNITTEST_NAME.match(text):  # Python 3.11+ shows the full id in the parentheses
            method, where = m.group(1), m.group(2)
            failing.append(where if where.endswith(f".{method}") else f"{where}.{method}")
        elif (m := PYTEST_NODE.match(text)) and not m.group(1).startswith("("):
            failing.append(m.group(1))
        elif m := _GO_FAIL.match(text):
            failing.append(m.group(1))
            add(None, 1)
        elif _GO_PASS.match(text):
            add(1, None)
        elif m := _CARGO.match(text):
            add(int(m.group(1)), int(m.group(2)))
        elif m := _CARGO_NAME.match(text):
            failing.append(m.group(1))
        elif m := _JEST.match(text):
            counts = {word: int(n) for n, word in _COUNT.findall(m.group(1))}
            add(counts.get("passed", 0), counts.get("failed", 0))
        elif m := _JEST_NAME.match(text):
            failing.append(m.group(1))
        elif m := _MOCHA.match(text):
            if m.group(2) == "passing":
                add(int(m.group(1)), None)
            else:
                add(None, int(m.group(1)))
    return TestRun(passed, failed, tuple(dict.fromkeys(failing))[:MAX_NAMES])


def now_passing(before: TestRun, after: TestRun, after_ok: bool) -> list[str]:
    """Tests that failed before and do not fail after (all of them when the run after passed)."""
    if after_ok:
        return list(before.failing)
    still = set(after.failing)
    return [name for name in before.failing if name not in still]
