"""Logs, annotations and workflow → a FailureReport: the failing command, its error excerpt, the
files involved and a signature that tells the same failure again. Plain values in, plain values out;
fetching them from GitHub is the caller's job (workers/github/evidence.py)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from workers.failure.ci_job import CiJob, read_failing_job
from workers.failure.local_actions import ReadFile, action_command, is_local
from workers.failure.log import (
    ARROW,
    ERRORISH,
    PYTEST_NODE,
    RUFF_RULE,
    clean_log,
    command_from_log,
    error_section,
    failing_segment,
)
from workers.failure.workflow import StepCommand, WorkflowError, locate_step, parse_workflow

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


_GO_TEST = re.compile(r"^\s*--- FAIL: (\S+)")
_CARGO_TEST = re.compile(r"^test (\S+) \.\.\. FAILED")
_JEST_TEST = re.compile(r"^\s*(?:●|✕|×)\s+(.+?)(?:\s+\(?\d+\s*m?s\)?)?$")
_VITEST_TEST = re.compile(r"^\s*FAIL\s+(\S+ > .+?)(?:\s+\d+\s*ms)?$")
_UNITTEST_TEST = re.compile(r"^(?:FAIL|ERROR): (\w+) \(([\w.]+?)(?:\.\1)?\)")
_LINT_KEY = re.compile(r"^\s*(?:\./)?([\w./\\@+-]+\.\w+):\d+(?::\d+)?:?\s*(?:-\s*)?([A-Z]+\d+|error"
                       r"(?:\[\w+\])?|TS\d+)?")
_REFORMAT_PATH = re.compile(r"(?i)^(?:would reformat:?|error: cannot format) (\S+?)(?::|$)")


def signature_items(excerpt: str) -> list[str]:
    """What failed, as comparable items: `test:<id>` (pytest, unittest, jest, vitest, go test,
    cargo test), `lint:`/`fmt:` per file and rule, else `err:` error lines — all normalized."""
    lines = excerpt.splitlines()
    tests = [m.group(1) for ln in lines for m in [PYTEST_NODE.match(ln) or _GO_TEST.match(ln)
                                                    or _CARGO_TEST.match(ln) or _VITEST_TEST.match(ln)] if m]
    tests += [f"{m.group(2)}.{m.group(1)}" for ln in lines for m in [_UNITTEST_TEST.match(ln)] if m]
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
        if RUFF_RULE.match(ln) and i + 1 < len(lines) and ARROW.match(lines[i + 1]):
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
    errors = [ln for ln in lines if ERRORISH.search(ln) and "Process completed" not in ln]
    if not errors:
        errors = [ln for ln in lines if ln.strip() and ln.strip() != "…"][-20:]
    return ["err:" + _normalize(ln)[:200] for ln in errors]


def failure_items(output: str) -> set[str]:
    """What failed, item by item (the failing tests, lint findings or error lines of `failure_signature`)."""
    return set(signature_items(output))


def failure_signature(excerpt: str) -> str:
    """A short hash of what failed (test names, lint rules per file, error lines), stable
    across reruns: timestamps, durations, addresses, temp paths and line numbers don't count."""
    items = sorted(set(signature_items(excerpt)))
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
    ci_job: CiJob | None = None  # the failing job read as a whole (setup steps, toolchains, services)


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
    read_file: ReadFile | None = None,
) -> FailureReport:
    """Everything the repair needs to know about one failed job.

    `step_number` is the `number` from the Actions jobs API (1 is "Set up job").
    `override_command` (`repair.command` from `.github/qwen.yml`) replaces the step's command
    and runs from the repository root; the step's non-secret env and shell still apply.
    `read_file` reads the repository at the commit (the workflow's own actions).
    """
    notes: list[str] = []
    workflow_name: str | None = None
    command: StepCommand | None = None
    ci_job: CiJob | None = None
    if workflow_yaml:
        try:
            workflow = parse_workflow(workflow_yaml)
            workflow_name = workflow.name
            lookup = locate_step(workflow, job_name, step_name, step_number)
            command = lookup.command
            if command is None and lookup.step is not None and is_local(lookup.step.uses) and read_file:
                command = action_command(workflow, job_name, lookup.step, read_file)  # its test step
            if lookup.reason and command is None:
                notes.append(lookup.reason)
            if command and command.unresolved:
                notes.append("unresolved expressions: " + ", ".join(command.unresolved))
            if command and command.dropped_env:
                notes.append("env from secrets (never reproduced): " + ", ".join(command.dropped_env))
            ci_job = read_failing_job(workflow, job_name, lookup.step, read_file) if lookup.step else None
            if ci_job and ci_job.not_reproduced:
                notes.append("not reproduced: " + "; ".join(ci_job.not_reproduced))
            if ci_job:
                notes.extend(ci_job.notes)
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
    segment = failing_segment(raw_log or "", command.run if command else run)
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
        ci_job=ci_job,
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
