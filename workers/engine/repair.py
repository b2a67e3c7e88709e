"""The repair engine shared by `qwenfix repair` and the GitHub jobs:
reproduce → deterministic fixer → k agent candidates in parallel → validate each → choose the
smallest verified patch.

Callers provide the worktrees (`checkout`), the sandboxes (`start_sandbox`) and the model client,
so the engine runs the same on a local checkout and on a pull request. Stages borrow a worktree and
its sandbox from the repair's stations (workers/engine/stations.py), which hand them out again reset. `progress(stage, detail)` is
called with stage in reproducing | fixing | attempt | validating.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from core.logs import redact
from workers.agent.budget import Budget
from workers.agent.evidence import gather, render
from workers.agent.llm import ModelClient
from workers.agent.loop import run_agent
from workers.agent.repo_map import RepoIndex, render_map
from workers.agent.task import AgentTask, file_tree
from workers.agent.tools import Toolbox
from workers.engine.base_check import fails_on_base
from workers.engine.environment import JobSandboxes
from workers.engine.fixers import Fixer, fixer_for
from workers.engine.security_gate import scan
from workers.engine.setup_cache import SetupCache
from workers.engine.setup_phase import prepared
from workers.engine.stations import Checkout, StartSandbox, Stations, workdir
from workers.engine.suite_results import SuiteRun
from workers.engine.task import Candidate, RepairResult, RepairTask, RepoContext, Verdict
from workers.engine.validate import Baseline, measured_run, setup_failure, validate
from workers.failure.reproduction import compare, environment_problem
from workers.sandbox import ExecResult
from workers.sandbox.output import disk_exceeded
from workers.workspace.patches import export_patch, patch_files
from workers.workspace.snapshot import Snapshot, patched_tree

log = logging.getLogger(__name__)
JUNK = ("__pycache__/", ".pytest_cache/", ".ruff_cache/", ".mypy_cache/", ".pyc ")  # never part of a fix
SAMPLED_TEMPERATURE = 0.7  # candidates after the first explore a little


def repair(task: RepairTask, checkout: Checkout, base_sha: str | None, start_sandbox: StartSandbox,
           client: ModelClient | None, context: RepoContext,
           progress: Callable[..., None] = lambda stage, detail="": None,
           secrets: list[str] | None = None, cancelled: Callable[[], bool] = lambda: False,
           base_checkout: Checkout | None = None, setup_cache: SetupCache | None = None,
           image: str = "") -> RepairResult:
    """Setup once (see workers/engine/setup_phase.py) in the job's environment (workers/engine/
    environment.py; restored from `setup_cache` when the lock files are unchanged), then reproduce,
    fix, validate and choose. `image` names the sandbox image (part of the setup cache's key).
    With `base_checkout` (a pull request's merge base), a failure is first run there too: one that
    happens on the base as well ends the repair as `fails_on_base` (workers/engine/base_check.py)."""
    original = task  # with its setup, which the base needs too
    if task.setup:
        progress("reproducing", "setup" if "\n" in task.setup else f"setup `{task.setup}`")

    def environment() -> JobSandboxes:
        return JobSandboxes(original.environment, start_sandbox, setup_cache, image, original.setup_network)

    sandboxes = environment()
    run = sandboxes.setup_runner(task.setup, task.working_directory) if task.setup else None
    # The base gets an environment of its own: its lock files may differ, and what its setup
    # installs must never become what the pull request's fix is validated with.
    on_base = (lambda: _run_on_base(original, base_checkout, environment())) if base_checkout else None
    clock = time.monotonic()
    with sandboxes, prepared(task.setup, task.working_directory, task.setup_network, checkout, start_sandbox,
                             run=run) as prep:
        setup_s = round(time.monotonic() - clock, 3)
        if prep.failure is not None:
            why = (disk_exceeded(prep.failure.disk_exceeded_mb) if prep.failure.disk_exceeded_mb
                   else _status(prep.failure))
            return RepairResult("setup_failed", prep.failure, setup_output=prep.failure.output,
                                timings={"setup": setup_s}, reason=f"the setup ({task.setup_source}) fails ({why})")
        task = replace(task, setup=None, setup_products=prep.products)
        with Stations(prep.checkout, sandboxes.start, prep.carried) as stations:
            result = _repair(task, stations, base_sha, client, context, progress, secrets, cancelled, on_base)
        result.setup_cached = sandboxes.cached
    result.timings = {"setup": setup_s, **result.timings}
    return result


def first_prompts(task: RepairTask, checkout: Checkout, base_sha: str | None, start_sandbox: StartSandbox,
                  context: RepoContext, variants: dict[str, tuple[int, int]]) -> tuple[ExecResult, dict[str, str]]:
    """The agent's first prompt as a repair would build it, without calling a model: setup and
    reproduction run as in `repair`; one prompt per variant (evidence tokens, map tokens)."""
    with prepared(task.setup, task.working_directory, task.setup_network, checkout, start_sandbox) as prep:
        if prep.failure is not None:
            return prep.failure, {}
        task = replace(task, setup=None, setup_products=prep.products)
        with Stations(prep.checkout, start_sandbox, prep.carried) as stations:
            seen = _reproduce(task, stations, base_sha)
    prompts = {}
    for name, (evidence_tokens, map_tokens) in variants.items():
        variant = replace(task, evidence_tokens=evidence_tokens, map_tokens=map_tokens)
        seen.evidence, seen.repo_map = _render_evidence(variant, seen)
        prompts[name] = first_task(variant, context, seen).prompt()
    return seen.result, prompts


def _repair(task: RepairTask, stations: Stations, base_sha: str | None, client: ModelClient | None,
            context: RepoContext, progress: Callable[..., None], secrets: list[str] | None,
            cancelled: Callable[[], bool], on_base: Callable[[], ExecResult | None] | None = None) -> RepairResult:
    secrets = [s for s in secrets or [] if s]
    lock = threading.Lock()

    def report(stage: str, detail: str = "") -> None:  # candidates report from several threads
        with lock:
            progress(stage, detail)

    timings: dict[str, float] = {}
    # The base run needs nothing from the reproduction: both run at once, and the base's answer is
    # waited for only once the failure is known to be worth asking about.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="on-base") as alongside:
        base = alongside.submit(_timed, on_base) if on_base is not None and task.require_failure else None
        return _reproduced(task, stations, base_sha, client, context, report, secrets, cancelled, base, timings)


def _timed(run: Callable[[], ExecResult | None]) -> tuple[ExecResult | None, float]:
    clock = time.monotonic()
    return run(), round(time.monotonic() - clock, 3)


def _reproduced(task: RepairTask, stations: Stations, base_sha: str | None, client: ModelClient | None,
                context: RepoContext, report: Callable[..., None], secrets: list[str], cancelled: Callable[[], bool],
                base: Future[tuple[ExecResult | None, float]] | None, timings: dict[str, float]) -> RepairResult:
    clock = time.monotonic()
    report("reproducing", f"`{task.command}`" + (" (and on the base)" if base is not None else ""))
    seen = _reproduce(task, stations, base_sha)
    reproduction, setup_failed, base_sha = seen.result, seen.setup_failed, seen.base_sha
    timings["reproduce"] = round(time.monotonic() - clock, 3)
    if setup_failed:
        return RepairResult("no_fix", reproduction, timings=timings,
                            reason=f"the setup command `{task.setup}` fails (exit {reproduction.exit_code})")
    if cancelled():
        return RepairResult("cancelled", reproduction, reason="stopped", timings=timings)
    if reproduction.disk_exceeded_mb:  # the environment's limit, not a failure a patch could fix
        return RepairResult("no_fix", reproduction, timings=timings,
                            reason=f"`{task.command}` was stopped: {disk_exceeded(reproduction.disk_exceeded_mb)}")
    if reproduction.ok and task.require_failure:
        return RepairResult("already_passing", reproduction, timings=timings)
    comparison = compare(task.expected_failure, reproduction.output)
    if task.require_failure:
        problem = environment_problem(reproduction.output, reproduction.exit_code, task.expected_failure,
                                      task.services, reproduced=comparison.level in ("exact", "partial"))
        if problem is not None:  # the sandbox lacks what CI had: no model call can fix that
            return RepairResult("not_reproduced", reproduction, timings=timings, reproduced="no",
                                environment_problem=problem, reason=f"not reproduced: environment — {problem}")
    if base is not None:
        base_run, timings["base"] = base.result()
        if fails_on_base(reproduction, base_run):
            return RepairResult("fails_on_base", reproduction, timings=timings, base_reproduction=base_run,
                                reason="the command fails the same way on the base", reproduced=comparison.level)
        if cancelled():
            return RepairResult("cancelled", reproduction, reason="stopped", timings=timings)
    result = _fix(task, stations, base_sha, client, context, report, secrets, cancelled, seen, timings)
    result.reproduced = comparison.level
    return result


def _fix(task: RepairTask, stations: Stations, base_sha: str, client: ModelClient | None, context: RepoContext,
         report: Callable[..., None], secrets: list[str], cancelled: Callable[[], bool], seen: Reproduction,
         timings: dict[str, float]) -> RepairResult:
    """The failure is reproduced: deterministic fixer, then the agent's candidates, each validated."""
    reproduction = seen.result
    candidates: list[Candidate] = []
    # what the tests check before any patch: the reproduction measured the failing command
    baseline = Baseline(task, stations, {task.command: seen.suite} if not task.allow_test_changes else {})
    fixer = fixer_for(task.command) if task.require_failure else None
    if fixer is not None:
        report("fixing", fixer.name)
        clock = time.monotonic()
        candidate = _guarded(Candidate(0, f"fixer:{fixer.name}"), secrets, _fixer_candidate,
                             task, fixer, stations, base_sha, baseline)
        timings["fixer"] = round(time.monotonic() - clock, 3)
        candidates.append(candidate)
        if candidate.verified:
            return RepairResult("fixed", reproduction, candidate, candidates, fixer.name, timings=timings)
    if client is None:
        return RepairResult("no_fix", reproduction, None, candidates, timings=timings,
                            reason="no model endpoint is configured, and no deterministic fixer applies")
    if cancelled():
        return RepairResult("cancelled", reproduction, None, candidates, reason="stopped", timings=timings)

    agent_task = first_task(task, context, seen)
    first = len(candidates)

    def attempt(i: int) -> Candidate:
        candidate = Candidate(first + i, "agent")
        if cancelled():
            candidate.outcome, candidate.verdict = "cancelled", Verdict(False, ["cancelled"])
            return candidate
        temperature = task.temperature if i == 0 else max(task.temperature, SAMPLED_TEMPERATURE)
        report("attempt", f"{i + 1}/{task.candidates}")
        return _guarded(candidate, secrets, _agent_candidate, task, agent_task, stations, baseline, base_sha,
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


def _run_on_base(task: RepairTask, base_checkout: Checkout, sandboxes: JobSandboxes) -> ExecResult | None:
    """The failing command at the base, after the same setup in the base's own environment; None
    when that cannot be told."""
    run = sandboxes.setup_runner(task.setup, task.working_directory) if task.setup else None
    try:
        with sandboxes, prepared(task.setup, task.working_directory, task.setup_network, base_checkout,
                                 sandboxes.start, run=run) as prep:
            if prep.failure is not None:
                return None
            with prep.checkout() as worktree:
                sandbox = sandboxes.start(workdir(worktree))
                try:
                    return sandbox.exec(task.runnable(task.command), cwd=task.working_directory)
                finally:
                    sandbox.stop()
    except Exception as exc:  # noqa: BLE001 — no answer about the base is no reason to stop the repair
        log.warning("could not run the command on the base: %s", exc)
        return None


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


@dataclass
class Reproduction:
    result: ExecResult  # the command's, or the setup's when that fails
    setup_failed: bool
    base_sha: str
    tree: str = ""
    index: RepoIndex | None = None  # the commit's source files, when the failure calls for evidence
    evidence: list[tuple[str, str]] = field(default_factory=list)
    repo_map: str = ""
    suite: SuiteRun | None = None  # what the command's tests did, when measured


def first_task(task: RepairTask, context: RepoContext, seen: Reproduction) -> AgentTask:
    """What the agent is first told: the failure (the CI log, or else the output of the reproduction
    it has just run), the code involved, the repository map and the repository's guidance."""
    failure_text, source = task.failure_text, "CI failure"
    if failure_text is None and not seen.result.ok:
        failure_text, source = _reproduction_text(task.command, seen.result), "reproduction"
    return AgentTask(
        goal=("Make the failing command pass by fixing the cause in the code." if task.require_failure
              else "Make the requested change; the command must pass afterwards."),
        command=task.command, working_directory=task.working_directory, failure_text=failure_text,
        instructions=task.instructions, context=dict(context.files), tree=seen.tree, failure_source=source,
        evidence=seen.evidence, repo_map=seen.repo_map)


def _reproduction_text(command: str, result: ExecResult) -> str:
    status = ("timed out" if result.timed_out else "killed: out of memory" if result.oom_killed
              else f"exit code {result.exit_code}")
    return f"`{command}` in the sandbox at this commit: {status}\n\n{result.output}"


def _reproduce(task: RepairTask, stations: Stations, base_sha: str | None) -> Reproduction:
    with stations.station() as station:
        base_sha = base_sha or getattr(station.worktree, "base_sha", None)
        if not base_sha:
            raise ValueError("base_sha is required when checkout() yields a plain path")
        tree = file_tree(station.path)
        sandbox = station.sandbox()
        failed = setup_failure(sandbox, task)
        if failed is not None:
            return Reproduction(failed, True, base_sha, tree)
        if task.allow_test_changes:
            result, suite = sandbox.exec(task.runnable(task.command), cwd=task.working_directory), None
        else:  # what the tests checked before any patch: the baseline of the candidates' validation
            result, suite = measured_run(sandbox, station.path, task.runnable(task.command), task.working_directory)
        seen = Reproduction(result, False, base_sha, tree, suite=suite)
        if not result.ok or not task.require_failure:
            try:  # from the commit's objects, never from the worktree the sandbox has just used
                seen.index = RepoIndex.build(Snapshot.at(station.worktree, base_sha))
            except Exception as exc:  # noqa: BLE001 — evidence helps the model; it never fails a repair
                log.warning("could not read the repository for evidence: %s", exc)
        seen.evidence, seen.repo_map = _render_evidence(task, seen)
        return seen


def _render_evidence(task: RepairTask, seen: Reproduction) -> tuple[list[tuple[str, str]], str]:
    """The code the failure involves and the repository map, within the task's budgets."""
    if seen.index is None or (not task.evidence_tokens and not task.map_tokens):
        return [], ""
    text = "\n".join(t for t in (task.failure_text, seen.result.output if not seen.result.ok else "") if t)
    try:
        snippets = gather(seen.index, text, task.evidence_tokens) if task.evidence_tokens else []
        ranked = seen.index.rank([s.path for s in snippets], text) if task.map_tokens else []
        return render(seen.index, snippets), render_map(seen.index, ranked, task.map_tokens) if ranked else ""
    except Exception as exc:  # noqa: BLE001
        log.warning("could not gather the code the failure involves: %s", exc)
        return [], ""


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
                     base_sha: str, baseline: Baseline) -> Candidate:
    candidate.summary = f"Ran `{'; '.join(fixer.fix_commands)}`."
    candidate.outcome = "fixer"
    with stations.station() as station:
        sandbox = station.sandbox()
        if setup_failure(sandbox, task) is None:
            for command in fixer.fix_commands:
                sandbox.exec(command, cwd=task.working_directory)
        candidate.patch = drop_junk(export_patch(station.worktree, base_sha), task.setup_products)
    clock = time.monotonic()
    candidate.verdict = validate(task, candidate.patch, stations, baseline)
    candidate.validation_s = round(time.monotonic() - clock, 3)
    return _security_gate(task, candidate, stations, base_sha)


def _agent_candidate(candidate: Candidate, task: RepairTask, agent_task: AgentTask, stations: Stations,
                     baseline: Baseline, base_sha: str, client: ModelClient, temperature: float,
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
    candidate.cached_tokens = result.cached_tokens
    if cancelled() or result.outcome == "cancelled":
        candidate.verdict = Verdict(False, ["cancelled"])
        return candidate
    if not candidate.patch.strip():
        candidate.verdict = Verdict(False, [f"the agent changed nothing ({result.outcome})"])
        return candidate
    report("validating", f"attempt {candidate.index + 1}")
    clock = time.monotonic()
    candidate.verdict = validate(task, candidate.patch, stations, baseline)
    candidate.validation_s = round(time.monotonic() - clock, 3)
    if candidate.verdict.ok and result.outcome != "finished":
        candidate.verdict = replace(candidate.verdict,
                                    reasons=[f"verified, although the agent stopped with {result.outcome}"])
    return _security_gate(task, candidate, stations, base_sha)


def _security_gate(task: RepairTask, candidate: Candidate, stations: Stations, base_sha: str) -> Candidate:
    """A verified candidate that adds a high-severity finding is rejected, the finding named; lower
    ones ride along to the delivered post (workers/engine/security_gate.py)."""
    if not candidate.verified:
        return candidate
    changes = [c for c in patch_files(candidate.patch) if not c.is_deleted and not c.is_binary]
    with stations.station() as station:  # its git objects only: the worktree is not read
        before = Snapshot.at(station.worktree, base_sha)
        after = Snapshot.at(station.worktree, patched_tree(station.worktree, base_sha, candidate.patch))
        base = before.read_many([c.old_path for c in changes if c.old_path])
        patched = after.read_many([c.path for c in changes])
    base = {new.path: base[new.old_path] for new in changes if new.old_path in base}
    gate = scan(base, patched, Path(task.semgrep_rules) if task.semgrep_rules else None)
    if gate.blocking:
        candidate.verdict = Verdict(False, [f"adds a high-severity security finding: {f.describe()}"
                                            for f in gate.blocking])
    candidate.security_notes = [f.describe() for f in gate.notes]
    return candidate


def _status(result) -> str:
    if result.timed_out:
        return "timed out"
    return "out of memory" if result.oom_killed else f"exit {result.exit_code}"
