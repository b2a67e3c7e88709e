"""The failing job read as a whole, the way the sandbox will re-run it: its matrix entry, its plain
environment, the `run:` steps before the failing step (the setup phase), the toolchains its setup
actions ask for, its service containers, and what of it cannot be reproduced."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from workers.failure.actions import Toolchain, interpret
from workers.failure.expressions import UNKNOWN, evaluate, truthy
from workers.failure.workflow import Job, Step, Workflow, match_job, safe_env, substitute


@dataclass(frozen=True)
class SetupStep:
    name: str
    run: str
    working_directory: str | None  # None: the repository root
    shell: str | None
    env: dict[str, str]  # the step's own plain env (the job's is in CiJob.env)
    continue_on_error: bool = False


@dataclass(frozen=True)
class CiJob:
    job_key: str
    matrix: dict[str, str]
    env: dict[str, str]  # workflow + job level, plain values only
    setup_steps: tuple[SetupStep, ...]
    toolchains: tuple[Toolchain, ...]
    services: dict[str, str]  # name -> image, from `services:`
    container: str | None
    dropped_env: tuple[str, ...] = ()  # names whose values come from secrets (never reproduced)
    not_reproduced: tuple[str, ...] = ()  # actions and steps left out, said in the report
    notes: tuple[str, ...] = field(default_factory=tuple)


_EXPR_WRAP = re.compile(r"^\s*\$\{\{(.*)\}\}\s*$", re.S)


def evaluate_condition(expr: str, matrix: dict[str, str], env: dict[str, str]) -> bool | None:
    """A step's `if:` on a Linux runner for a pull request (`runner.os == 'Windows'`,
    `startsWith(matrix.os, 'macos')`, …); None when it cannot be told here (secrets, steps'
    outputs, …)."""
    text = _EXPR_WRAP.sub(r"\1", expr).strip()
    value = evaluate(text, matrix, env)
    return None if value is UNKNOWN else truthy(value)


def read_failing_job(workflow: Workflow, job_name: str, failing_step: Step | None) -> CiJob | None:
    """The job `job_name` (as the Actions API names it) up to `failing_step`."""
    job, matrix, _ = match_job(workflow, job_name)
    if job is None:
        return None
    unresolved: list[str] = []
    env, dropped = safe_env({**workflow.env, **job.env}, matrix, unresolved)
    stop = failing_step.index if failing_step is not None else len(job.steps)
    setup: list[SetupStep] = []
    toolchains: list[Toolchain] = []
    left_out: list[str] = []
    notes: list[str] = []
    for step in job.steps[:stop]:
        if step.condition is not None:
            decided = evaluate_condition(step.condition, matrix, env)
            if decided is False:
                continue
            if decided is None:
                notes.append(f"step {step.display_name!r} runs only `if: {step.condition}`; run regardless")
        if step.run is not None:
            setup.append(_setup_step(workflow, job, step, matrix, env, notes))
            continue
        meaning = interpret(step.uses or "", {k: substitute(v, matrix, env, []) for k, v in step.with_.items()})
        if meaning.kind == "toolchain":
            toolchains.extend(meaning.toolchains)
            if meaning.setup:  # what it installs besides (setup-pdm: PDM)
                setup.append(SetupStep(step.display_name, meaning.setup, None, None, {}, step.continue_on_error))
        elif meaning.kind == "command":
            script = "\n".join(filter(None, (meaning.setup, meaning.command)))
            setup.append(SetupStep(step.display_name, script, None, None, {}, step.continue_on_error))
            env.update(meaning.env)  # as the runner keeps an action's settings for the later steps
        elif meaning.kind == "unsupported":
            left_out.append(meaning.note or step.uses or step.display_name)
        if meaning.note and meaning.kind != "unsupported":
            notes.append(meaning.note)
    if failing_step is not None and failing_step.run is None and failing_step.uses:
        meaning = interpret(failing_step.uses, {k: substitute(v, matrix, env, []) for k, v in failing_step.with_.items()})
        if meaning.setup:  # what the action installs before its command
            setup.append(SetupStep(failing_step.display_name, meaning.setup, None, None, {}))
    if job.container:
        left_out.append(f"the job's container {job.container} (the sandbox image is used instead)")
    return CiJob(
        job_key=job.key, matrix=matrix, env=env, setup_steps=tuple(setup), toolchains=tuple(_merge(toolchains)),
        services=dict(job.services), container=job.container, dropped_env=tuple(dropped),
        not_reproduced=tuple(left_out), notes=tuple(notes),
    )


def _setup_step(workflow: Workflow, job: Job, step: Step, matrix: dict[str, str], job_env: dict[str, str],
                notes: list[str]) -> SetupStep:
    unresolved: list[str] = []
    own, _ = safe_env(step.env, matrix, unresolved)
    run = substitute(step.run or "", matrix, {**job_env, **own}, unresolved)
    wd = step.working_directory or job.working_directory or workflow.working_directory
    wd = substitute(wd, matrix, job_env, unresolved) if wd else None
    if unresolved:
        notes.append(f"step {step.display_name!r}: unresolved " + ", ".join(unresolved))
    return SetupStep(step.display_name, run, None if wd in (".", "./", "") else wd,
                     step.shell or job.shell or workflow.shell, own, step.continue_on_error)


def _merge(toolchains: list[Toolchain]) -> list[Toolchain]:
    """One request per toolchain: a later setup action of the same kind wins, as on the runner."""
    by_name: dict[str, Toolchain] = {}
    for toolchain in toolchains:
        if toolchain.name in by_name and toolchain.version is None:
            continue
        by_name[toolchain.name] = toolchain
    return list(by_name.values())
