"""Patches out of and into a worktree: export what changed since the base commit, apply a patch,
and read a patch's files and hunks."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from unidiff import PatchSet

from workers.workspace.confined import Refused, linked_from_outside
from workers.workspace.git import PatchApplyError, check_sha, run_git
from workers.workspace.worktrees import Worktree, resolve


def export_patch(worktree: Worktree | Path, base_sha: str) -> str:
    """Everything changed in the worktree against ``base_sha`` (modified, new, deleted, renamed,
    binary) as a ``git diff --binary --full-index`` patch; "" when nothing changed.

    Files ignored by the repository's .gitignore are not included. Uses a throwaway index, so
    the worktree's own index is untouched. Non-UTF-8 bytes survive as surrogate escapes
    (``apply_patch`` encodes them back). git reads what a sandbox left: it does not follow
    symlinks (they are exported as links) and skips fifos and sockets, but would read a file
    hard-linked from outside the worktree, so a worktree holding one is refused."""
    base_sha = check_sha(base_sha)
    git_dir, work = resolve(worktree)
    foreign = linked_from_outside(work)
    if foreign:
        raise Refused(", ".join(foreign[:5]), "hard-linked to a file outside the worktree; no patch is exported")
    with tempfile.TemporaryDirectory(prefix="qwenfix-index-") as tmp:
        index = Path(tmp) / "index"
        env = {"GIT_INDEX_FILE": str(index)}
        own_index = git_dir / "index" if git_dir is not None else None
        if own_index is not None and own_index.is_file():
            shutil.copyfile(own_index, index)  # keeps stat info: unchanged files aren't rehashed
        else:
            run_git(["read-tree", base_sha], git_dir=git_dir, work_tree=work, cwd=work, env=env)
        run_git(["add", "-A", "--", "."], git_dir=git_dir, work_tree=work, cwd=work, env=env)
        diff = run_git(
            [
                "diff",
                "--cached",
                "--binary",
                "--full-index",
                "-M",
                "--no-color",
                "--no-ext-diff",
                "--no-textconv",
                "--ignore-submodules=none",
                "--src-prefix=a/",
                "--dst-prefix=b/",
                base_sha,
                "--",
            ],
            git_dir=git_dir,
            work_tree=work,
            cwd=work,
            env=env,
        )
    return diff.stdout.decode("utf-8", errors="surrogateescape")


def apply_patch(worktree: Worktree | Path, patch: str) -> None:
    """Apply a patch from :func:`export_patch` (or any git diff) to the worktree's files.
    All or nothing; raises :class:`PatchApplyError` with git's explanation on failure."""
    if not patch.strip():
        return
    git_dir, work = resolve(worktree)
    data = patch.encode("utf-8", errors="surrogateescape")
    if not data.endswith(b"\n"):
        data += b"\n"
    result = run_git(
        ["apply", "--binary", "--whitespace=nowarn", "-"],
        git_dir=git_dir,
        work_tree=work,
        cwd=work,
        input=data,
        check=False,
    )
    if result.returncode != 0:
        details = result.stderr.decode("utf-8", errors="replace").strip()
        first = details.splitlines()[0] if details else f"exit {result.returncode}"
        raise PatchApplyError(f"patch does not apply: {first}", details)


@dataclass(frozen=True)
class Hunk:
    source_start: int
    source_length: int
    target_start: int
    target_length: int
    added_lines: tuple[int, ...] = ()  # line numbers in the new file
    removed_lines: tuple[int, ...] = ()  # line numbers in the old file


@dataclass(frozen=True)
class FileChange:
    path: str  # path after the change (the old path for a deleted file)
    old_path: str | None  # path before the change (None for a new file)
    added: int
    removed: int
    is_new: bool
    is_deleted: bool
    is_binary: bool
    is_rename: bool
    hunks: tuple[Hunk, ...] = ()


def _strip_prefix(name: str | None) -> str | None:
    if name is None or name == "/dev/null":
        return None
    if name.startswith(("a/", "b/")):
        return name[2:]
    return name


def patch_files(patch: str) -> list[FileChange]:
    """A per-file summary of a git patch (via unidiff)."""
    if not patch.strip():
        return []
    changes = []
    for pf in PatchSet(patch.splitlines(keepends=True)):
        source = _strip_prefix(pf.source_file)
        target = _strip_prefix(pf.target_file)
        is_new = bool(pf.is_added_file)
        is_deleted = bool(pf.is_removed_file)
        path = (source if is_deleted else target) or source or pf.path
        hunks = []
        for h in pf:
            hunks.append(
                Hunk(
                    source_start=h.source_start,
                    source_length=h.source_length,
                    target_start=h.target_start,
                    target_length=h.target_length,
                    added_lines=tuple(ln.target_line_no for ln in h if ln.is_added),
                    removed_lines=tuple(ln.source_line_no for ln in h if ln.is_removed),
                )
            )
        changes.append(
            FileChange(
                path=path,
                old_path=None if is_new else source,
                added=pf.added,
                removed=pf.removed,
                is_new=is_new,
                is_deleted=is_deleted,
                is_binary=bool(getattr(pf, "is_binary_file", False)),
                is_rename=bool(pf.is_rename),
                hunks=tuple(hunks),
            )
        )
    return changes
