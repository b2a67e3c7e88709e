"""An action of the repository itself (`uses: ./.github/actions/setup`), read from its `action.yml`
at the commit under repair. A composite action's steps are what the job ran in its place, so they
join the setup phase; a JavaScript or Docker action cannot be reproduced and is named instead."""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from dataclasses import dataclass

import yaml

from core import bounded_yaml
from workers.failure.workflow import Step, parse_steps

ReadFile = Callable[[str], "str | None"]  # repository path → text at the commit, None when absent
MAX_ACTION_BYTES = 256 * 1024


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
