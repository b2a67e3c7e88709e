"""Validate a candidate patch: what it touches is allowed, and in a pristine worktree and a fresh
sandbox the failing command passes and the regression command still passes, checking as many
tests as before the patch. Nothing unverified is ever chosen."""

from __future__ import annotations

import fnmatch
import re
import shlex
import threading
import uuid
from dataclasses import replace
from pathlib import Path, PurePosixPath

from workers.engine.stations import Stations
from workers.engine.suite_results import (
    MAX_REPORT_BYTES,
    SuiteRun,
    checks_less,
    parse_junit,
    parse_output,
)
from workers.engine.task import RepairTask, Verdict
from workers.engine.weakened_tests import (
    changes_test_settings,
    check_test_changes,
    is_shared_config,
)
from workers.sandbox import WORKSPACE_MOUNT, ExecResult, Sandbox
from workers.sandbox.output import disk_exceeded
from workers.workspace.git import PatchApplyError
from workers.workspace.patches import apply_patch, patch_files
from workers.workspace.sandbox_files import read_sandbox_file

CI_PATHS = (".github/workflows/*", ".github/actions/*", ".github/qwen.yml", ".gitlab-ci.yml", ".gitlab/ci/*",
            ".circleci/*", "azure-pipelines.yml", ".azure-pipelines/*", ".travis.yml", "Jenkinsfile",
            ".buildkite/*", "bitbucket-pipelines.yml", ".drone.yml", ".woodpecker/*", ".woodpecker.yml",
            "appveyor.yml", ".appveyor.yml")
GITHUB_PATHS = (".github/*",)  # CODEOWNERS, dependabot.yml, templates…: protected like CI configuration
TEST_PATHS = ("tests/*", "test/*", "*/tests/*", "*/test/*", "spec/*", "*/spec/*", "__tests__/*", "*/__tests__/*",
              "test_*.py", "*/test_*.py", "*_test.py", "conftest.py", "*/conftest.py", "*_test.go",
              "*.test.[jt]s", "*.test.[jt]sx", "*.spec.[jt]s", "*.spec.[jt]sx", "*_spec.rb", "*Test.java",
              "*Tests.java")
TEST_FILE_NAMES = ("test_*.py", "*_test.py", "*_test.go", "*.test.[jt]s", "*.test.[jt]sx", "*.spec.[jt]s",
                   "*.spec.[jt]sx", "*_spec.rb", "*Test.java", "*Tests.java", "conftest.py")
REPORT_DIR = ".qwenfix-reports"  # in the workspace of a validation sandbox, never part of a patch
MAX_CONFIG_BYTES = 1024 * 1024
_NO_JUNIT = "unrecognized arguments: --junitxml"  # `-p no:junitxml` in the repository's pytest options


def _matches(path: str, patterns) -> bool:
    return any(fnmatch.fnmatchcase(path, pattern) for pattern in patterns)


def _still_a_test(old: str, new: str) -> bool:
    """Whether a test renamed from ``old`` to ``new`` is still run: a test file keeps a test file's
    name (`test_x.py` → `test_x.py.off` is not), other files under tests/ keep their suffix."""
    if _matches(PurePosixPath(old).name, TEST_FILE_NAMES):
        return _matches(PurePosixPath(new).name, TEST_FILE_NAMES)
    return _matches(new, TEST_PATHS) and PurePosixPath(old).suffix == PurePosixPath(new).suffix


def check_paths(patch: str, allow_ci_changes: bool = False, allow_test_deletion: bool = False,
                ignore_paths: tuple[str, ...] = (), allow_test_changes: bool = False) -> Verdict:
    """Refuse empty patches and patches that change CI configuration (or anything under .github/),
    delete (or rename away) test files, change the test runner's configuration, add skip / xfail
    markers, or touch ignored paths, unless allowed. Modifying a test otherwise is allowed."""
    if not patch.strip():
        return Verdict(False, ["the patch is empty"])
    reasons = []
    for change in patch_files(patch):
        paths = {p for p in (change.path, change.old_path) if p}
        if not allow_ci_changes and any(_matches(p, CI_PATHS) for p in paths):
            reasons.append(f"changes CI configuration ({change.path})")
        elif not allow_ci_changes and any(_matches(p, GITHUB_PATHS) for p in paths):
            reasons.append(f"changes repository configuration under .github/ ({change.path})")
        renamed_away = (change.is_rename and _matches(change.old_path or "", TEST_PATHS)
                        and not _still_a_test(change.old_path or "", change.path))
        if not allow_test_deletion and ((change.is_deleted and _matches(change.path, TEST_PATHS)) or renamed_away):
            reasons.append(f"deletes a test file ({change.old_path or change.path})")
        if ignore_paths and any(_matches(p, ignore_paths) for p in paths):
            reasons.append(f"touches an ignored path ({change.path})")
    if not allow_test_changes:
        reasons += check_test_changes(patch)
    return Verdict(not reasons, reasons)


def setup_failure(sandbox: Sandbox, task: RepairTask) -> ExecResult | None:
    """Run the task's setup command, if any; its result when it fails, else None."""
    if not task.setup:
        return None
    result = sandbox.exec(task.setup, cwd=task.working_directory)
    return None if result.ok else result


def measured_run(sandbox: Sandbox, root: Path, command: str, cwd: str) -> tuple[ExecResult, SuiteRun | None]:
    """Run ``command`` and read what its tests did: pytest writes a JUnit report (asked for through
    PYTEST_ADDOPTS, at a fresh name a patch cannot have committed) that the worker reads back
    safely; other runners are read from their output."""
    report = f"{REPORT_DIR}/{uuid.uuid4().hex}.xml"
    options = f"--junitxml={WORKSPACE_MOUNT}/{report} -o junit_family=xunit1"
    result = sandbox.exec(f"export PYTEST_ADDOPTS={shlex.quote(options)}\n{command}", cwd=cwd)
    if _NO_JUNIT in result.output:  # the repository turned pytest's junitxml plugin off: as written, then
        result = sandbox.exec(command, cwd=cwd)
        return result, parse_output(result.output, result.truncated)
    run = parse_junit(read_sandbox_file(root, report, MAX_REPORT_BYTES))
    # the report is qwenfix's, not the repository's: its line is not part of what the tests said
    line = re.compile(rf"^-* ?generated xml file: {re.escape(f'{WORKSPACE_MOUNT}/{report}')} ?-*\r?\n?", re.M)
    result = replace(result, output=line.sub("", result.output))
    return result, run or parse_output(result.output, result.truncated)


class Baseline:
    """What the task's commands check at the base commit, measured the way validation measures a
    candidate: `known` as the reproduction measured it, the rest once per repair and only when a
    candidate gets that far."""

    def __init__(self, task: RepairTask, stations: Stations, known: dict[str, SuiteRun | None] | None = None) -> None:
        self._task, self._stations = task, stations
        self._lock = threading.Lock()
        self._known = dict(known or {})
        self._runs: dict[str, SuiteRun | None] | None = None

    def runs(self) -> dict[str, SuiteRun | None]:
        with self._lock:
            if self._runs is None:
                self._runs = {**self._measure([c for c in _commands(self._task) if c not in self._known]),
                              **self._known}
            return self._runs

    def _measure(self, commands: list[str]) -> dict[str, SuiteRun | None]:
        if not commands:
            return {}
        task = self._task
        with self._stations.station() as station:
            sandbox = station.sandbox()
            if setup_failure(sandbox, task) is not None:
                return {}
            return {command: _run(sandbox, station.path, task, command, True)[1] for command in commands}


def validate(task: RepairTask, patch: str, stations: Stations, baseline: Baseline | None = None) -> Verdict:
    """The patch is allowed, applies to a pristine worktree, and there, in a fresh (or refreshed)
    sandbox, the command (and the regression command, when given) passes; with a baseline, their
    tests check no less than before the patch (unless repair.allow_test_changes)."""
    verdict = check_paths(patch, task.allow_ci_changes, task.allow_test_deletion, task.ignore_paths,
                          task.allow_test_changes)
    if not verdict.ok:
        return verdict
    measure = baseline is not None and not task.allow_test_changes
    after: dict[str, tuple[ExecResult, SuiteRun | None]] = {}
    with stations.station() as station:
        shared = [] if task.allow_test_changes else _shared_configs(patch)
        before = {path: _config_text(station.path, path) for path in shared}
        try:
            apply_patch(station.worktree, patch)
        except PatchApplyError as exc:
            return Verdict(False, [str(exc)])
        changed = [reason for path in shared
                   if (reason := changes_test_settings(path, before[path], _config_text(station.path, path)))]
        if changed:
            return Verdict(False, changed)
        sandbox = station.sandbox()
        if setup_failure(sandbox, task) is not None:
            return Verdict(False, ["the setup command fails with the patch applied"])
        for command in _commands(task):
            result, run = _run(sandbox, station.path, task, command, measure)
            if not result.ok:
                what = (f"`{command}` still fails" if command == task.command
                        else f"the regression command `{command}` fails")
                return Verdict(False, [f"{what} ({_status(result)})"])
            after[command] = (result, run)
    if measure:
        reasons = [reason for command, (result, run) in after.items()
                   if run is not None or not result.truncated  # a cut output says nothing either way
                   for reason in checks_less(baseline.runs().get(command), run, command,
                                             fewer_allowed=task.allow_test_deletion)]
        if reasons:
            return Verdict(False, reasons)
    ran = {command: result for command, (result, _run) in after.items()}
    return Verdict(True, [], after=ran.get(task.command),
                   regression=ran.get(task.regression_command) if task.regression_command else None)


def _run(sandbox: Sandbox, root: Path, task: RepairTask, command: str, measure: bool
         ) -> tuple[ExecResult, SuiteRun | None]:
    """One of the task's commands as CI ran it (its step's shell); the failing command in its step's
    directory, the regression command from the repository root (a workflow's test command carries
    its own `cd`)."""
    runnable, cwd = task.runnable(command), (task.working_directory if command == task.command else ".")
    if measure:
        return measured_run(sandbox, root, runnable, cwd)
    return sandbox.exec(runnable, cwd=cwd), None


def _commands(task: RepairTask) -> list[str]:
    return [task.command] + ([task.regression_command] if task.regression_command else [])


def _shared_configs(patch: str) -> list[str]:
    """The files the patch changes where only a part configures the tests (pyproject.toml, …)."""
    paths = {p for change in patch_files(patch) for p in (change.path, change.old_path) if p}
    return sorted(p for p in paths if is_shared_config(p))


def _config_text(root: Path, path: str) -> str | None:
    data = read_sandbox_file(root, path, MAX_CONFIG_BYTES)
    return None if data is None else data.decode("utf-8", "replace")


def _status(result: ExecResult) -> str:
    if result.disk_exceeded_mb:
        return disk_exceeded(result.disk_exceeded_mb)
    if result.timed_out:
        return "timed out"
    return "out of memory" if result.oom_killed else f"exit {result.exit_code}"
