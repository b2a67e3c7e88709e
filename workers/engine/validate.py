"""Validate a candidate patch: what it touches is allowed, and in a pristine worktree and a fresh
sandbox the failing command passes and the regression command still passes. Nothing unverified is
ever chosen."""

from __future__ import annotations

import fnmatch

from workers.engine.stations import Stations
from workers.engine.task import RepairTask, Verdict
from workers.sandbox import ExecResult, Sandbox
from workers.workspace.git import PatchApplyError
from workers.workspace.patches import apply_patch, patch_files

CI_PATHS = (".github/workflows/*", ".github/actions/*", ".github/qwen.yml", ".gitlab-ci.yml", ".gitlab/ci/*",
            ".circleci/*", "azure-pipelines.yml", ".azure-pipelines/*", ".travis.yml", "Jenkinsfile",
            ".buildkite/*", "bitbucket-pipelines.yml", ".drone.yml", ".woodpecker/*", ".woodpecker.yml",
            "appveyor.yml", ".appveyor.yml")
TEST_PATHS = ("tests/*", "test/*", "*/tests/*", "*/test/*", "spec/*", "*/spec/*", "__tests__/*", "*/__tests__/*",
              "test_*.py", "*/test_*.py", "*_test.py", "conftest.py", "*/conftest.py", "*_test.go",
              "*.test.[jt]s", "*.test.[jt]sx", "*.spec.[jt]s", "*.spec.[jt]sx", "*_spec.rb", "*Test.java",
              "*Tests.java")


def _matches(path: str, patterns) -> bool:
    return any(fnmatch.fnmatchcase(path, pattern) for pattern in patterns)


def check_paths(patch: str, allow_ci_changes: bool = False, allow_test_deletion: bool = False,
                ignore_paths: tuple[str, ...] = ()) -> Verdict:
    """Refuse empty patches and patches that change CI configuration, delete (or rename away) test
    files, or touch ignored paths, unless allowed. Modifying a test is allowed."""
    if not patch.strip():
        return Verdict(False, ["the patch is empty"])
    reasons = []
    for change in patch_files(patch):
        paths = {p for p in (change.path, change.old_path) if p}
        if not allow_ci_changes and any(_matches(p, CI_PATHS) for p in paths):
            reasons.append(f"changes CI configuration ({change.path})")
        renamed_away = (change.is_rename and _matches(change.old_path or "", TEST_PATHS)
                        and not _matches(change.path, TEST_PATHS))
        if not allow_test_deletion and ((change.is_deleted and _matches(change.path, TEST_PATHS)) or renamed_away):
            reasons.append(f"deletes a test file ({change.old_path or change.path})")
        if ignore_paths and any(_matches(p, ignore_paths) for p in paths):
            reasons.append(f"touches an ignored path ({change.path})")
    return Verdict(not reasons, reasons)


def setup_failure(sandbox: Sandbox, task: RepairTask) -> ExecResult | None:
    """Run the task's setup command, if any; its result when it fails, else None."""
    if not task.setup:
        return None
    result = sandbox.exec(task.setup, cwd=task.working_directory)
    return None if result.ok else result


def validate(task: RepairTask, patch: str, stations: Stations) -> Verdict:
    """The patch is allowed, applies to a pristine worktree, and there, in a fresh (or refreshed)
    sandbox, the command (and the regression command, when given) passes."""
    verdict = check_paths(patch, task.allow_ci_changes, task.allow_test_deletion, task.ignore_paths)
    if not verdict.ok:
        return verdict
    with stations.station() as station:
        try:
            apply_patch(station.worktree, patch)
        except PatchApplyError as exc:
            return Verdict(False, [str(exc)])
        sandbox = station.sandbox()
        if setup_failure(sandbox, task) is not None:
            return Verdict(False, ["the setup command fails with the patch applied"])
        result = sandbox.exec(task.command, cwd=task.working_directory)
        if not result.ok:
            return Verdict(False, [f"`{task.command}` still fails ({_status(result)})"])
        regression = None
        if task.regression_command:
            regression = sandbox.exec(task.regression_command, cwd=task.working_directory)
            if not regression.ok:
                return Verdict(False, [f"the regression command `{task.regression_command}` fails "
                                       f"({_status(regression)})"])
    return Verdict(True, [], after=result, regression=regression)


def _status(result: ExecResult) -> str:
    if result.timed_out:
        return "timed out"
    return "out of memory" if result.oom_killed else f"exit {result.exit_code}"
