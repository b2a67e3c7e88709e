"""What a delivered fix changes, as blocks of lines — one per hunk of its patch — and whether a later
version of a file still has them. A suggestion is "applied" when a later commit has its block; a fix
commit is "kept" when the merged head still has every block."""

from __future__ import annotations

from typing import Any

from unidiff import PatchSet
from unidiff.errors import UnidiffParseError


def hunk_replacement(lines: list[Any]) -> tuple[int, int, str] | None:
    """(first head line replaced, last head line replaced, replacement text) for one hunk of a patch
    against the head, trimmed to the span between its first and last change; a pure insertion is
    anchored on a neighbouring unchanged line. This is where a ```suggestion for the hunk sits."""
    lines = [ln for ln in lines if ln.is_added or ln.is_removed or ln.is_context]
    changed = [i for i, ln in enumerate(lines) if ln.is_added or ln.is_removed]
    if not changed:
        return None
    first, last = changed[0], changed[-1]
    segment = lines[first : last + 1]
    old = [ln.source_line_no for ln in segment if ln.is_removed or ln.is_context]
    new = [ln.value for ln in segment if ln.is_added or ln.is_context]
    if not old:  # a pure insertion: anchor on a neighbouring unchanged line
        if first > 0 and lines[first - 1].is_context:
            anchor = lines[first - 1]
            old, new = [anchor.source_line_no], [anchor.value, *new]
        elif last + 1 < len(lines) and lines[last + 1].is_context:
            anchor = lines[last + 1]
            old, new = [anchor.source_line_no], [*new, anchor.value]
        else:
            return None
    text = "".join(v if v.endswith("\n") else v + "\n" for v in new)
    return old[0], old[-1], text


def fix_blocks(patch: str) -> list[dict]:
    """One block per hunk: its file, the head line a suggestion for it sits on, and the lines the file
    has once the hunk is applied (with an unchanged line on each side, so a deletion is a block too)."""
    try:
        parsed = PatchSet(patch)
    except (UnidiffParseError, ValueError):
        return []
    blocks = []
    for pf in parsed:
        if pf.is_removed_file:
            blocks.append({"path": pf.path, "deleted": True, "line": None, "lines": [], "state": "pending", "sha": None})
            continue
        for hunk in pf:
            lines = [ln for ln in hunk if ln.is_added or ln.is_removed or ln.is_context]
            changed = [i for i, ln in enumerate(lines) if ln.is_added or ln.is_removed]
            if not changed:
                continue
            low = max(changed[0] - 1, 0)
            high = min(changed[-1] + 1, len(lines) - 1)
            after = [ln.value.rstrip("\n") for ln in lines[low : high + 1] if not ln.is_removed]
            placed = hunk_replacement(list(hunk))
            blocks.append({"path": pf.path, "deleted": False, "line": placed[1] if placed else None,
                           "lines": after, "state": "pending", "sha": None})
    return blocks


def present(block: dict, text: str | None) -> bool:
    """Whether ``text`` (the file at a later commit; None: no such file) has the block."""
    if block.get("deleted"):
        return text is None
    if text is None:
        return False
    want = [line.rstrip() for line in block["lines"]]
    have = [line.rstrip() for line in text.splitlines()]
    if not want:
        return True
    return any(have[i : i + len(want)] == want for i in range(len(have) - len(want) + 1))
