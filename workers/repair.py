"""The repair engine shared by `qwenfix repair` and the GitHub jobs:
reproduce → deterministic fixers → k agent candidates → validate each → choose the smallest verified.

Callers provide the worktrees (`checkout`), sandboxes (`start_sandbox`) and the model client, so the
engine runs the same on a local checkout and on a pull request.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

from workers.agent.llm import ModelClient
from workers.agent.loop import Budget, build_task_prompt, run_agent
from workers.agent.tools import Toolbox
from workers.fixers import fixer_for
from workers.sandbox import ExecResult, Sandbox
from workers.validate import Verdict, check_paths
from workers.workspace import Worktree, apply_patch, export_patch

JUNK = ("__pycache__/", ".pytest_cache/", ".ruff_cache/", ".mypy_cache/", ".pyc")  # never part of a fix


@dataclass(frozen=True)
class RepairTask:
    command: str
    regression_command: str | None = None
    setup: str | None = None
    instructions: str | None = None
    failure_text: str | None = None
    working_directory: str = "."
    candidates: int = 2
    parallel: int = 2
    allow_ci_changes: bool = False
    allow_test_deletion: bool = False
    ignore_paths: tuple[str, ...] = ()
    temperature: float = 0.0
    max_steps: int = 30
    max_tokens: int | None = None  # per model reply
    max_seconds: float = 900.0
    require_failure: bool = True  # red build: the command must fail first; `/qwen fix <text>`: it may pass


@dataclass(frozen=True)
class RepoContext:
    files: dict[str, str] = field(default_factory=dict)  # README, AGENTS.md, … read from the base


@dataclass
class Candidate:
    index: int
    source: str  # "agent" or "fixer:<name>"
    patch: str = ""
    summary: str = ""
    outcome: str = ""
    verdict: Verdict | None = None
    trajectory: list[dict] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def verified(self) -> bool:
        return bool(self.verdict and self.verdict.ok)

    @property
    def diff_lines(self) -> int:
        return sum(1 for line in self.patch.splitlines() if line[:1] in "+-" and not line.startswith(("+++", "---")))

    def describe(self) -> dict:
        return {"index": self.index, "source": self.source, "outcome": self.outcome, "verified": self.verified,
                "reasons": self.verdict.reasons if self.verdict else [], "diff_lines": self.diff_lines,
                "summary": self.summary}

    def trajectory_records(self) -> list[dict]:
        return [{"candidate": self.index, **step} for step in self.trajectory]

    def usage_dict(self) -> dict:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens, "model_calls": len(self.trajectory)}


@dataclass
class RepairResult:
    status: str  # fixed | already_passing | no_fix | cancelled
    reproduction: ExecResult | None
    chosen: Candidate | None = None
    candidates: list[Candidate] = field(default_factory=list)
    fixer_used: str | None = None
    reason: str = ""
    timings: dict = field(default_factory=dict)


Checkout = Callable[[], AbstractContextManager[Worktree]]
StartSandbox = Callable[..., Sandbox]


def _run(sandbox: Sandbox, command: str, cwd: str) -> ExecResult:
    return sandbox.exec(command, cwd=cwd)


def _prepare(sandbox: Sandbox, task: RepairTask) -> ExecResult | None:
    """Run the setup command; the failed result when it fails, else None."""
    if not task.setup:
        return None
    result = _run(sandbox, task.setup, task.working_directory)
    return None if result.ok else result


def drop_junk(patch: str) -> str:
    """Remove caches and bytecode the test run left behind from a patch."""
    sections, current = [], []
    for line in patch.splitlines(keepends=True):
        if line.startswith("diff --git ") and current:
            sections.append(current)
            current = []
        current.append(line)
    if current:
        sections.append(current)
    kept = [s for s in sections if not any(junk in s[0] for junk in JUNK)]
    return "".join(line for section in kept for line in section)


def repair(task: RepairTask, checkout: Checkout, base_sha: str, start_sandbox: StartSandbox,
           client: ModelClient | None, context: RepoContext, progress: Callable[..., None] = lambda *a: None,
           secrets: list[str] | None = None, cancelled: Callable[[], bool] = lambda: False) -> RepairResult:
    timings: dict[str, float] = {}
    started = time.monotonic()
    progress("reproducing", f"`{task.command}`")
    with checkout() as worktree:
        sandbox = start_sandbox(worktree.path)
        try:
            failed_setup = _prepare(sandbox, task)
            reproduction = failed_setup or _run(sandbox, task.command, task.working_directory)
        finally:
            sandbox.stop()
    timings["reproduce"] = round(time.monotonic() - started, 3)
    if failed_setup is not None:
        return RepairResult("no_fix", failed_setup, reason=f"the setup command failed (exit {failed_setup.exit_code})", timings=timings)
    if cancelled():
        return RepairResult("cancelled", reproduction, timings=timings)
    if reproduction.ok and task.require_failure:
        return RepairResult("already_passing", reproduction, timings=timings)

    candidates: list[Candidate] = []
    fixer = fixer_for(task.command) if task.require_failure else None
    if fixer is not None:
        progress("fixing", fixer.name)
        t0 = time.monotonic()
        candidate = _fixer_candidate(task, fixer, checkout, base_sha, start_sandbox)
        timings["fixer"] = round(time.monotonic() - t0, 3)
        candidates.append(candidate)
        if candidate.verified:
            return RepairResult("fixed", reproduction, candidate, candidates, fixer.name, timings=timings)
    if client is None:
        return RepairResult("no_fix", reproduction, None, candidates,
                            reason="no model endpoint is configured, and no deterministic fixer applies", timings=timings)

    t0 = time.monotonic()
    prompt = _task_prompt(task, checkout, context)
    first = len(candidates)

    def attempt(i: int) -> Candidate:
        temperature = task.temperature if i == 0 else max(task.temperature, 0.7)
        progress("attempt", f"{i + 1}/{task.candidates}")
        return _agent_candidate(first + i, task, prompt, checkout, base_sha, start_sandbox, client, temperature, secrets or [], cancelled)

    with ThreadPoolExecutor(max_workers=max(1, min(task.parallel, task.candidates))) as pool:
        candidates += list(pool.map(attempt, range(task.candidates)))
    timings["agent"] = round(time.monotonic() - t0, 3)
    if cancelled():
        return RepairResult("cancelled", reproduction, None, candidates, timings=timings)
    verified = sorted((c for c in candidates if c.verified), key=lambda c: (c.diff_lines, c.index))
    if not verified:
        return RepairResult("no_fix", reproduction, None, candidates, reason="no candidate patch passed validation", timings=timings)
    return RepairResult("fixed", reproduction, verified[0], candidates, timings=timings)


def _task_prompt(task: RepairTask, checkout: Checkout, context: RepoContext) -> str:
    with checkout() as worktree:
        tree = _file_tree(worktree.path)
    goal = ("Make the failing command pass by fixing the cause in the code." if task.require_failure
            else "Make the requested change; the command must still pass afterwards.")
    return build_task_prompt(goal, task.command, task.working_directory, task.failure_text, task.instructions, tree, context.files)


def _file_tree(root, limit: int = 300) -> str:
    paths = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if any(part.startswith(".") and part not in (".github",) for part in rel.parts) or "node_modules" in rel.parts:
            continue
        if len(rel.parts) <= 3:
            paths.append(str(rel) + ("/" if path.is_dir() else ""))
        if len(paths) >= limit:
            paths.append("…")
            break
    return "\n".join(paths)


def _fixer_candidate(task, fixer, checkout, base_sha, start_sandbox) -> Candidate:
    candidate = Candidate(index=0, source=f"fixer:{fixer.name}", summary=f"Ran `{'; '.join(fixer.fix_commands)}`.")
    with checkout() as worktree:
        sandbox = start_sandbox(worktree.path)
        try:
            _prepare(sandbox, task)
            for command in fixer.fix_commands:
                _run(sandbox, command, task.working_directory)
        finally:
            sandbox.stop()
        candidate.patch = drop_junk(export_patch(worktree, base_sha))
    candidate.outcome = "fixer"
    candidate.verdict = validate(task, candidate.patch, checkout, start_sandbox)
    return candidate


def _agent_candidate(index, task, prompt, checkout, base_sha, start_sandbox, client, temperature, secrets, cancelled) -> Candidate:
    candidate = Candidate(index=index, source="agent")
    with checkout() as worktree:
        sandbox = start_sandbox(worktree.path)
        try:
            failed_setup = _prepare(sandbox, task)
            if failed_setup is not None:
                candidate.outcome, candidate.verdict = "setup_failed", Verdict(False, ["the setup command failed"])
                return candidate
            toolbox = Toolbox(worktree.path, sandbox)
            budget = Budget(max_steps=task.max_steps, max_seconds=task.max_seconds, max_tokens_per_reply=task.max_tokens)
            result = run_agent(prompt, toolbox, client, budget, temperature, secrets, cancelled)
        finally:
            sandbox.stop()
        candidate.patch = drop_junk(export_patch(worktree, base_sha))
    candidate.summary = result.summary or "The agent did not summarise its change."
    candidate.outcome = result.outcome
    candidate.trajectory = result.trajectory()
    candidate.prompt_tokens, candidate.completion_tokens = result.prompt_tokens, result.completion_tokens
    if cancelled():
        candidate.verdict = Verdict(False, ["cancelled"])
        return candidate
    candidate.verdict = validate(task, candidate.patch, checkout, start_sandbox)
    if result.outcome != "finished" and candidate.verdict.ok:
        candidate.verdict = Verdict(True, [f"verified although the agent stopped with {result.outcome}"])
    return candidate


def validate(task: RepairTask, patch: str, checkout: Checkout, start_sandbox: StartSandbox) -> Verdict:
    """In a fresh worktree and sandbox: the patch applies, the command passes, the regression command passes."""
    verdict = check_paths(patch, task.allow_ci_changes, task.allow_test_deletion, task.ignore_paths)
    if not verdict.ok:
        return verdict
    with checkout() as worktree:
        apply_patch(worktree, patch)
        sandbox = start_sandbox(worktree.path)
        try:
            if _prepare(sandbox, task) is not None:
                return Verdict(False, ["the setup command failed with the patch applied"])
            result = _run(sandbox, task.command, task.working_directory)
            if not result.ok:
                return Verdict(False, [f"`{task.command}` still fails (exit {result.exit_code})"])
            if task.regression_command:
                regression = _run(sandbox, task.regression_command, task.working_directory)
                if not regression.ok:
                    return Verdict(False, [f"regression command `{task.regression_command}` fails (exit {regression.exit_code})"])
        finally:
            sandbox.stop()
    return Verdict(True, [])
