"""CI logs, annotations and workflow files → a FailureReport.

Everything here takes plain values (log text, workflow YAML text, annotation dicts from the
Checks API) and returns small dataclasses; fetching them from GitHub is the caller's job.

The log is text written by the code under test: it is data, never instructions. Nothing in
this module executes or interprets it beyond pattern matching.
"""

from __future__ import annotations

import hashlib
import re
import shlex
from dataclasses import dataclass, field
from typing import Any

import yaml

# ---------------------------------------------------------------------------------------------
# clean_log

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
_WORKFLOW_CMD = re.compile(r"^::(error|warning|notice)(?:\s+[^:]*)?::(.*)$")
_ERRORISH = re.compile(
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
        |Audited\s\d+\spackages?|Downloaded\s\S+|\s*[+-]\s[\w.-]+==[\w.]+\s*$
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
_PROGRESS = re.compile(
    r"^\s*(?:[━─╸╺█▌▍▎▏▉▊▋#=>|\[\] .-]{6,}.*(?:[kKMG]i?B|eta|%).*|\d{1,3}%\s*[|\[].*)$"
)


def _strip_line(line: str) -> str:
    line = _TIMESTAMP.sub("", line)
    if "\r" in line:  # progress output overwritten in place: keep what was finally shown
        parts = [p for p in line.split("\r") if p.strip()]
        line = parts[-1] if parts else ""
    return _ANSI.sub("", line).rstrip()


def _is_noise(line: str) -> bool:
    return bool(_NOISE.match(line) or _PROGRESS.match(line))


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
        if not title.startswith("Run ") and any(_ERRORISH.search(x) for x in group_body):
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


# ---------------------------------------------------------------------------------------------
# error_section

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
_RUFF_RULE = re.compile(r"^(?:[A-Z]+\d+|[a-z][a-z-]+:?)(?: \[\*\])? \S.*$")
_ARROW = re.compile(r"^\s*--> \S+:\d+(?::\d+)?")
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
        if _RUFF_RULE.match(line) and i + 1 < n and _ARROW.match(lines[i + 1]):
            # ruff's "full" format: rule line, --> path, a snippet, a help block
            j = i + 1
            while j < n and not (_RUFF_RULE.match(lines[j]) and j + 1 < n
                                 and _ARROW.match(lines[j + 1])) \
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
                or _PYTEST_NODE.match(line) or _PYTEST_FINAL.match(line)):
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


# ---------------------------------------------------------------------------------------------
# workflows


class WorkflowError(ValueError):
    """The workflow file is not YAML or not shaped like a workflow."""


@dataclass(frozen=True)
class Step:
    index: int  # 0-based position in the job's `steps:`
    name: str | None
    id: str | None
    run: str | None
    uses: str | None
    shell: str | None
    working_directory: str | None
    env: dict[str, str]

    @property
    def display_name(self) -> str:
        """The name the Actions API gives the step."""
        if self.name:
            return self.name
        if self.run is not None:
            first = next((ln.strip() for ln in self.run.splitlines() if ln.strip()), "")
            return f"Run {first}"
        return f"Run {self.uses or ''}".strip()


@dataclass(frozen=True)
class Job:
    key: str
    name: str | None
    env: dict[str, str]
    shell: str | None
    working_directory: str | None
    matrix_keys: list[str]  # declared keys, then keys only `include:` adds
    matrix: dict[str, list[Any]]
    steps: list[Step]
    matrix_declared: int = 0  # how many of matrix_keys are declared (not from `include:`)


@dataclass(frozen=True)
class Workflow:
    name: str | None
    env: dict[str, str]
    shell: str | None
    working_directory: str | None
    jobs: dict[str, Job]


@dataclass(frozen=True)
class StepCommand:
    run: str
    working_directory: str | None  # None: the repository root
    shell: str | None  # None: the runner default (`bash -e {0}` on Linux)
    env: dict[str, str]
    step_name: str
    job_key: str
    unresolved: list[str] = field(default_factory=list)  # expressions left as `${{ … }}`
    dropped_env: list[str] = field(default_factory=list)  # names only, never values


@dataclass(frozen=True)
class StepLookup:
    command: StepCommand | None
    reason: str | None  # why command is None
    job: Job | None = None
    step: Step | None = None


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return str(value)


def _env(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {str(k): _scalar(v) for k, v in value.items()}


def _defaults_run(node: Any) -> tuple[str | None, str | None]:
    if not isinstance(node, dict):
        return None, None
    run = node.get("defaults")
    run = run.get("run") if isinstance(run, dict) else None
    if not isinstance(run, dict):
        return None, None
    shell = run.get("shell")
    wd = run.get("working-directory")
    return (_scalar(shell) if shell is not None else None,
            _scalar(wd) if wd is not None else None)


def _opt_str(value: Any) -> str | None:
    return None if value is None else _scalar(value)


def parse_workflow(yaml_text: str) -> Workflow:
    """Parse a workflow file. Raises WorkflowError when it is not a workflow."""
    try:
        data = yaml.safe_load(yaml_text or "")
    except yaml.YAMLError as exc:
        raise WorkflowError(f"workflow is not valid YAML: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("jobs"), dict):
        raise WorkflowError("workflow has no `jobs:` mapping")
    shell, wd = _defaults_run(data)
    jobs: dict[str, Job] = {}
    for key, node in data["jobs"].items():
        if not isinstance(node, dict):
            continue
        j_shell, j_wd = _defaults_run(node)
        matrix_keys: list[str] = []
        matrix: dict[str, list[Any]] = {}
        declared = 0
        strategy = node.get("strategy")
        raw_matrix = strategy.get("matrix") if isinstance(strategy, dict) else None
        if isinstance(raw_matrix, dict):
            for m_key, m_val in raw_matrix.items():
                if m_key in ("include", "exclude"):
                    continue
                matrix_keys.append(str(m_key))
                matrix[str(m_key)] = list(m_val) if isinstance(m_val, list) else [m_val]
            declared = len(matrix_keys)
            for extra in raw_matrix.get("include") or []:
                if isinstance(extra, dict):
                    for m_key, m_val in extra.items():
                        if str(m_key) not in matrix:
                            matrix_keys.append(str(m_key))
                            matrix[str(m_key)] = []
                        if m_val not in matrix[str(m_key)]:
                            matrix[str(m_key)].append(m_val)
        steps: list[Step] = []
        for index, s in enumerate(node.get("steps") or []):
            if not isinstance(s, dict):
                continue
            steps.append(Step(
                index=index,
                name=_opt_str(s.get("name")),
                id=_opt_str(s.get("id")),
                run=_opt_str(s.get("run")),
                uses=_opt_str(s.get("uses")),
                shell=_opt_str(s.get("shell")),
                working_directory=_opt_str(s.get("working-directory")),
                env=_env(s.get("env")),
            ))
        jobs[str(key)] = Job(
            key=str(key), name=_opt_str(node.get("name")), env=_env(node.get("env")),
            shell=j_shell, working_directory=j_wd, matrix_keys=matrix_keys, matrix=matrix,
            steps=steps, matrix_declared=declared,
        )
    return Workflow(name=_opt_str(data.get("name")), env=_env(data.get("env")), shell=shell,
                    working_directory=wd, jobs=jobs)


_EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}", re.S)
_MATRIX_REF = re.compile(r"^matrix\.([A-Za-z_][\w-]*)$")
_ENV_REF = re.compile(r"^env\.([A-Za-z_]\w*)$")
_SUFFIX = re.compile(r"^(?P<base>.*?) \((?P<values>.*)\)$")


def _name_regex(template: str) -> re.Pattern[str]:
    """A job or step name template as a regex: `${{ matrix.x }}` captures, other expressions
    match anything."""
    pattern, pos, names = "", 0, set()
    for m in _EXPR.finditer(template):
        pattern += re.escape(template[pos:m.start()])
        ref = _MATRIX_REF.match(m.group(1))
        group = ref.group(1).replace("-", "_") if ref else None
        if group and group.isidentifier() and group not in names:
            names.add(group)
            pattern += f"(?P<{group}>.+?)"
        else:
            pattern += ".*?"
        pos = m.end()
    pattern += re.escape(template[pos:])
    return re.compile(f"^{pattern}$", re.S)


def _match_job(workflow: Workflow, job_name: str) -> tuple[Job | None, dict[str, str], bool]:
    """Find the job the Actions API calls `job_name`.

    Returns (job, matrix values by key, whether the values are known).
    """
    name = job_name.strip()
    # Reusable workflows show as "caller / callee"; the last part is this workflow's job.
    candidates = [name] + ([name.split(" / ")[-1]] if " / " in name else [])
    # 1. the job's name or key, or "<name or key> (<matrix values in order>)"
    for cand in candidates:
        suffix = _SUFFIX.match(cand)
        for job in workflow.jobs.values():
            labels = [x for x in (job.name, job.key) if x]
            if cand in labels:
                return job, {}, not job.matrix_keys
            if suffix and suffix.group("base") in labels:
                values = [v.strip() for v in suffix.group("values").split(", ")]
                matrix = _values_by_position(job, values)
                return job, matrix, bool(matrix) or not job.matrix_keys
    # 2. name templates with matrix expressions: "Test py${{ matrix.python }}"
    for cand in candidates:
        for job in workflow.jobs.values():
            if job.name and "${{" in job.name:
                m = _name_regex(job.name).match(cand)
                if m:
                    got = {k: v for k, v in m.groupdict().items() if v is not None}
                    by_key = {k: got[k.replace("-", "_")] for k in job.matrix_keys
                              if k.replace("-", "_") in got}
                    return job, by_key, len(by_key) == len(job.matrix_keys)
    # 3. last resort: one job whose name or key equals the part before " (", ignoring case
    suffix = _SUFFIX.match(candidates[-1])
    base = (suffix.group("base") if suffix else candidates[-1]).lower()
    hits = [j for j in workflow.jobs.values()
            if base in {x.lower() for x in (j.name, j.key) if x}]
    if len(hits) == 1:
        return hits[0], {}, not hits[0].matrix_keys
    return None, {}, False


def _values_by_position(job: Job, values: list[str]) -> dict[str, str]:
    if not job.matrix_keys or not values:
        return {}
    if len(values) == len(job.matrix_keys):
        return dict(zip(job.matrix_keys, values, strict=True))
    if len(values) == job.matrix_declared:
        return dict(zip(job.matrix_keys[: job.matrix_declared], values, strict=True))
    return {}


def _substitute(text: str, matrix: dict[str, str], env: dict[str, str],
                unresolved: list[str]) -> str:
    def repl(m: re.Match[str]) -> str:
        expr = m.group(1)
        ref = _MATRIX_REF.match(expr)
        if ref and ref.group(1) in matrix:
            return matrix[ref.group(1)]
        ref = _ENV_REF.match(expr)
        if ref and ref.group(1) in env:
            return env[ref.group(1)]
        if expr == "github.workspace":
            return "."
        if m.group(0) not in unresolved:
            unresolved.append(m.group(0))
        return m.group(0)

    return _EXPR.sub(repl, text)


_SECRET_VALUE = re.compile(r"\$\{\{[^}]*\b(?:secrets\s*[.\[]|github\s*\.\s*token\b)", re.I)
_SECRET_NAME = re.compile(r"TOKEN|SECRET|KEY|PASSWORD|PASSWD|CREDENTIAL|PRIVATE", re.I)


def _safe_env(merged: dict[str, str], matrix: dict[str, str],
              unresolved: list[str]) -> tuple[dict[str, str], list[str]]:
    env: dict[str, str] = {}
    dropped: list[str] = []
    for name, value in merged.items():
        if (_SECRET_NAME.search(name) or _SECRET_VALUE.search(value)
                or "GITHUB_TOKEN" in value.upper()):
            dropped.append(name)
            continue
        local: list[str] = []
        resolved = _substitute(value, matrix, env, local)
        if local:  # an env var set to an unevaluated `${{ … }}` would only mislead
            dropped.append(name)
            unresolved.extend(x for x in local if x not in unresolved)
            continue
        env[name] = resolved
    return env, dropped


def _match_step(job: Job, step_name: str | None, step_number: int | None) -> Step | None:
    if step_name:
        wanted = step_name.strip()
        for step in job.steps:
            if step.display_name == wanted:
                return step
        for step in job.steps:
            if step.name and "${{" in step.name and _name_regex(step.name).match(wanted):
                return step
        for step in job.steps:  # long run lines are shortened in the UI
            if not step.name and wanted.startswith("Run ") and len(wanted) > 8 \
                    and step.display_name.startswith(wanted.rstrip(".… ")):
                return step
    if step_number is not None:
        # The Actions API numbers "Set up job" as 1, so the workflow's first step is 2.
        index = step_number - 2
        for step in job.steps:
            if step.index == index:
                return step
    return None


def locate_step(workflow: Workflow, job_name: str, step_name: str | None,
                step_number: int | None) -> StepLookup:
    """Find the failing step and its command, or say why there is none."""
    job, matrix, known = _match_job(workflow, job_name)
    if job is None:
        return StepLookup(None, f"no job named {job_name!r} in the workflow")
    step = _match_step(job, step_name, step_number)
    if step is None:
        label = step_name or (f"#{step_number}" if step_number is not None else "(unknown)")
        return StepLookup(None, f"no step {label} in job {job.key!r}", job=job)
    if step.run is None:
        return StepLookup(
            None, f"step {step.display_name!r} uses the action {step.uses!r}; it has no run "
            "command to reproduce", job=job, step=step)
    unresolved: list[str] = []
    if job.matrix_keys and not known:
        unresolved.append("matrix values unknown for job name " + repr(job_name))
    merged = {**workflow.env, **job.env, **step.env}
    env, dropped = _safe_env(merged, matrix, unresolved)
    run = _substitute(step.run, matrix, env, unresolved)
    wd = step.working_directory or job.working_directory or workflow.working_directory
    wd = _substitute(wd, matrix, env, unresolved) if wd else None
    if wd in (".", "./", ""):
        wd = None
    shell = step.shell or job.shell or workflow.shell
    command = StepCommand(run=run, working_directory=wd, shell=shell, env=env,
                          step_name=step.display_name, job_key=job.key,
                          unresolved=unresolved, dropped_env=dropped)
    return StepLookup(command, None, job=job, step=step)


def find_failing_step(workflow: Workflow, job_name: str, step_name: str | None,
                      step_number: int | None) -> StepCommand | None:
    """The failing step's command; None when the step runs an action (see `locate_step`)."""
    return locate_step(workflow, job_name, step_name, step_number).command


_TEST_RUNNER = re.compile(
    r"(?:^|[\s;&|(])(?:"
    r"(?:python3?\s+-m\s+)?(?:pytest|py\.test)\b|python3?\s+-m\s+unittest\b|tox\b|nox\b"
    r"|(?:npm|pnpm|yarn|bun)\s+(?:run\s+)?test\b|npm\s+t\b|go\s+test\b|cargo\s+(?:test|nextest)\b"
    r"|make\s+(?:[\w.-]+\s+)*(?:test|check)\b|(?:npx\s+)?(?:jest|vitest)\b"
    r"|(?:hatch|poetry|pdm|uv)\s+run\s+(?:pytest|test)\b|mvn\s+(?:\S+\s+)*test\b"
    r"|gradle\w*\s+test\b|\./gradlew\s+test\b|rake\s+test\b|bundle\s+exec\s+rspec\b"
    r")"
)


def test_command_guess(workflow: Workflow, job_name: str) -> str | None:
    """The command of the step that runs the tests, preferring the named job.

    Used as the default regression command. Falls back to other jobs of the workflow (a lint
    job's fix still has to keep the test suite green). A step's working directory becomes a
    `cd … &&` prefix.
    """
    job, matrix, _ = _match_job(workflow, job_name)
    ordered = ([job] if job else []) + [j for j in workflow.jobs.values() if j is not job]
    for candidate in ordered:
        values = matrix if candidate is job else {}
        if not values:  # another job, or unknown values: use the first matrix entry
            values = {k: _scalar(v[0]) for k, v in candidate.matrix.items() if v}
        for step in candidate.steps:
            if step.run and _TEST_RUNNER.search(step.run):
                merged = {**workflow.env, **candidate.env, **step.env}
                env, _ = _safe_env(merged, values, [])
                run = _substitute(step.run.strip(), values, env, [])
                wd = (step.working_directory or candidate.working_directory
                      or workflow.working_directory)
                if wd and wd not in (".", "./"):
                    return f"cd {shlex.quote(_substitute(wd, values, env, []))} && {run}"
                return run
    return None


test_command_guess.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


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


def _failing_segment(raw_log: str, run: str | None = None) -> str:
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


# ---------------------------------------------------------------------------------------------
# files, signature, report

_PATH = re.compile(
    r"(?<![\w./:\\-])((?:[A-Za-z]:)?[\w.@+-]*(?:[/\\][\w.@+-]+)*\.(?:py|pyi|pyx|ipynb|js|jsx|ts|tsx|"
    r"mjs|cjs|mts|cts|vue|svelte|go|rs|c|h|cc|cpp|cxx|hpp|hh|java|kt|kts|scala|rb|php|cs|swift|"
    r"m|mm|sh|bash|toml|cfg|ini|yml|yaml|json|lock|md|rst|txt|html|css|scss|sql|proto|tf))"
    r"(?![\w/\\-])"
)
_WORKSPACE = re.compile(
    r"^(?:/home/runner/work/[^/]+/[^/]+/|/Users/runner/work/[^/]+/[^/]+/|/__w/[^/]+/[^/]+/"
    r"|/github/workspace/|[A-Za-z]:/a/[^/]+/[^/]+/)"
)
_NOT_REPO = re.compile(
    r"(?:^|/)(?:site-packages|dist-packages|node_modules|\.venv|venv|\.tox|\.nox|__pycache__"
    r"|hostedtoolcache|\.cargo|\.rustup|go/pkg/mod)(?:/|$)|^<|^\.\.?/\.\.|/\.\./"
)


def _repo_path(candidate: str) -> str | None:
    """A repository-relative path, or None for paths outside the checkout."""
    path = _WORKSPACE.sub("", candidate.strip().replace("\\", "/"))
    if path.startswith("/") or re.match(r"^[A-Za-z]:", path):
        return None  # absolute and outside the checkout
    while path.startswith("./"):
        path = path[2:]
    if not path or path == ".github" or path.startswith("..") or _NOT_REPO.search(path):
        return None
    return path


def _files(excerpt: str, annotations: list[dict[str, Any]],
           working_directory: str | None = None) -> list[str]:
    """Repository paths named by annotations (already repository-relative) and the excerpt
    (relative to the step's working directory unless under the runner's workspace)."""
    prefix = (working_directory or "").strip().strip("/")
    prefix = "" if prefix in ("", ".") or prefix.startswith("..") or "$" in prefix else prefix
    seen: dict[str, None] = {}
    for ann in annotations:
        path = _repo_path(str(ann.get("path") or ""))
        if path and path != ".github":
            seen.setdefault(path, None)
    for m in _PATH.finditer(excerpt):
        word_start = max(excerpt.rfind(" ", 0, m.start(1)), excerpt.rfind("\n", 0, m.start(1)))
        if "://" in excerpt[word_start + 1:m.end(1)]:
            continue  # part of a URL
        raw = m.group(1).replace("\\", "/")
        path = _repo_path(raw)
        if path and prefix and not _WORKSPACE.match(raw) and not path.startswith(prefix + "/"):
            path = f"{prefix}/{path}"
        if path:
            seen.setdefault(path, None)
    return list(seen)


_NORMALIZE = [
    (re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?Z?"), "<ts>"),
    (re.compile(r"0x[0-9a-fA-F]+"), "<addr>"),
    (re.compile(r"(?:/tmp|/var/folders|/private/var)/\S*|pytest-of-\S+"), "<tmp>"),
    (re.compile(r"\b\d+(?:\.\d+)?\s*(?:ms|s|sec|secs|seconds|m|min)\b"), "<dur>"),
    (re.compile(r"\(\d+(?:\.\d+)?\s*m?s\)"), "(<dur>)"),
    (re.compile(r"(?<=:)\d+(?::\d+)?\b"), "<n>"),
    (re.compile(r"\bline \d+"), "line <n>"),
    (re.compile(r"\d+"), "<n>"),
    (re.compile(r"\s+"), " "),
]


def _light_normalize(test_id: str) -> str:
    """Test ids keep their digits (parametrize ids), only addresses and temp paths go."""
    text = _WORKSPACE.sub("", test_id.strip())
    for pattern, repl in _NORMALIZE[1:3]:
        text = pattern.sub(repl, text)
    return text


def _normalize(text: str) -> str:
    path = _WORKSPACE.sub("", text.strip())
    for pattern, repl in _NORMALIZE:
        path = pattern.sub(repl, path)
    return path.strip()


_PYTEST_NODE = re.compile(r"^(?:FAILED|ERROR) (\S+?)(?: - .*)?$")
_GO_TEST = re.compile(r"^\s*--- FAIL: (\S+)")
_CARGO_TEST = re.compile(r"^test (\S+) \.\.\. FAILED")
_JEST_TEST = re.compile(r"^\s*(?:●|✕)\s+(.+?)(?:\s+\(\d+\s*m?s\))?$")
_LINT_KEY = re.compile(r"^\s*(?:\./)?([\w./\\@+-]+\.\w+):\d+(?::\d+)?:?\s*(?:-\s*)?([A-Z]+\d+|error"
                       r"(?:\[\w+\])?|TS\d+)?")
_REFORMAT_PATH = re.compile(r"(?i)^(?:would reformat:?|error: cannot format) (\S+?)(?::|$)")


def _signature_items(excerpt: str) -> list[str]:
    lines = excerpt.splitlines()
    tests = [m.group(1) for ln in lines for m in [_PYTEST_NODE.match(ln) or _GO_TEST.match(ln)
                                                    or _CARGO_TEST.match(ln)] if m]
    if not tests:
        tests = [m.group(1) for ln in lines for m in [_JEST_TEST.match(ln)] if m]
    if tests:
        return ["test:" + _light_normalize(t) for t in tests]
    items: list[str] = []
    for i, ln in enumerate(lines):
        m = _REFORMAT_PATH.match(ln)
        if m:
            items.append("fmt:" + (_repo_path(m.group(1)) or _normalize(m.group(1))))
            continue
        if _RUFF_RULE.match(ln) and i + 1 < len(lines) and _ARROW.match(lines[i + 1]):
            code = ln.split()[0]
            path = lines[i + 1].strip()[4:].rsplit(":", 2)[0]
            items.append(f"lint:{_repo_path(path) or path}:{code}")
            continue
        m = _LINT_KEY.match(ln)
        if m and ":" in ln:
            items.append(f"lint:{_repo_path(m.group(1)) or m.group(1)}:{m.group(2) or ''}:"
                         + _normalize(ln[m.end():])[:120])
    if items:
        return items
    errors = [ln for ln in lines if _ERRORISH.search(ln) and "Process completed" not in ln]
    if not errors:
        errors = [ln for ln in lines if ln.strip() and ln.strip() != "…"][-20:]
    return ["err:" + _normalize(ln)[:200] for ln in errors]


def failure_signature(excerpt: str) -> str:
    """A short hash of what failed (test names, lint rules per file, error lines), stable
    across reruns: timestamps, durations, addresses, temp paths and line numbers don't count."""
    items = sorted(set(_signature_items(excerpt)))
    return hashlib.sha256("\n".join(items).encode()).hexdigest()[:16]


def _annotation(raw: dict[str, Any]) -> dict[str, Any]:
    start = raw.get("start_line")
    end = raw.get("end_line", start)
    message = str(raw.get("message") or "")
    title = raw.get("title")
    if title and str(title) not in message:
        message = f"{title}: {message}"
    return {
        "path": str(raw.get("path") or ""),
        "start_line": int(start) if isinstance(start, int) else None,
        "end_line": int(end) if isinstance(end, int) else None,
        "level": str(raw.get("level") or raw.get("annotation_level") or "failure"),
        "message": message[:1000],
    }


@dataclass
class FailureReport:
    workflow_name: str | None
    job_name: str
    step_name: str | None
    command: str | None
    working_directory: str | None
    shell: str | None
    env: dict[str, str]
    error_excerpt: str
    annotations: list[dict[str, Any]]  # {path, start_line, end_line, level, message}
    files: list[str]
    signature: str
    log_url: str | None = None
    notes: list[str] = field(default_factory=list)  # why a command is missing, guesses made


def build_failure_report(
    job_name: str,
    step_name: str | None,
    step_number: int | None,
    raw_log: str | None,
    workflow_yaml: str | None,
    annotations: list[dict[str, Any]] | None,
    override_command: str | None = None,
    log_url: str | None = None,
    budget_chars: int = 6000,
) -> FailureReport:
    """Everything the repair needs to know about one failed job.

    `step_number` is the `number` from the Actions jobs API (1 is "Set up job").
    `override_command` (`repair.command` from `.github/qwen.yml`) replaces the step's command
    and runs from the repository root; the step's non-secret env and shell still apply.
    """
    notes: list[str] = []
    workflow_name: str | None = None
    command: StepCommand | None = None
    if workflow_yaml:
        try:
            workflow = parse_workflow(workflow_yaml)
            workflow_name = workflow.name
            lookup = locate_step(workflow, job_name, step_name, step_number)
            command = lookup.command
            if lookup.reason:
                notes.append(lookup.reason)
            if command and command.unresolved:
                notes.append("unresolved expressions: " + ", ".join(command.unresolved))
            if command and command.dropped_env:
                notes.append("env not passed to the sandbox: " + ", ".join(command.dropped_env))
        except WorkflowError as exc:
            notes.append(str(exc))
    else:
        notes.append("no workflow file")

    run: str | None = command.run if command else None
    shell = command.shell if command else None
    if run is None and override_command is None and raw_log:
        from_log = command_from_log(raw_log)
        if from_log:
            run, shell = from_log
            notes.append("command taken from the job log")

    working_directory = command.working_directory if command else None
    if override_command is not None:
        run = override_command
        working_directory = None
        notes.append("command set by repair.command in .github/qwen.yml")

    anns = [_annotation(a) for a in (annotations or [])
            if isinstance(a, dict) and (a.get("path") or a.get("message"))]
    segment = _failing_segment(raw_log or "", command.run if command else run)
    excerpt = error_section(clean_log(segment), budget_chars)
    if not excerpt.strip():
        # no log (expired, not yet available): the annotations are all we have
        excerpt = "\n".join(
            f"{a['path']}:{a['start_line']}: {a['message']}" if a["path"] else a["message"]
            for a in anns)
    return FailureReport(
        workflow_name=workflow_name,
        job_name=job_name,
        step_name=(command.step_name if command else None) or step_name,
        command=run,
        working_directory=working_directory,
        shell=shell,
        env=dict(command.env) if command else {},
        error_excerpt=excerpt,
        annotations=anns,
        files=_files(excerpt, anns, working_directory),
        signature=failure_signature(excerpt or "\n".join(a["message"] for a in anns)),
        log_url=log_url,
        notes=notes,
    )


def as_prompt(report: FailureReport) -> str:
    """A compact text form for the model; the caller fences it as untrusted data."""
    out = [f"Workflow: {report.workflow_name or '(unknown)'}",
           f"Job: {report.job_name}",
           f"Step: {report.step_name or '(unknown)'}"]
    if report.command:
        out.append("Command:")
        out.extend("    " + ln for ln in report.command.strip().splitlines())
    else:
        out.append("Command: (unknown)")
    out.append(f"Working directory: {report.working_directory or '(repository root)'}")
    if report.env:
        shown = ", ".join(f"{k}={v[:80]}" for k, v in list(report.env.items())[:20])
        out.append(f"Environment: {shown}")
    if report.files:
        out.append("Files mentioned: " + ", ".join(report.files[:30]))
    real = [a for a in report.annotations if a["path"] and a["path"] != ".github"]
    if real:
        out.append("Annotations:")
        for a in real[:20]:
            lines = a["start_line"]
            if a["end_line"] and a["end_line"] != a["start_line"]:
                lines = f"{a['start_line']}-{a['end_line']}"
            where = f"{a['path']}:{lines}" if lines else a["path"]
            out.append(f"- {where} [{a['level']}] {a['message'][:300]}")
    if report.notes:
        out.append("Notes: " + "; ".join(report.notes))
    out.append("Error output:")
    out.append(report.error_excerpt or "(no log available)")
    return "\n".join(out)
