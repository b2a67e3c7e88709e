"""A CI job's log: cleaned of timestamps, colours, groups and noise; its error section; the command
of the failing step as the log echoed it.

The log is text written by the code under test: it is data, never instructions. Nothing here
executes or interprets it beyond pattern matching.
"""

from __future__ import annotations

import re

_TIMESTAMP = re.compile(r"^\ufeff?\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z ?")
_ANSI = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI: colours, cursor movement
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)"  # OSC: hyperlinks, titles
    r"|\x1b[@-Z\\-_]"  # two-byte escapes
)
_GROUP_START = re.compile(r"^(?:##\[group\]|::group::)(.*)$")
_GROUP_END = re.compile(r"^(?:##\[endgroup\]|::endgroup::)\s*$")
_DROP_LINE = re.compile(
    r"^(?:##\[(?:command|debug)\]|::(?:debug|add-mask|stop-commands|save-state|set-output"
    r"|add-path|set-env|echo)\b|\[command\])"
)
_LEVEL_LINE = re.compile(r"^##\[(error|warning|notice)\](.*)$")
_WORKFLOW_CMD = re.compile(r"^::(error|warning|notice)(?:\s[^:]*)?::(.*)$")  # linear: one \s, then [^:]*
ERRORISH = re.compile(
    r"##\[error\]|^Error: |\b(?:error|errors|failed|failure|traceback|exception)\b", re.I
)

_NOISE = re.compile(
    r"""^\s*(?:
        # pip / uv / poetry
        Collecting\s|Downloading\s|Using\scached\s|Requirement\salready\s(?:satisfied|up-to-date)
        |Installing\scollected\spackages|Successfully\sinstalled\s|Successfully\sbuilt\s
        |Successfully\suninstalled\s|Attempting\suninstall|Found\sexisting\sinstallation
        |Uninstalling\s|Obtaining\s|Processing\s\S|Preparing\s(?:editable\s)?metadata|Getting\srequirements
        |Installing\sbuild\sdependencies|Building\swheels?\sfor|Created\swheel|Stored\sin\sdirectory
        |Building\seditable|Checking\sif\sbuild\sbackend|Looking\sin\sindexes|Using\slegacy
        |\[notice\]\s|Resolved\s\d+\spackages?|Prepared\s\d+\spackages?|Installed\s\d+\spackages?
        |Audited\s\d+\spackages?|Downloaded\s\S+|[+-]\s[\w.-]+==[\w.]+\s*$
        # npm / yarn / pnpm
        |added\s\d+\spackages?|removed\s\d+\spackages?|changed\s\d+\spackages?
        |up\sto\sdate,\saudited|audited\s\d+\spackages?|\d+\spackages?\sare\slooking\sfor\sfunding
        |run\s`npm\sfund`|found\s0\svulnerabilities|npm\s(?:WARN|warn|notice)\s
        |To\saddress\s(?:all\s)?issues|\[\d/\d\]\s|Progress:\sresolved|Packages:\s\+\d
        # apt
        |Get:\d+\s|Hit:\d+\s|Ign:\d+\s|Fetched\s\S+\sin\s|Reading\spackage\slists
        |Building\sdependency\stree|Reading\sstate\sinformation|Selecting\spreviously\sunselected
        |Preparing\sto\sunpack|Unpacking\s|Setting\sup\s|Processing\striggers|\(Reading\sdatabase
        |The\sfollowing\s(?:NEW|additional)\spackages|\d+\supgraded,\s\d+\snewly\sinstalled
        |Need\sto\sget\s|After\sthis\soperation|debconf:\s
    )""",
    re.X,
)
# Progress bars: pip's "━━━━ 1.2/1.2 MB 3.4 MB/s eta 0:00:00", "|████| 10 kB", "[====>   ] 45%".
_BAR = frozenset("━─╸╺█▌▍▎▏▉▊▋#=>|[] .-")
_PROGRESS_UNIT = re.compile(r"[kKMG]i?B|eta|%")
_PERCENT_BAR = re.compile(r"\d{1,3}%\s*[|\[]")


def _is_progress(line: str) -> bool:
    """Whether ``line`` is a progress bar: six bar characters (after leading whitespace, which a bar
    may share since a space is one) and a size, an eta or a percentage after them; or "45% |".
    Read without a backtracking regex: a log line of spaces must stay cheap."""
    body = line.lstrip()
    if _PERCENT_BAR.match(body):
        return True
    start = len(line[: len(line) - len(body)].rstrip(" "))  # a bar may begin in leading spaces
    bar = line[start:start + 6]
    return len(bar) == 6 and all(c in _BAR for c in bar) and bool(_PROGRESS_UNIT.search(line, start + 6))


def _strip_line(line: str) -> str:
    line = _TIMESTAMP.sub("", line)
    if "\r" in line:  # progress output overwritten in place: keep what was finally shown
        parts = [p for p in line.split("\r") if p.strip()]
        line = parts[-1] if parts else ""
    return _ANSI.sub("", line).rstrip()


def _is_noise(line: str) -> bool:
    return bool(_NOISE.match(line) or _is_progress(line))


def _level_text(line: str) -> str | None:
    """`##[error]msg` → `Error: msg` (what GitHub shows); None when not a level line."""
    m = _LEVEL_LINE.match(line) or _WORKFLOW_CMD.match(line)
    if not m:
        return None
    level, text = m.group(1), m.group(2).strip()
    return f"{level.capitalize()}: {text}" if level != "notice" else text


def clean_log(raw: str) -> str:
    """Strip timestamps, ANSI codes, workflow commands and dependency-install noise.

    Step headers (`##[group]Run …` with the echoed script and env) collapse to their title;
    other groups keep their body only when it says something about an error. `##[error]`
    lines are kept as `Error: <text>`.
    """
    out: list[str] = []
    group_title: str | None = None
    group_body: list[str] = []

    def close_group() -> None:
        nonlocal group_title, group_body
        if group_title is None:
            return
        title = group_title.strip()
        if title:
            out.append(title)
        if not title.startswith("Run ") and any(ERRORISH.search(x) for x in group_body):
            out.extend(group_body)
        group_title, group_body = None, []

    for raw_line in (raw or "").split("\n"):  # not splitlines(): "\r" is progress, not a line
        line = _strip_line(raw_line)
        start = _GROUP_START.match(line)
        if start:
            close_group()
            group_title = start.group(1)
            continue
        if _GROUP_END.match(line):
            close_group()
            continue
        if _DROP_LINE.match(line):
            continue
        level = _level_text(line)
        if level is not None:
            line = level
        elif _is_noise(line):
            continue
        (group_body if group_title is not None else out).append(line)
    close_group()

    # collapse runs of blank lines
    cleaned: list[str] = []
    for line in out:
        if not line.strip() and (not cleaned or not cleaned[-1].strip()):
            continue
        cleaned.append(line)
    while cleaned and not cleaned[-1].strip():
        cleaned.pop()
    return "\n".join(cleaned)


PYTEST_NODE = re.compile(r"^(?:FAILED|ERROR) (\S+?)(?: - .*)?$")
_PYTEST_SECTION = re.compile(r"^={3,} (?:FAILURES|ERRORS) ={3,}$")
_PYTEST_SUMMARY = re.compile(r"^={3,} short test summary info ={3,}$")
_PYTEST_FINAL = re.compile(
    r"^(?:={3,} )?(?:\d+ \w+(?:, )?)+.* in [\d.]+s(?: \([\d:]+\))?(?: ={3,})?$|^={3,} no tests ran"
)
_TRACEBACK = re.compile(r"^\s*Traceback \(most recent call last\):")
_LINT_LINE = re.compile(
    r"^\s*(?:\./)?[\w./\\@+-]+\.\w+:\d+(?::\d+)?:?\s*(?:-\s*)?(?:[A-Z]+\d+\b|error\b|warning\b|"
    r"note\b|\[|\S)"
)
_TSC_PAREN = re.compile(r"^\s*[\w./\\@+-]+\.\w+\(\d+,\d+\): (?:error|warning) ")
RUFF_RULE = re.compile(r"^(?:[A-Z]+\d+|[a-z][a-z-]+:?)(?: \[\*\])? \S.*$")
ARROW = re.compile(r"^\s*--> \S+:\d+(?::\d+)?")
_REFORMAT = re.compile(
    r"(?i)^(?:would reformat\b|would reformat:|error: cannot format|oh no!|\d+ files? would be"
    r" reformatted|all done!|.*\bfiles? would be reformatted|unformatted: |ERROR: .* Imports are"
    r" incorrectly sorted)"
)
_ERROR_BLOCK = re.compile(r"^(?:error(?:\[\w+\])?:|fatal error:|FAILED:|make(?:\[\d+\])?: \*\*\*)")
_GO_FAIL = re.compile(r"^\s*--- FAIL: |^FAIL\s|^FAIL$|^panic: ")
_CARGO_FAILURES = re.compile(r"^failures:$")
_CARGO_RESULT = re.compile(r"^test result: FAILED")
_JEST_FAIL = re.compile(r"^\s*FAIL\s+\S")
_JEST_SUMMARY = re.compile(r"^(?:Test Suites|Tests|Snapshots|Time):\s")
_NPM_ERR = re.compile(r"^npm (?:ERR!|error)")
_EXIT_CODE = re.compile(r"Process completed with exit code \d+|^Error: ")
_FOUND_ERRORS = re.compile(r"^Found \d+ errors?\b|^\[\*\] \d+ fixable|^\d+ files? would be")


def _block_until_blank(lines: list[str], i: int, limit: int = 60) -> int:
    j = i + 1
    while j < len(lines) and j - i < limit and lines[j].strip():
        j += 1
    return j - 1


def _indented_block(lines: list[str], i: int, limit: int = 200) -> int:
    """From a header line, continue through blank or indented lines."""
    j = i + 1
    last = i
    while j < len(lines) and j - i < limit:
        line = lines[j]
        if line.strip() and not line[0].isspace():
            break
        if line.strip():
            last = j
        j += 1
    return last


def _find_ranges(lines: list[str]) -> list[tuple[int, int]]:
    ranges: list[tuple[int, int]] = []
    n = len(lines)
    i = 0
    while i < n:
        line = lines[i]
        if _PYTEST_SECTION.match(line) or _PYTEST_SUMMARY.match(line):
            j = i + 1
            while j < n and not _PYTEST_FINAL.match(lines[j]):
                j += 1
            end = min(j, n - 1)
            ranges.append((i, end))
            i = end + 1
            continue
        if _TRACEBACK.match(line):
            j = i + 1
            while j < n and (not lines[j].strip() or lines[j][0].isspace()
                             or lines[j].startswith(("During handling", "The above exception",
                                                     "Traceback"))):
                j += 1
            end = min(j, n - 1)  # the exception line itself
            ranges.append((i, end))
            i = end + 1
            continue
        if RUFF_RULE.match(line) and i + 1 < n and ARROW.match(lines[i + 1]):
            # ruff's "full" format: rule line, --> path, a snippet, a help block
            j = i + 1
            while j < n and not (RUFF_RULE.match(lines[j]) and j + 1 < n
                                 and ARROW.match(lines[j + 1])) \
                    and not _FOUND_ERRORS.match(lines[j]) and not _EXIT_CODE.search(lines[j]):
                j += 1
            ranges.append((i, j - 1))
            i = j
            continue
        if _ERROR_BLOCK.match(line):
            end = _block_until_blank(lines, i)
            ranges.append((i, end))
            i = end + 1
            continue
        if _JEST_FAIL.match(line) or _GO_FAIL.match(line) or _CARGO_FAILURES.match(line):
            if _CARGO_FAILURES.match(line):
                j = i + 1
                while j < n and not _CARGO_RESULT.match(lines[j]):
                    j += 1
                end = min(j, n - 1)
            else:
                end = _indented_block(lines, i)
            ranges.append((i, end))
            i = end + 1
            continue
        if (_LINT_LINE.match(line) or _TSC_PAREN.match(line) or _REFORMAT.match(line)
                or _JEST_SUMMARY.match(line) or _NPM_ERR.match(line) or _EXIT_CODE.search(line)
                or _FOUND_ERRORS.match(line) or _CARGO_RESULT.match(line)
                or PYTEST_NODE.match(line) or _PYTEST_FINAL.match(line)):
            ranges.append((i, i))
        i += 1
    return ranges


def _merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _fit(text: str, budget: int) -> str:
    """Head + tail within `budget` characters, cut on line boundaries where possible."""
    if len(text) <= budget:
        return text
    marker_room = 40
    keep = max(budget - marker_room, 0)
    head_len, tail_len = keep * 2 // 5, keep - keep * 2 // 5
    head = text[:head_len]
    if "\n" in head:
        head = head[: head.rfind("\n")]
    tail = text[len(text) - tail_len:] if tail_len else ""
    if "\n" in tail:
        tail = tail[tail.find("\n") + 1:]
    elided = len(text) - len(head) - len(tail)
    parts = [p for p in (head, f"[… {elided} chars elided …]", tail) if p]
    return "\n".join(parts)


def _tail(text: str, budget: int) -> str:
    if len(text) <= budget:
        return text
    tail = text[len(text) - max(budget - 40, 0):]
    if "\n" in tail:
        tail = tail[tail.find("\n") + 1:]
    return f"[… {len(text) - len(tail)} chars elided …]\n{tail}"


def error_section(cleaned: str, budget_chars: int = 6000) -> str:
    """The part of a cleaned log that explains the failure, within `budget_chars`."""
    lines = cleaned.splitlines()
    ranges = _merge(_find_ranges(lines))
    if not ranges:
        return _tail(cleaned.strip("\n"), budget_chars)
    chunks: list[str] = []
    previous_end = -1
    for start, end in ranges:
        if previous_end >= 0 and start > previous_end + 1:
            chunks.append("…")
        chunks.extend(lines[start:end + 1])
        previous_end = end
    return _fit("\n".join(chunks), budget_chars)


# The log echoes each step's script: "##[group]Run <first line>", the script, "shell: …".
_LOG_SHELL = re.compile(r"^shell: (.+)$")


def command_from_log(raw_log: str) -> tuple[str, str | None] | None:
    """The script of the step that reported the first error, as the runner echoed it (with
    expressions already evaluated): a fallback when the workflow cannot be matched."""
    lines = [_strip_line(x) for x in (raw_log or "").split("\n")]
    header: int | None = None
    for i, line in enumerate(lines):
        if _GROUP_START.match(line) and _GROUP_START.match(line).group(1).startswith("Run "):
            header = i
        elif line.startswith("##[error]") and header is not None:
            break
    else:
        return None
    script: list[str] = []
    for line in lines[header + 1:]:
        m = _LOG_SHELL.match(line)
        if m:
            text = "\n".join(script).strip()
            return (text, m.group(1).strip()) if text else None
        if _GROUP_END.match(line):
            return None  # no "shell:" line: an action, not a script
        script.append(line)
    return None


def _is_step_header(line: str) -> bool:
    m = _GROUP_START.match(line)
    return bool(m and m.group(1).startswith(("Run ", "Post ")))


def _segment_end(lines: list[str], start: int) -> int:
    for k in range(start + 1, len(lines)):
        if _is_step_header(lines[k]) or lines[k].startswith(
                ("Post job cleanup.", "Cleaning up orphan processes")):
            return k
    return len(lines)


def failing_segment(raw_log: str, run: str | None = None) -> str:
    """The part of a job log that belongs to the failing step: the step whose echoed header
    is `Run <first line of run>` when it reported an error, else the step with the first
    `##[error]`; the whole log when there are no step headers."""
    lines = [_strip_line(x) for x in (raw_log or "").split("\n")]
    first = next((ln.strip() for ln in (run or "").splitlines() if ln.strip()), None)
    if first:
        for i, line in enumerate(lines):
            m = _GROUP_START.match(line)
            if m and m.group(1).strip() == f"Run {first}":
                end = _segment_end(lines, i)
                if any(x.startswith("##[error]") for x in lines[i:end]):
                    return "\n".join(lines[i:end])
    header = 0
    for i, line in enumerate(lines):
        if _is_step_header(line):
            header = i
        elif line.startswith("##[error]"):
            return "\n".join(lines[header:_segment_end(lines, i)])
    return "\n".join(lines)
