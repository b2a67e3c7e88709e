"""The repair engine shared by `qwenfix repair` and the GitHub jobs:
reproduce → deterministic fixer → k agent candidates in parallel → validate each → choose the
smallest verified patch.

Callers provide the worktrees (`checkout`), the sandboxes (`start_sandbox`) and the model client,
so the engine runs the same on a local checkout and on a pull request. Stages borrow a worktree and
its sandbox from the repair's stations (workers/engine/stations.py), which hand them out again reset. `progress(stage, detail)` is
called with stage in reproducing | fixing | attempt | validating.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from core.logs import redact
from workers.agent.budget import Budget
from workers.agent.llm import ModelClient
from workers.agent.loop import run_agent
from workers.agent.task import AgentTask, file_tree
from workers.agent.tools import Toolbox
from workers.engine.fixers import Fixer, fixer_for
from workers.engine.setup_phase import prepared
from workers.engine.stations import Checkout, StartSandbox, Stations
from workers.engine.task import Candidate, RepairResult, RepairTask, RepoContext, Verdict
from workers.engine.validate import setup_failure, validate
from workers.workspace.patches import export_patch

JUNK = ("__pycache__/", ".pytest_cache/", ".ruff_cache/", ".mypy_cache/", ".pyc ")  # never part of a fix
SAMPLED_TEMPERATURE = 0.7  # candidates after the first explore a little


def repair(task: RepairTask, checkout: Checkout, base_sha: str | None, start_sandbox: StartSandbox,
           client: ModelClient | None, context: RepoContext,
           progress: Callable[..., None] = lambda stage, detail="": None,
           secrets: list[str] | None = None, cancelled: Callable[[], bool] = lambda: False) -> RepairResult:
    """Setup once (see workers/engine/setup_phase.py), then reproduce, fix, validate and choose."""
    if task.setup:
        progress("reproducing", f"setup `{task.setup}`")
    with prepared(task.setup, task.working_directory, task.setup_network, checkout, start_sandbox) as prep:
        if prep.failure is not None:
            return RepairResult("no_fix", prep.failure,
                                reason=f"the setup command `{task.setup}` fails (exit {prep.failure.exit_code})")
        task = replace(task, setup=None, setup_products=prep.products)
        with Stations(prep.checkout, start_sandbox, prep.carry) as stations:
            return _repair(task, stations, base_sha, client, context, progress, secrets, cancelled)


def _repair(task: RepairTask, stations: Stations, base_sha: str | None, client: ModelClient | None,
            context: RepoContext, progress: Callable[..., None], secrets: list[str] | None,
            cancelled: Callable[[], bool]) -> RepairResult:
    secrets = [s for s in secrets or [] if s]
    lock = threading.Lock()

    def report(stage: str, detail: str = "") -> None:  # candidates report from several threads
        with lock:
            progress(stage, detail)

    timings: dict[str, float] = {}
    clock = time.monotonic()
    report("reproducing", f"`{task.command}`")
    reproduction, setup_failed, tree, base_sha = _reproduce(task, stations, base_sha)
    timings["reproduce"] = round(time.monotonic() - clock, 3)
    if setup_failed:
        return RepairResult("no_fix", reproduction, timings=timings,
                            reason=f"the setup command `{task.setup}` fails (exit {reproduction.exit_code})")
    if cancelled():
        return RepairResult("cancelled", reproduction, reason="stopped", timings=timings)
    if reproduction.ok and task.require_failure:
        return RepairResult("already_passing", reproduction, timings=timings)

    candidates: list[Candidate] = []
    fixer = fixer_for(task.command) if task.require_failure else None
    if fixer is not None:
        report("fixing", fixer.name)
        clock = time.monotonic()
        candidate = _guarded(Candidate(0, f"fixer:{fixer.name}"), secrets, _fixer_candidate,
                             task, fixer, stations, base_sha)
        timings["fixer"] = round(time.monotonic() - clock, 3)
        candidates.append(candidate)
        if candidate.verified:
            return RepairResult("fixed", reproduction, candidate, candidates, fixer.name, timings=timings)
    if client is None:
        return RepairResult("no_fix", reproduction, None, candidates, timings=timings,
                            reason="no model endpoint is configured, and no deterministic fixer applies")
    if cancelled():
        return RepairResult("cancelled", reproduction, None, candidates, reason="stopped", timings=timings)

    agent_task = AgentTask(
        goal=("Make the failing command pass by fixing the cause in the code." if task.require_failure
              else "Make the requested change; the command must pass afterwards."),
        command=task.command, working_directory=task.working_directory, failure_text=task.failure_text,
        instructions=task.instructions, context=dict(context.files), tree=tree)
    first = len(candidates)

    def attempt(i: int) -> Candidate:
        candidate = Candidate(first + i, "agent")
        if cancelled():
            candidate.outcome, candidate.verdict = "cancelled", Verdict(False, ["cancelled"])
            return candidate
        temperature = task.temperature if i == 0 else max(task.temperature, SAMPLED_TEMPERATURE)
        report("attempt", f"{i + 1}/{task.candidates}")
        return _guarded(candidate, secrets, _agent_candidate, task, agent_task, stations, base_sha,
                        client, temperature, secrets, cancelled, report)

    clock = time.monotonic()
    with ThreadPoolExecutor(max_workers=max(1, min(task.parallel, task.candidates))) as pool:
        candidates += list(pool.map(attempt, range(task.candidates)))
    timings["agent"] = round(time.monotonic() - clock, 3)
    if cancelled():
        return RepairResult("cancelled", reproduction, None, candidates, reason="stopped", timings=timings)
    verified = sorted((c for c in candidates if c.verified), key=lambda c: (c.diff_lines, c.index))
    if not verified:
        return RepairResult("no_fix", reproduction, None, candidates, timings=timings,
                            reason="no candidate patch passed validation")
    return RepairResult("fixed", reproduction, verified[0], candidates, timings=timings)


def drop_junk(patch: str, products: frozenset[str] = frozenset()) -> str:
    """Remove caches and bytecode the test runs left behind, and the setup's products, from a patch."""
    sections: list[list[str]] = []
    for line in patch.splitlines(keepends=True):
        if line.startswith("diff --git ") or not sections:
            sections.append([])
        sections[-1].append(line)
    kept = [s for s in sections if not any(junk in s[0].rstrip("\n") + " " for junk in JUNK)
            and s[0].rstrip("\n").split(" b/", 1)[-1] not in products]
    return "".join(line for section in kept for line in section)


def _reproduce(task: RepairTask, stations: Stations, base_sha: str | None):
    """(result, setup failed?, file tree, base sha); the result is the setup's when that fails."""
    with stations.station() as station:
        base_sha = base_sha or getattr(station.worktree, "base_sha", None)
        if not base_sha:
            raise ValueError("base_sha is required when checkout() yields a plain path")
        tree = file_tree(station.path)
        sandbox = station.sandbox()
        failed = setup_failure(sandbox, task)
        if failed is not None:
            return failed, True, tree, base_sha
        return sandbox.exec(task.command, cwd=task.working_directory), False, tree, base_sha


def _guarded(candidate: Candidate, secrets: list[str], make, *args) -> Candidate:
    """One candidate's failure (a sandbox that would not start, a broken patch) is its verdict, not
    the end of the run."""
    try:
        return make(candidate, *args)
    except Exception as exc:  # noqa: BLE001
        candidate.outcome = "error"
        candidate.verdict = Verdict(False, [redact(f"the attempt failed: {type(exc).__name__}: {exc}", secrets)])
        return candidate


def _fixer_candidate(candidate: Candidate, task: RepairTask, fixer: Fixer, stations: Stations,
                     base_sha: str) -> Candidate:
    candidate.summary = f"Ran `{'; '.join(fixer.fix_commands)}`."
    candidate.outcome = "fixer"
    with stations.station() as station:
        sandbox = station.sandbox()
        if setup_failure(sandbox, task) is None:
            for command in fixer.fix_commands:
                sandbox.exec(command, cwd=task.working_directory)
        candidate.patch = drop_junk(export_patch(station.worktree, base_sha), task.setup_products)
    candidate.verdict = validate(task, candidate.patch, stations)
    return candidate


def _agent_candidate(candidate: Candidate, task: RepairTask, agent_task: AgentTask, stations: Stations,
                     base_sha: str, client: ModelClient, temperature: float,
                     secrets: list[str], cancelled: Callable[[], bool], report) -> Candidate:
    with stations.station() as station:
        sandbox = station.sandbox()
        if setup_failure(sandbox, task) is not None:
            candidate.outcome, candidate.verdict = "setup_failed", Verdict(False, ["the setup command fails"])
            return candidate
        toolbox = Toolbox(station.path, sandbox)
        budget = Budget(max_steps=task.max_steps, max_seconds=task.max_seconds,
                        max_tokens_per_reply=task.max_tokens)
        result = run_agent(agent_task, toolbox, client, budget, temperature, secrets, cancelled)
        candidate.patch = drop_junk(export_patch(station.worktree, base_sha), task.setup_products)
    candidate.summary = result.summary or "The agent did not summarise its change."
    candidate.outcome = result.outcome
    candidate.trajectory = result.trajectory()
    candidate.prompt_tokens, candidate.completion_tokens = result.prompt_tokens, result.completion_tokens
    if cancelled() or result.outcome == "cancelled":
        candidate.verdict = Verdict(False, ["cancelled"])
        return candidate
    if not candidate.patch.strip():
        candidate.verdict = Verdict(False, [f"the agent changed nothing ({result.outcome})"])
        return candidate
    report("validating", f"attempt {candidate.index + 1}")
    candidate.verdict = validate(task, candidate.patch, stations)
    if candidate.verdict.ok and result.outcome != "finished":
        candidate.verdict = replace(candidate.verdict,
                                    reasons=[f"verified, although the agent stopped with {result.outcome}"])
    return candidate
