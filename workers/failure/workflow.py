"""A GitHub Actions workflow file: its jobs and steps, the job a failed run's name refers to (matrix
and expressions expanded), the failing step's command, and the job's test command."""

from __future__ import annotations

import itertools
import json
import re
import shlex
from dataclasses import dataclass, field
from typing import Any

import yaml

from core import bounded_yaml
from workers.failure.actions import interpret
from workers.failure.expressions import as_text, evaluate


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
    with_: dict[str, str] = field(default_factory=dict)  # an action's inputs (`with:`)
    condition: str | None = None  # `if:`
    continue_on_error: bool = False

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
    matrix_include: list[dict[str, Any]] = field(default_factory=list)
    matrix_exclude: list[dict[str, Any]] = field(default_factory=list)
    services: dict[str, str] = field(default_factory=dict)  # service name -> image
    container: str | None = None  # the job's own `container:` image
    runs_on: str | None = None  # `runs-on`, as written (`${{ matrix.os }}`)


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
    if isinstance(value, (dict, list)):  # `matrix.config.python` reads it back (see expressions)
        return json.dumps(value)
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


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _services(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {str(name): _container(spec) or "" for name, spec in value.items()}


def _runs_on(value: Any) -> str | None:
    """`runs-on` as one text: a label, labels (`[self-hosted, linux]`) or a group's labels."""
    if isinstance(value, dict):
        value = value.get("labels") or value.get("group")
    if isinstance(value, list):
        return ", ".join(_scalar(v) for v in value if not isinstance(v, (dict, list))) or None
    return _opt_str(value)


def _container(value: Any) -> str | None:
    if isinstance(value, dict):
        return _opt_str(value.get("image"))
    return _opt_str(value)


def parse_workflow(yaml_text: str) -> Workflow:
    """Parse a workflow file. Raises WorkflowError when it is not a workflow."""
    try:
        data = bounded_yaml.load(yaml_text or "")
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
        include: list[dict[str, Any]] = []
        exclude: list[dict[str, Any]] = []
        strategy = node.get("strategy")
        raw_matrix = strategy.get("matrix") if isinstance(strategy, dict) else None
        if isinstance(raw_matrix, dict):
            for m_key, m_val in raw_matrix.items():
                if m_key in ("include", "exclude"):
                    continue
                matrix_keys.append(str(m_key))
                matrix[str(m_key)] = list(m_val) if isinstance(m_val, list) else [m_val]
            declared = len(matrix_keys)
            include = [x for x in _as_list(raw_matrix.get("include")) if isinstance(x, dict)]
            exclude = [x for x in _as_list(raw_matrix.get("exclude")) if isinstance(x, dict)]
            for extra in include:
                for m_key, m_val in extra.items():
                    if str(m_key) not in matrix:
                        matrix_keys.append(str(m_key))
                        matrix[str(m_key)] = []
                    # a declared key's values stay as declared: `include: [{python: '3.13', os:
                    # windows}]` adds that one entry, not 3.13 on every other os
                    if str(m_key) not in matrix_keys[:declared] and m_val not in matrix[str(m_key)]:
                        matrix[str(m_key)].append(m_val)
        steps = parse_steps(node.get("steps"))
        jobs[str(key)] = Job(
            key=str(key), name=_opt_str(node.get("name")), env=_env(node.get("env")),
            shell=j_shell, working_directory=j_wd, matrix_keys=matrix_keys, matrix=matrix,
            steps=steps, matrix_declared=declared, matrix_include=include, matrix_exclude=exclude,
            services=_services(node.get("services")), container=_container(node.get("container")),
            runs_on=_runs_on(node.get("runs-on")),
        )
    return Workflow(name=_opt_str(data.get("name")), env=_env(data.get("env")), shell=shell,
                    working_directory=wd, jobs=jobs)


def parse_steps(nodes: Any) -> list[Step]:
    """A job's `steps:` (or a composite action's `runs.steps:`); what is not a mapping is skipped."""
    steps: list[Step] = []
    for index, s in enumerate(_as_list(nodes)):
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
            with_=_env(s.get("with")),
            condition=_opt_str(s.get("if")),
            continue_on_error=s.get("continue-on-error") is True,
        ))
    return steps


_MATRIX_REF = re.compile(r"^matrix\.([A-Za-z_][\w-]*)$")

# Everything below reads text a pull request controls (the workflow file, job names built from it),
# so it runs in linear time: `${{ … }}` is found with str.find and names are matched against their
# templates by placing literal segments, never with a backtracking regex.


@dataclass(frozen=True)
class _Expression:
    start: int  # of "${{"
    end: int  # after "}}"
    text: str  # what is inside, stripped


def _expressions(text: str) -> list[_Expression]:
    """The `${{ … }}` expressions of ``text``, left to right, each ending at the first `}}`."""
    found, pos = [], 0
    while (start := text.find("${{", pos)) >= 0 and (close := text.find("}}", start + 3)) >= 0:
        found.append(_Expression(start, close + 2, text[start + 3:close].strip()))
        pos = close + 2
    return found


@dataclass(frozen=True)
class NameTemplate:
    """A job or step name with expressions: the literal text around them, and for each expression
    the matrix key it shows (None for any other expression)."""

    literals: tuple[str, ...]  # one more than holes
    holes: tuple[str | None, ...]

    @classmethod
    def parse(cls, template: str) -> NameTemplate:
        literals, holes, pos, seen = [], [], 0, set()
        for expr in _expressions(template):
            literals.append(template[pos:expr.start])
            ref = _MATRIX_REF.match(expr.text)
            key = ref.group(1) if ref and ref.group(1) not in seen else None
            seen.add(key)
            holes.append(key)
            pos = expr.end
        literals.append(template[pos:])
        return cls(tuple(literals), tuple(holes))

    def match(self, name: str) -> dict[str, str] | None:
        """The matrix values ``name`` shows, by key, or None when it does not fit the template.

        A matrix expression stands for at least one character, any other for any text. Each
        literal is placed at its leftmost possible position (the answer a lazy regex gives), so
        one pass over ``name`` decides: no backtracking, whatever the template."""
        first, last = self.literals[0], self.literals[-1]
        if not self.holes:
            return {} if name == first else None
        limit = len(name) - len(last)  # where the last literal must start
        if limit < len(first) or not name.startswith(first) or not name.endswith(last):
            return None
        values: dict[str, str] = {}
        pos = len(first)
        for index, key in enumerate(self.holes):
            shortest = 1 if key else 0
            if index + 1 < len(self.holes):
                at = name.find(self.literals[index + 1], pos + shortest, limit)
                if at < 0:
                    return None
            else:
                at = limit
                if at - pos < shortest:
                    return None
            if key:
                values[key] = name[pos:at]
            pos = at + len(self.literals[index + 1])
        return values


def _split_suffix(name: str) -> tuple[str, str] | None:
    """"base (values)" → (base, values), split at the first " (" (the suffix Actions adds for a
    matrix job); None when ``name`` is not shaped like that."""
    at = name.find(" (")
    if at < 0 or "\n" in name or not name.endswith(")") or at + 2 > len(name) - 1:
        return None
    return name[:at], name[at + 2:-1]


MAX_MATRIX = 256


def expand_matrix(job: Job) -> list[dict[str, Any]]:
    """The job's matrix entries as GitHub builds them: every combination of the declared values,
    minus those an `exclude:` entry matches, then each `include:` entry added to every
    combination whose original values it matches (or appended as an entry of its own)."""
    declared = job.matrix_keys[: job.matrix_declared]
    entries: list[dict[str, Any]] = [{}]
    for key in declared:  # GitHub runs at most 256 jobs of a matrix; a bigger one is not built here
        entries = list(itertools.islice(({**e, key: v} for e in entries for v in job.matrix[key]), MAX_MATRIX))
    if not declared:
        entries = []
    entries = [e for e in entries
               if not any(all(e.get(k) == v for k, v in ex.items()) for ex in job.matrix_exclude)]
    originals = [dict(e) for e in entries]
    added: list[dict[str, Any]] = []  # entries of their own: later `include:`s never join them
    for extra in job.matrix_include:
        matched = False
        for entry, original in zip(entries, originals, strict=True):
            if all(original.get(k) == v for k, v in extra.items() if k in declared):
                matched = True
                entry.update({k: v for k, v in extra.items() if k not in declared})
        if not matched:
            added.append(dict(extra))
    return entries + added


def _entry_for(job: Job, values: dict[str, str]) -> dict[str, str]:
    """The whole matrix entry (keys `include:` adds too) whose values are `values`. A key that
    only other entries have reads as null, i.e. "" (`${{ matrix.pytest-args }}` → "")."""
    for entry in expand_matrix(job):
        if all(_scalar(entry.get(k)) == v for k, v in values.items()):
            return {k: _scalar(entry.get(k)) for k in job.matrix_keys}
    return values


def runner_os(runs_on: str | None) -> str:
    """The OS of a runner label as `runner.os` names it: GitHub-hosted `windows-2022`, `macos-14`,
    or self-hosted labels; Linux otherwise."""
    label = (runs_on or "").lower()
    if "windows" in label:
        return "Windows"
    return "macOS" if "macos" in label or "mac-" in label or "osx" in label else "Linux"


def job_runner(workflow: Workflow, job_name: str) -> str | None:
    """The runner the job `job_name` ran on (its matrix entry's), as far as the workflow tells."""
    job, matrix, _ = match_job(workflow, job_name)
    return runner_label(job, matrix) if job is not None else None


def runner_label(job: Job, matrix: dict[str, str]) -> str | None:
    """`runs-on` for a matrix entry (GitHub gives it no `env`)."""
    return substitute(job.runs_on, matrix, {}, []) if job.runs_on else None


def match_job(workflow: Workflow, job_name: str) -> tuple[Job | None, dict[str, str], bool]:
    """Find the job the Actions API calls `job_name`, with its matrix entry.

    Returns (job, matrix values by key, whether the values are known).
    """
    job, values, known = _find_job(workflow, job_name)
    if job is not None and values:
        values = _entry_for(job, values)
    return job, values, known


def _find_job(workflow: Workflow, job_name: str) -> tuple[Job | None, dict[str, str], bool]:
    name = job_name.strip()
    # Reusable workflows show as "caller / callee"; the last part is this workflow's job.
    candidates = [name] + ([name.split(" / ")[-1]] if " / " in name else [])
    # 1. the job's name or key; before any suffix, as "Test suite (windows)" may be a job's own
    #    name next to a job named "Test suite"
    for cand in candidates:
        for job in workflow.jobs.values():
            if cand in (job.name, job.key):
                return job, {}, not job.matrix_keys
    # 2. "<name or key> (<matrix values in order>)"
    for cand in candidates:
        suffix = _split_suffix(cand)
        for job in workflow.jobs.values():
            labels = [x for x in (job.name, job.key) if x]
            # GitHub adds no suffix to a name with expressions ("build (${{ matrix.platform }})")
            if suffix and suffix[0] in labels and "${{" not in (job.name or ""):
                values = [v.strip() for v in suffix[1].split(", ")]
                matrix = _values_by_position(job, values)
                return job, matrix, bool(matrix) or not job.matrix_keys
    # 3. names with expressions, rendered for each matrix entry as GitHub renders them:
    #    "${{ matrix.name || matrix.python }}", "${{ matrix.config.name }} (${{ matrix.branch }})"
    for cand in candidates:
        for job in workflow.jobs.values():
            if job.name and "${{" in job.name:
                for entry in expand_matrix(job) or [{}]:
                    values = {k: _scalar(entry.get(k)) for k in job.matrix_keys}
                    unresolved: list[str] = []
                    # stripped: an empty value at the end leaves a space the API's name has not
                    if substitute(job.name, values, {}, unresolved).strip() == cand and not unresolved:
                        return job, values, True
    # 4. name templates matched around their matrix expressions, when no entry renders as the name
    for cand in candidates:
        for job in workflow.jobs.values():
            if job.name and "${{" in job.name:
                got = NameTemplate.parse(job.name).match(cand)
                if got is not None:
                    by_key = {k: got[k] for k in job.matrix_keys if k in got}
                    return job, by_key, len(by_key) == len(job.matrix_keys)
    # 5. last resort: one job whose name or key equals the part before " (", ignoring case
    suffix = _split_suffix(candidates[-1])
    base = (suffix[0] if suffix else candidates[-1]).lower()
    hits = [j for j in workflow.jobs.values()
            if base in {x.lower() for x in (j.name, j.key) if x}]
    if len(hits) == 1:
        return hits[0], {}, not hits[0].matrix_keys
    return None, {}, False


def _values_by_position(job: Job, values: list[str]) -> dict[str, str]:
    if not job.matrix_keys or not values:
        return {}
    for entry in expand_matrix(job):  # each entry shows its own values, `include:`'s keys included
        if [_scalar(v) for v in entry.values()] == values:
            return {k: _scalar(v) for k, v in entry.items()}
    if len(values) == len(job.matrix_keys):
        return dict(zip(job.matrix_keys, values, strict=True))
    if len(values) == job.matrix_declared:
        return dict(zip(job.matrix_keys[: job.matrix_declared], values, strict=True))
    return {}


MAX_SUBSTITUTED = 256 * 1024


def substitute(text: str, matrix: dict[str, str], env: dict[str, str],
               unresolved: list[str], inputs: dict[str, str | None] | None = None) -> str:
    out, pos, added = [], 0, 0
    for expr in _expressions(text):
        out.append(text[pos:expr.start])
        whole = text[expr.start:expr.end]
        value = as_text(evaluate(expr.text, matrix, env, inputs))
        # a value is the workflow's own text, but `${{ env.BIG }}` written a thousand times would
        # multiply it: past MAX_SUBSTITUTED, expressions are left as written
        if value is not None and added + len(value) <= MAX_SUBSTITUTED:
            added += len(value)
            out.append(value)
        else:
            if whole not in unresolved:
                unresolved.append(whole)
            out.append(whole)
        pos = expr.end
    out.append(text[pos:])
    return "".join(out)


_SECRET_REF = re.compile(r"\b(?:secrets\s*[.\[]|github\s*\.\s*token\b)", re.I)


def mentions_secret(value: str) -> bool:
    """Whether an expression in ``value`` (from `${{` up to the next `}`) reads a secret or the token."""
    for piece in value.split("}"):  # each piece is searched once: linear in len(value)
        start = piece.find("${{")
        if start >= 0 and _SECRET_REF.search(piece, start + 3):
            return True
    return False
_SECRET_NAME = re.compile(r"TOKEN|SECRET|KEY|PASSWORD|PASSWD|CREDENTIAL|PRIVATE", re.I)


def safe_env(merged: dict[str, str], matrix: dict[str, str], unresolved: list[str],
             inputs: dict[str, str | None] | None = None) -> tuple[dict[str, str], list[str]]:
    env: dict[str, str] = {}
    dropped: list[str] = []
    for name, value in merged.items():
        if (_SECRET_NAME.search(name) or mentions_secret(value)
                or "GITHUB_TOKEN" in value.upper()):
            dropped.append(name)
            continue
        local: list[str] = []
        resolved = substitute(value, matrix, env, local, inputs)
        if local:  # an env var set to an unevaluated `${{ … }}` would only mislead
            dropped.append(name)
            unresolved.extend(x for x in local if x not in unresolved)
            continue
        env[name] = resolved
    return env, dropped


def _match_step(job: Job, step_name: str | None, step_number: int | None,
                matrix: dict[str, str] | None = None) -> Step | None:
    if step_name:
        wanted = step_name.strip()
        # also as the API shows it: expressions evaluated for the matrix entry, ends trimmed
        # (`run: tox -e py${{ matrix.python }}` is "Run tox -e py3.12")
        shown = [(step, (step.display_name, substitute(step.display_name, matrix or {}, {}, []).strip()))
                 for step in job.steps]
        for step, names in shown:
            if wanted in names:
                return step
        for step in job.steps:
            if step.name and "${{" in step.name and NameTemplate.parse(step.name.strip()).match(wanted) is not None:
                return step
        for step, names in shown:  # long run lines are shortened in the UI
            if not step.name and wanted.startswith("Run ") and len(wanted) > 8 \
                    and any(name.startswith(wanted.rstrip(".… ")) for name in names):
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
    job, matrix, known = match_job(workflow, job_name)
    if job is None:
        return StepLookup(None, f"no job named {job_name!r} in the workflow")
    step = _match_step(job, step_name, step_number, matrix)
    if step is None:
        label = step_name or (f"#{step_number}" if step_number is not None else "(unknown)")
        return StepLookup(None, f"no step {label} in job {job.key!r}", job=job)
    script = step.run
    if script is None:
        inputs = {k: substitute(v, matrix, {}, []) for k, v in step.with_.items()}
        script = interpret(step.uses or "", inputs).command
    if script is None:
        return StepLookup(
            None, f"step {step.display_name!r} uses the action {step.uses!r}; it has no run "
            "command to reproduce", job=job, step=step)
    unresolved: list[str] = []
    if job.matrix_keys and not known:
        unresolved.append("matrix values unknown for job name " + repr(job_name))
    merged = {**workflow.env, **job.env, **step.env}
    env, dropped = safe_env(merged, matrix, unresolved)
    run = substitute(script, matrix, env, unresolved)
    wd = step.working_directory or job.working_directory or workflow.working_directory
    wd = substitute(wd, matrix, env, unresolved) if wd else None
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


# A test command is recognised by the program at the start of one of the step's commands (after
# `VAR=value`, `sudo`, `time`, …), so `pip install pytest` or `npm ci && npm run build` are not tests.
_COMMAND_PREFIX = re.compile(r"^(?:(?:[A-Za-z_]\w*=\S*|sudo|time|env|exec|xvfb-run(?:\s+-a)?)\s+)*")
# `uv run --group dev`, `poetry run`, … before the program: options, each with at most one value.
_RUN_IN = r"(?:uv|poetry|pdm|pipenv|hatch|rye)\s+run\s+(?:--?\S+(?:\s+[^-\s]\S*)?\s+){0,8}"
_RUNNER = rf"(?:{_RUN_IN}|(?:pipx\s+run|uvx)\s+)?"
_TEST_PROGRAM = re.compile(
    r"^(?:"
    + _RUNNER + r"(?:"
    r"(?:(?:python[\d.]*|py)\s+-m\s+)?(?:pytest|py\.test)\b"
    r"|(?:python[\d.]*|py)\s+-m\s+(?:unittest|tox|nox)\b"
    r"|coverage\s+run\s+(?:--?\S+\s+){0,8}-m\s+(?:pytest|unittest)\b"
    r"|(?:tox|nox)\b"
    r"|python[\d.]*\s+manage\.py\s+test\b"  # Django
    r")"
    + r"|" + _RUN_IN + r"test\b"  # the project's own `test` script: `uv run test`, `hatch run test`
    r"|(?:hatch|pdm)\s+test\b"
    r"|(?:npm|pnpm|yarn|bun)\s+(?:--?\S+\s+){0,8}(?:run\s+)?test\b|npm\s+t\b"
    r"|yarn\s+workspace\s+\S+\s+(?:run\s+)?test\b"
    r"|(?:npx\s+|pnpm\s+(?:exec\s+|dlx\s+)?|yarn\s+|bunx\s+)?(?:jest|vitest|mocha)\b"
    r"|go\s+test\b|gotestsum\b"
    r"|cargo\s+(?:\+\S+\s+)?(?:(?:insta|miri|hack)\s+)?(?:test|nextest)\b|wasm-pack\s+test\b"
    r"|(?:mvn|\./mvnw|mvnw)\s+(?:\S+\s+){0,8}(?:test|verify)\b"
    r"|(?:gradle|\./gradlew|gradlew)\s+(?:\S+\s+){0,8}(?:test|check)\b"
    r"|make\s+(?:\S+\s+){0,8}(?:[\w-]*test[\w-]*|check)(?=\s|$)"  # test, richtest, test-unit
    r"|(?:bundle\s+exec\s+)?(?:rspec|rake\s+test)\b|ctest\b"
    # a script named for the tests, by its path (`test` alone is the shell's builtin):
    # `scripts/test`, `./run_tests.sh`, `bash scripts/test.sh`
    r"|(?:(?:ba)?sh\s+)?(?:\./|[\w.-]+/)+(?:[\w-]*[_-])?tests?(?:\.sh)?(?=\s|$)"
    r"|(?:ba)?sh\s+(?:[\w-]*[_-])?tests?\.sh\b"
    r")"
)
# Options that make a test runner only prepare: `tox --notest` makes the environments,
# `cargo test --no-run` and `mvn verify -DskipTests` only build.
_PREPARES_ONLY = re.compile(r"\s(?:--notest|--no-run|--install-only|-DskipTests|-Dmaven\.test\.skip\S*|-x\s+test)(?=\s|$)")
_COMMAND_SEPARATORS = re.compile(r"\n|&&|\|\||;|\|")


def is_test_command(run: str) -> bool:
    """Whether a `run:` script runs tests (pytest, tox, nox, unittest, npm/yarn/pnpm test, jest,
    vitest, go test, cargo test, mvn/gradle test, make test, …) — never an install, build, lint or
    upload step."""
    for part in _COMMAND_SEPARATORS.split(run.replace("\\\n", " ")):
        command = _COMMAND_PREFIX.sub("", part.strip().lstrip("({ "))
        if command and not command.startswith("#") and _TEST_PROGRAM.match(command) \
                and not _PREPARES_ONLY.search(command):
            return True
    return False


is_test_command.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


# A step named for the tests ("Run tests", "Test with pytest") runs them, whatever its command
# (`make ci`); "Test wheel" or "Build tests" do not say so.
_TEST_STEP_NAME = re.compile(r"^(?:run\s+)?(?:the\s+)?(?:unit\s+)?tests?(?:\s+(?:with|using|via|on|in)\b.*)?$", re.I)
# …unless its command installs, builds or uploads, whatever the step is called.
_NOT_A_TEST = re.compile(
    r"^(?:(?:python[\d.]*\s+-m\s+)?(?:pip3?|uv\s+pip|pipx)\s+install|(?:npm|pnpm|yarn|bun)\s+(?:ci|install|i|add)\b"
    r"|(?:poetry|pdm|pipenv|uv)\s+(?:install|sync|lock|build)\b|(?:cargo|go|npm\s+run)\s+build\b"
    r"|python[\d.]*\s+-m\s+build\b|twine\b|docker\s+(?:build|push)\b|curl\b|wget\b)")


def test_command_guess(workflow: Workflow, job_name: str) -> str | None:
    """The command of the step that runs the tests, preferring the named job.

    Used as the default regression command. Falls back to other jobs of the workflow (a lint
    job's fix still has to keep the test suite green). A step's working directory becomes a
    `cd … &&` prefix.
    """
    job, matrix, _ = match_job(workflow, job_name)
    ordered = ([job] if job else []) + [j for j in workflow.jobs.values() if j is not job]
    for candidate in ordered:
        values = matrix if candidate is job else {}
        if not values:  # another job, or unknown values: its first matrix entry (as a whole)
            first = next(iter(expand_matrix(candidate)), None)
            values = {k: _scalar(first.get(k)) for k in candidate.matrix_keys} if first else {}
        commands = list(_step_commands(workflow, candidate, values))
        found = next((c for s, raw, c in commands if is_test_command(raw) or is_test_command(c)), None) \
            or next((c for s, raw, c in commands if s.name and _TEST_STEP_NAME.match(s.name.strip())
                     and not any(_NOT_A_TEST.match(_COMMAND_PREFIX.sub("", part.strip()))
                                 for part in _COMMAND_SEPARATORS.split(raw) if part.strip())), None)
        if found:
            return found
    return None


def _step_commands(workflow: Workflow, job: Job, values: dict[str, str]):
    """(step, its script, its command as the regression command) for each step that has one."""
    for step in job.steps:
        script = step.run
        if script is None and step.uses:  # an action that runs a command (nick-fields/retry)
            script = interpret(step.uses, {k: substitute(v, values, {}, []) for k, v in step.with_.items()}).command
        if not script:
            continue
        env, _ = safe_env({**workflow.env, **job.env, **step.env}, values, [])
        run = substitute(script.strip(), values, env, [])  # `${{ env.CARGO }} test` → `cargo test`
        wd = step.working_directory or job.working_directory or workflow.working_directory
        if wd and wd not in (".", "./"):
            run = f"cd {shlex.quote(substitute(wd, values, env, []))} && {run}"
        yield step, script, run


test_command_guess.__test__ = False  # type: ignore[attr-defined]  # not a pytest test
