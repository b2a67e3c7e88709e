"""The failing job read as a whole, the way the sandbox will re-run it: its matrix entry, its plain
environment, the `run:` steps before the failing step (the setup phase), the toolchains its setup
actions ask for, its service containers, and what of it cannot be reproduced."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from workers.failure.actions import Toolchain, interpret
from workers.failure.expressions import UNKNOWN, evaluate, truthy
from workers.failure.local_actions import (
    LocalAction,
    ReadFile,
    bind_inputs,
    command_index,
    in_action,
    is_local,
    load_action,
)
from workers.failure.workflow import (
    Job,
    Step,
    Workflow,
    match_job,
    runner_label,
    safe_env,
    substitute,
)


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
    runner: str | None = None  # `runs-on` for its matrix entry (`windows-latest`)


_EXPR_WRAP = re.compile(r"^\s*\$\{\{(.*)\}\}\s*$", re.S)


def evaluate_condition(expr: str, matrix: dict[str, str], env: dict[str, str],
                       inputs: dict[str, str | None] | None = None) -> bool | None:
    """A step's `if:` on a Linux runner for a pull request (`runner.os == 'Windows'`,
    `startsWith(matrix.os, 'macos')`, …); None when it cannot be told here (secrets, steps'
    outputs, …)."""
    text = _EXPR_WRAP.sub(r"\1", expr).strip()
    value = evaluate(text, matrix, env, inputs, no_secrets=True)
    return None if value is UNKNOWN else truthy(value)


MAX_ACTION_DEPTH = 3  # composite actions calling composite actions: as deep as real setups go
MAX_ACTION_READS = 20  # files read for one job: a workflow of a thousand `uses: ./…` costs no more


@dataclass
class _Reading:
    """The job read step by step: what each step stands for in the sandbox."""

    workflow: Workflow
    job: Job
    matrix: dict[str, str]
    env: dict[str, str]
    read_file: ReadFile | None
    setup: list[SetupStep] = field(default_factory=list)
    toolchains: list[Toolchain] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    reads: int = 0

    def step(self, step: Step, action: LocalAction | None = None, inputs: dict[str, str | None] | None = None,
             depth: int = 0) -> None:
        label = step.display_name if action is None else f"{step.display_name} (./{action.path})"
        if step.condition is not None:
            decided = evaluate_condition(step.condition, self.matrix, self.env, inputs)
            if decided is False:
                return
            if decided is None:
                self.notes.append(f"step {label!r} runs only `if: {step.condition}`; run regardless")
        with_ = {k: substitute(v, self.matrix, self.env, [], inputs) for k, v in step.with_.items()}
        if step.run is not None:
            self.setup.append(self._run_step(step, label, action, inputs))
        elif is_local(step.uses):
            self.action_steps(step, with_, inputs, depth)
        else:
            self._action(step, label, with_)

    def _run_step(self, step: Step, label: str, action: LocalAction | None,
                  inputs: dict[str, str | None] | None) -> SetupStep:
        unresolved: list[str] = []
        own, _ = safe_env(step.env, self.matrix, unresolved, inputs)
        run = step.run or ""
        if action is not None:
            run, own = in_action(action, run, own)
        run = substitute(run, self.matrix, {**self.env, **own}, unresolved, inputs)
        wd = step.working_directory or (None if action else self.job.working_directory or self.workflow.working_directory)
        wd = substitute(wd, self.matrix, self.env, unresolved, inputs) if wd else None
        if unresolved:
            self.notes.append(f"step {label!r}: unresolved " + ", ".join(unresolved))
        shell = step.shell or (None if action else self.job.shell or self.workflow.shell)
        return SetupStep(label, run, None if wd in (".", "./", "") else wd, shell, own, step.continue_on_error)

    def _action(self, step: Step, label: str, with_: dict[str, str]) -> None:
        meaning = interpret(step.uses or "", with_)
        if meaning.kind == "toolchain":
            self.toolchains.extend(meaning.toolchains)
            if meaning.setup:  # what it installs besides (setup-pdm: PDM)
                self.setup.append(SetupStep(label, meaning.setup, None, None, {}, step.continue_on_error))
        elif meaning.kind == "command":
            script = "\n".join(filter(None, (meaning.setup, meaning.command)))
            self.setup.append(SetupStep(label, script, None, None, {}, step.continue_on_error))
            self.env.update(meaning.env)  # as the runner keeps an action's settings for the later steps
        elif meaning.kind == "unsupported":
            self.left_out.append(meaning.note or step.uses or label)
        if meaning.note and meaning.kind != "unsupported":
            self.notes.append(meaning.note)

    def action_steps(self, step: Step, with_: dict[str, str], inputs: dict[str, str | None] | None, depth: int,
                     failing: bool = False) -> None:
        """The action's steps; of the failing step's action, those before its command (the setup)."""
        uses = step.uses or ""
        readable = self.read_file is not None and depth < MAX_ACTION_DEPTH and self.reads < MAX_ACTION_READS
        self.reads += readable
        loaded = load_action(uses, self.read_file) if readable else f"{uses} (the repository's own action, not read)"
        if isinstance(loaded, str):
            if not failing:
                self.left_out.append(loaded)
            return
        until = command_index(loaded) if failing else None
        if failing and until is None:
            return
        bound = bind_inputs(loaded, step.with_, with_)
        for inner in loaded.steps[:until]:
            self.step(inner, loaded, bound, depth + 1)


def read_failing_job(workflow: Workflow, job_name: str, failing_step: Step | None,
                     read_file: ReadFile | None = None) -> CiJob | None:
    """The job `job_name` (as the Actions API names it) up to `failing_step`. `read_file` reads the
    repository at the commit, for its own actions (`uses: ./.github/actions/setup`)."""
    job, matrix, _ = match_job(workflow, job_name)
    if job is None:
        return None
    unresolved: list[str] = []
    env, dropped = safe_env({**workflow.env, **job.env}, matrix, unresolved)
    reading = _Reading(workflow, job, matrix, env, read_file)
    stop = failing_step.index if failing_step is not None else len(job.steps)
    for step in job.steps[:stop]:
        reading.step(step)
    with_ = {k: substitute(v, matrix, env, []) for k, v in failing_step.with_.items()} if failing_step else {}
    if failing_step is not None and is_local(failing_step.uses):  # its steps before its command
        reading.action_steps(failing_step, with_, None, 0, failing=True)
    elif failing_step is not None and failing_step.run is None and failing_step.uses:
        meaning = interpret(failing_step.uses, with_)
        if meaning.setup:  # what the action installs before its command
            reading.setup.append(SetupStep(failing_step.display_name, meaning.setup, None, None, {}))
    if job.container:
        reading.left_out.append(f"the job's container {job.container} (the sandbox image is used instead)")
    return CiJob(
        job_key=job.key, matrix=matrix, env=env, setup_steps=tuple(reading.setup),
        toolchains=tuple(_merge(reading.toolchains)), services=dict(job.services), container=job.container,
        dropped_env=tuple(dropped), not_reproduced=tuple(reading.left_out), notes=tuple(reading.notes),
        runner=runner_label(job, matrix),
    )


def _merge(toolchains: list[Toolchain]) -> list[Toolchain]:
    """One request per toolchain: a later setup action of the same kind wins, as on the runner."""
    by_name: dict[str, Toolchain] = {}
    for toolchain in toolchains:
        if toolchain.name in by_name and toolchain.version is None:
            continue
        by_name[toolchain.name] = toolchain
    return list(by_name.values())
