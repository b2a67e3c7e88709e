"""An action of the repository itself (`uses: ./.github/actions/setup`), read from its `action.yml`
at the commit under repair. A composite action's steps are what the job ran in its place, so they
join the setup phase; a JavaScript or Docker action cannot be reproduced and is named instead."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass

import yaml

from core import bounded_yaml
from workers.failure.workflow import (
    Step,
    StepCommand,
    Workflow,
    is_test_command,
    match_job,
    mentions_secret,
    parse_steps,
    safe_env,
    substitute,
)
from workers.sandbox import WORKSPACE_MOUNT

ReadFile = Callable[[str], "str | None"]  # repository path → text at the commit, None when absent
MAX_ACTION_BYTES = 256 * 1024
ACTION_PATH = re.compile(r"\$\{\{\s*github\.action_path\s*\}\}")  # the action's directory on the runner


@dataclass(frozen=True)
class LocalAction:
    path: str  # the action's directory in the repository
    inputs: dict[str, str]  # declared inputs → their defaults ("" when none)
    steps: list[Step]  # a composite action's `runs.steps`


def is_local(uses: str | None) -> bool:
    return bool(uses) and uses.startswith("./")


def load_action(uses: str, read_file: ReadFile) -> LocalAction | str:
    """The composite action at `uses`, or why it is not reproduced."""
    path = posixpath.normpath(uses[2:].strip())
    if path.startswith("..") or path.startswith("/"):
        return f"{uses} (outside the repository)"
    text = next((t for name in ("action.yml", "action.yaml")
                 if (t := read_file(posixpath.join(path, name))) is not None), None)
    if text is None:
        return f"{uses} (no action.yml at the commit)"
    if len(text) > MAX_ACTION_BYTES:
        return f"{uses} (its action.yml is over {MAX_ACTION_BYTES // 1024} KiB)"
    try:
        data = bounded_yaml.load(text)
    except yaml.YAMLError:
        return f"{uses} (its action.yml is not YAML, or too large once its aliases are expanded)"
    runs = data.get("runs") if isinstance(data, dict) else None
    using = str(runs.get("using", "")) if isinstance(runs, dict) else ""
    if using != "composite":
        return f"{uses} (a {using or 'malformed'} action qwenfix does not reproduce)"
    declared = data.get("inputs") if isinstance(data.get("inputs"), dict) else {}
    inputs = {str(name): _default(spec) for name, spec in declared.items()}
    return LocalAction(path, inputs, parse_steps(runs.get("steps")))


def _default(spec: object) -> str:
    value = spec.get("default") if isinstance(spec, dict) else None
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def in_action(action: LocalAction, run: str, env: dict[str, str]) -> tuple[str, dict[str, str]]:
    """A step of the action as the runner starts it: `${{ github.action_path }}` and
    $GITHUB_ACTION_PATH name the action's directory."""
    where = f"{WORKSPACE_MOUNT}/{action.path}"
    return ACTION_PATH.sub(where, run), {"GITHUB_ACTION_PATH": where, **env}


def bind_inputs(action: LocalAction, given: dict[str, str], evaluated: dict[str, str]) -> dict[str, str | None]:
    """The action's inputs: its defaults, then the step's `with:` (`evaluated` for the job's matrix
    and env). A secret is empty, as the sandbox has none; another unknown value is None."""
    bound: dict[str, str | None] = dict(action.inputs)
    for name, value in evaluated.items():
        bound[name] = "" if mentions_secret(given.get(name, "")) else None if "${{" in value else value
    return bound


def command_index(action: LocalAction) -> int | None:
    """Which of the action's steps is the one that fails a job using it: the last that runs tests,
    else its last `run:` step; the steps before it are setup."""
    runs = [i for i, step in enumerate(action.steps) if step.run is not None]
    tests = [i for i in runs if is_test_command(action.steps[i].run or "")]
    return (tests or runs or [None])[-1]


def action_command(workflow: Workflow, job_name: str, step: Step, read_file: ReadFile) -> StepCommand | None:
    """The command of a failing step that is the repository's own composite action."""
    job, matrix, _ = match_job(workflow, job_name)
    loaded = load_action(step.uses or "", read_file)
    if job is None or isinstance(loaded, str) or (at := command_index(loaded)) is None:
        return None
    inner = loaded.steps[at]
    inputs = bind_inputs(loaded, step.with_, {k: substitute(v, matrix, {}, []) for k, v in step.with_.items()})
    unresolved: list[str] = []
    env, dropped = safe_env({**workflow.env, **job.env}, matrix, unresolved)
    own, dropped_own = safe_env(inner.env, matrix, unresolved, inputs)
    run, own = in_action(loaded, inner.run or "", own)
    env = {**env, **own}
    run = substitute(run, matrix, env, unresolved, inputs)
    wd = substitute(inner.working_directory, matrix, env, unresolved, inputs) if inner.working_directory else None
    return StepCommand(run=run, working_directory=None if wd in (None, ".", "./", "") else wd, shell=inner.shell,
                       env=env, step_name=step.display_name, job_key=job.key, unresolved=unresolved,
                       dropped_env=[*dropped, *dropped_own])
