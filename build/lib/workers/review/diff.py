"""The pull request's diff as the model reads it (head-side line numbers on every line it may
comment on), and the lines GitHub accepts review comments on."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field

from unidiff import PatchSet
from unidiff.errors import UnidiffParseError

from workers.github.pulls import PullFile, right_side_lines

MAX_DIFF_CHARS = 60_000  # of numbered diff in one prompt; files past it are listed, not shown


@dataclass
class ReviewDiff:
    text: str  # numbered diff for the prompt
    commentable: dict[str, set[int]] = field(default_factory=dict)  # path → head-side lines on the diff
    left_out: list[str] = field(default_factory=list)  # files not shown (binary, too large, ignored)


def review_diff(files: list[PullFile], ignore: tuple[str, ...] | list[str] = (),
                budget: int = MAX_DIFF_CHARS) -> ReviewDiff:
    diff = ReviewDiff("")
    parts: list[str] = []
    used = 0
    for f in files:
        if any(fnmatch.fnmatchcase(f.filename, pattern) for pattern in ignore):
            diff.left_out.append(f"{f.filename} (paths.ignore)")
            continue
        if f.status == "removed" or not f.patch:
            diff.left_out.append(f"{f.filename} ({'removed' if f.status == 'removed' else 'no text diff'})")
            continue
        shown = _numbered(f.filename, f.patch)
        if shown is None:
            diff.left_out.append(f"{f.filename} (diff not readable)")
            continue
        if used + len(shown) > budget:
            diff.left_out.append(f"{f.filename} (over the size budget)")
            continue
        parts.append(shown)
        used += len(shown)
        diff.commentable[f.filename] = set().union(*(right_side_lines(f.filename, f.patch) or [set()]))
    diff.text = "\n".join(parts)
    return diff


def _numbered(path: str, patch: str) -> str | None:
    try:
        parsed = PatchSet(f"--- a/{path}\n+++ b/{path}\n{patch.rstrip(chr(10))}\n")
    except (UnidiffParseError, ValueError):
        return None
    if not len(parsed):
        return None
    lines = [f"### {path}"]
    for hunk in parsed[0]:
        lines.append(f"@@ -{hunk.source_start},{hunk.source_length} +{hunk.target_start},{hunk.target_length} @@")
        for line in hunk:
            number = f"{line.target_line_no:>5}" if line.target_line_no is not None else "     "
            lines.append(f"{number} {line.line_type}{line.value.rstrip(chr(10))}")
    return "\n".join(lines) + "\n"


SEVERITY_ORDER = {"bug": 0, "risk": 1, "nit": 2}


def place(findings: list, commentable: dict[str, set[int]], limit: int) -> tuple[list, list]:
    """(findings on a head-side line of the diff, at most ``limit``, worst first; the rest)."""
    inline, elsewhere, seen = [], [], set()
    for finding in sorted(findings, key=lambda f: SEVERITY_ORDER.get(f.severity, 1)):
        key = (finding.path, finding.line, finding.message)
        if key in seen:
            continue
        seen.add(key)
        on_diff = finding.line in commentable.get(finding.path, set())
        (inline if on_diff and len(inline) < limit else elsewhere).append(finding)
    return inline, elsewhere
