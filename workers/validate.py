"""Validate a candidate patch: what it touches is allowed, and in a fresh worktree and sandbox the
failing command passes and the regression command still passes."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field

from workers.workspace import FileChange, patch_files

CI_PATHS = (".github/workflows/*", ".github/actions/*", ".gitlab-ci.yml", ".circleci/*", "azure-pipelines.yml",
            ".travis.yml", "Jenkinsfile", ".buildkite/*", ".github/qwen.yml")
TEST_PATHS = ("tests/*", "test/*", "*/tests/*", "*/test/*", "test_*.py", "*/test_*.py", "*_test.py", "*_test.go",
              "*.test.js", "*.test.ts", "*.spec.js", "*.spec.ts", "__tests__/*", "*/__tests__/*")


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reasons: list[str] = field(default_factory=list)


def _matches(path: str, patterns) -> bool:
    return any(fnmatch.fnmatchcase(path, pattern) for pattern in patterns)


def check_paths(patch: str, allow_ci_changes: bool = False, allow_test_deletion: bool = False,
                ignore_paths: tuple[str, ...] = ()) -> Verdict:
    """Refuse patches that change CI configuration, delete tests, or touch ignored paths (unless allowed)."""
    if not patch.strip():
        return Verdict(False, ["the patch is empty"])
    reasons = []
    changes: list[FileChange] = patch_files(patch)
    for change in changes:
        paths = {p for p in (change.path, change.old_path) if p}
        if not allow_ci_changes and any(_matches(p, CI_PATHS) for p in paths):
            reasons.append(f"changes CI configuration ({change.path})")
        renamed_away = change.is_rename and _matches(change.old_path or "", TEST_PATHS) and not _matches(change.path, TEST_PATHS)
        if not allow_test_deletion and ((change.is_deleted and _matches(change.path, TEST_PATHS)) or renamed_away):
            reasons.append(f"deletes a test file ({change.old_path or change.path})")
        if ignore_paths and any(_matches(p, ignore_paths) for p in paths):
            reasons.append(f"touches an ignored path ({change.path})")
    return Verdict(not reasons, reasons)
