"""What a test run checked: how many tests ran and how many were skipped (xfail included), and
which ones when the runner names them; and whether a patch made the suite check less.

Read from pytest's JUnit XML report (pytest) or from the runner's summary in the output (pytest,
jest, vitest, cargo test, go test -v). Both were written by code under test: they are parsed with
size limits, never with a backtracking regex, and an XML document may carry no DTD (so no
entities to expand)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass

from workers.engine.weakened_tests import ALLOW_HINT

MAX_REPORT_BYTES = 16 * 1024 * 1024
MAX_TESTS = 200_000
MAX_ID_CHARS = 300
SHOWN = 5  # test ids named in a reason


@dataclass(frozen=True)
class SuiteRun:
    """One run's tests. ``tests`` maps a test id to whether it ran (False: skipped or xfailed),
    when the runner names its tests (None: only the counts are known)."""

    runner: str
    ran: int
    skipped: int
    tests: dict[str, bool] | None = None

    @property
    def collected(self) -> int:
        return self.ran + self.skipped


def parse_junit(data: bytes | None) -> SuiteRun | None:
    """A pytest JUnit XML report (``-o junit_family=xunit1``: test cases carry their file)."""
    if not data or len(data) > MAX_REPORT_BYTES:
        return None
    head = data[:4096].lower()
    if b"<!doctype" in head or b"<!entity" in data.lower():
        return None
    try:
        root = ElementTree.fromstring(data)
    except ElementTree.ParseError:
        return None
    tests: dict[str, bool] = {}
    for case in root.iter("testcase"):
        if len(tests) >= MAX_TESTS:
            return None
        test_id = _pytest_id(case.get("file") or "", case.get("classname") or "", case.get("name") or "")
        tests[test_id] = case.find("skipped") is None
    ran = sum(tests.values())
    return SuiteRun("pytest", ran, len(tests) - ran, tests)


def _pytest_id(file: str, classname: str, name: str) -> str:
    """pytest's node id (tests/test_a.py::TestK::test_p[1]) from a JUnit test case."""
    module = file.removesuffix(".py").replace("/", ".")
    if file and classname == module:
        test_id = f"{file}::{name}"
    elif file and classname.startswith(module + "."):
        test_id = f"{file}::{classname[len(module) + 1:].replace('.', '::')}::{name}"
    elif file and not classname:  # a module that was skipped or failed to import as a whole
        test_id = file
    else:
        test_id = f"{classname}::{name}" if classname else name
    return test_id[:MAX_ID_CHARS]


MAX_LINE_CHARS = 2000  # longer lines are not a runner's summary
_PYTEST_COUNT = re.compile(r"(\d+) (passed|failed|skipped|deselected|xfailed|xpassed|errors?|warnings?|rerun)")
_PYTEST_TIME = re.compile(r"\d+(?:\.\d+)?s(?: \(\d+:\d\d:\d\d\))?")
# (?<!\d): a number is read from its first digit only, so a long run of digits is read once
_JEST_COUNT = re.compile(r"(?<!\d)(\d+) (skipped|todo|failed|passed|total)")
_CARGO_RESULT = re.compile(r"^test result: \w+\. (\d+) passed; (\d+) failed; (\d+) ignored;")
_CARGO_TEST = re.compile(r"^test (\S+) \.\.\. (ok|FAILED|ignored)\b")
_GO_TEST = re.compile(r"^\s*--- (PASS|FAIL|SKIP): (\S+)")


def parse_output(output: str, truncated: bool = False) -> SuiteRun | None:
    """The test counts a runner printed. Summaries read from the end of the output survive its
    truncation (head + tail); counts summed over the whole output (cargo, go) do not, and then
    None is returned."""
    lines = [line for line in output.splitlines() if len(line) <= MAX_LINE_CHARS]
    for parse in (_pytest_summary, _jest_summary):
        run = parse(lines)
        if run is not None:
            return run
    if truncated:
        return None
    return _cargo(lines) or _go(lines)


def _pytest_summary(lines: list[str]) -> SuiteRun | None:
    """pytest's last line: "1 failed, 2 passed, 1 skipped, 1 deselected in 0.12s" (maybe in ===)."""
    for line in reversed(lines[-200:]):
        counted, _, took = line.strip().strip("=").strip().rpartition(" in ")
        if not counted or not _PYTEST_TIME.fullmatch(took):
            continue
        if counted == "no tests ran":
            return SuiteRun("pytest", 0, 0)
        parts = [_PYTEST_COUNT.fullmatch(part) for part in counted.split(", ")]
        if all(parts):
            counts: dict[str, int] = {}
            for part in parts:
                word = {"error": "errors", "warning": "warnings"}.get(part.group(2), part.group(2))
                counts[word] = counts.get(word, 0) + int(part.group(1))
            skipped = counts.get("skipped", 0) + counts.get("xfailed", 0) + counts.get("xpassed", 0)
            return SuiteRun("pytest", counts.get("passed", 0) + counts.get("failed", 0) + counts.get("errors", 0),
                            skipped)
    return None


def _jest_summary(lines: list[str]) -> SuiteRun | None:
    """jest: "Tests:       1 skipped, 1 failed, 2 passed, 4 total"; vitest: "Tests  2 passed | 1 skipped (3)"."""
    for line in reversed(lines[-200:]):
        text = line.strip()
        if text.startswith("Tests:"):  # jest
            counts = {word: int(number) for number, word in _JEST_COUNT.findall(text)}
            total = counts.get("total", 0)
        elif text.startswith("Tests ") and text.endswith(")") and text[text.rfind("(") + 1:-1].isdigit():  # vitest
            counts = {word: int(number) for number, word in _JEST_COUNT.findall(text[:text.rfind("(")])}
            total = int(text[text.rfind("(") + 1:-1])
        else:
            continue
        skipped = counts.get("skipped", 0) + counts.get("todo", 0)
        return SuiteRun("jest", total - skipped, skipped)
    return None


def _cargo(lines: list[str]) -> SuiteRun | None:
    """cargo test: one "test result: ok. 3 passed; 0 failed; 1 ignored; …" per test binary."""
    ran = skipped = 0
    found = False
    tests: dict[str, bool] = {}
    for line in lines:
        result = _CARGO_RESULT.match(line)
        if result:
            found = True
            ran += int(result.group(1)) + int(result.group(2))
            skipped += int(result.group(3))
        test = _CARGO_TEST.match(line)
        if test and len(tests) < MAX_TESTS:
            tests[test.group(1)[:MAX_ID_CHARS]] = test.group(2) != "ignored"
    return SuiteRun("cargo", ran, skipped, tests if len(tests) == ran + skipped else None) if found else None


def _go(lines: list[str]) -> SuiteRun | None:
    """go test -v: "--- PASS: TestX (0.00s)", "--- SKIP: TestY (0.00s)", subtests indented."""
    tests: dict[str, bool] = {}
    for line in lines:
        test = _GO_TEST.match(line)
        if test and len(tests) < MAX_TESTS:
            tests[test.group(2)[:MAX_ID_CHARS]] = test.group(1) != "SKIP"
    if not tests:
        return None
    ran = sum(tests.values())
    return SuiteRun("go", ran, len(tests) - ran, tests)


def checks_less(before: SuiteRun | None, after: SuiteRun | None, command: str,
                fewer_allowed: bool = False) -> list[str]:
    """Why the run after the patch checks less than the run before it: fewer tests collected
    (unless ``fewer_allowed``: the repository lets fixes delete tests), or more skipped or xfailed,
    naming the tests when the runner names them. [] when it does not, or when there is nothing to
    compare (no test results before the patch)."""
    if before is None:
        return []
    if after is None:
        return [f"`{command}` no longer reports its tests ({before.ran} ran before the patch) {ALLOW_HINT}"]
    reasons = []
    named = before.tests is not None and after.tests is not None
    now_skipped = [t for t, ran in before.tests.items() if ran and after.tests.get(t) is False] if named else []
    gone = [t for t, ran in before.tests.items() if ran and t not in after.tests] if named else []
    if now_skipped:
        reasons.append(f"the patch skips {_count(len(now_skipped))} that ran before: {_names(now_skipped)} {ALLOW_HINT}")
    if after.collected < before.collected and not fewer_allowed:
        reasons.append(f"`{command}` runs fewer tests: {before.collected} collected before the patch, "
                       f"{after.collected} after{_also(gone)} {ALLOW_HINT}")
    elif after.skipped > before.skipped and len(now_skipped) < after.skipped - before.skipped:
        reasons.append(f"`{command}` skips more tests: {before.skipped} skipped or xfailed before the patch, "
                       f"{after.skipped} after{_also(gone)} {ALLOW_HINT}")
    return reasons


def _count(n: int) -> str:
    return f"{n} test" if n == 1 else f"{n} tests"


def _names(ids: list[str]) -> str:
    shown = ", ".join(ids[:SHOWN])
    return shown + (f" and {len(ids) - SHOWN} more" if len(ids) > SHOWN else "")


def _also(gone: list[str]) -> str:
    return f"; no longer run: {_names(gone)}" if gone else ""
