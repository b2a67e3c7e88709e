"""Benchmark task sets, in two formats, read into `BenchTask`s.

SWE-bench's JSONL: one instance a line with `instance_id`, `repo` (owner/name), `base_commit`,
`problem_statement`, `test_patch`, `FAIL_TO_PASS` and `PASS_TO_PASS` (JSON lists, or strings holding
them); optionally `image` (or `docker_image`) naming the instance's sandbox image and `test_command`.
The repository is a local clone found under `--repos DIR` as `DIR/owner__name`, `DIR/owner/name` or
`DIR/name`. The test patch is applied and committed before the run; the failing command runs the
FAIL_TO_PASS tests, the regression command the PASS_TO_PASS ones.

qwenfix's CI-repair JSONL: one task a line with `id`, `repo` (a local git repository, relative to the
task file), `commit` (a sha, branch or tag), `command` (fails at that commit) and optionally
`regression_command`, `setup`, `image`, `instructions` and `gold_patch` (a diff, or the path of a
.patch/.diff file relative to the task file).
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from workers.workspace.git import run_git, stdout_text


class TaskError(ValueError):
    """A task file or task that cannot be run, with the line it is on."""


@dataclass(frozen=True)
class BenchTask:
    id: str
    repo: Path  # a local git repository
    commit: str  # resolved to a sha
    command: str
    regression_command: str | None = None
    setup: str | None = None
    image: str | None = None
    instructions: str | None = None  # SWE-bench's problem statement
    test_patch: str | None = None  # committed on top of `commit` before the run
    gold_patch: str | None = None
    protected: tuple[str, ...] = ()  # files a candidate may not touch (those of the test patch)
    kind: str = "ci"  # ci | swe-bench
    extra: dict = field(default_factory=dict)


def load_tasks(path: Path, repos: Path | None = None) -> list[BenchTask]:
    """Every task of a JSONL file, in order; raises TaskError naming the line of the first bad one."""
    if not path.is_file():
        raise TaskError(f"{path}: no such file")
    tasks, ids = [], set()
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            data = json.loads(line)
            if not isinstance(data, dict):
                raise TaskError("not a JSON object")
            task = _swe_bench(data, repos) if "instance_id" in data else _ci_task(data, path.parent)
        except (ValueError, KeyError, TypeError) as exc:
            what = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
            raise TaskError(f"{path}, line {number}: {what}") from None
        if task.id in ids:
            raise TaskError(f"{path}, line {number}: the id {task.id!r} appears twice")
        ids.add(task.id)
        tasks.append(task)
    if not tasks:
        raise TaskError(f"{path}: no tasks")
    return tasks


def _ci_task(data: dict, base: Path) -> BenchTask:
    repo = _repository(base / str(data["repo"]))
    gold = data.get("gold_patch")
    if isinstance(gold, str) and "\n" not in gold and gold.endswith((".patch", ".diff")):
        gold = (base / gold).read_text()
    return BenchTask(
        id=_identifier(data["id"]), repo=repo, commit=_resolve(repo, str(data["commit"])), command=_text(data, "command"),
        regression_command=data.get("regression_command"), setup=data.get("setup"), image=data.get("image"),
        instructions=data.get("instructions"), gold_patch=gold, kind="ci")


def _swe_bench(data: dict, repos: Path | None) -> BenchTask:
    if repos is None:
        raise TaskError("SWE-bench tasks need --repos DIR (local clones of their repositories)")
    name = str(data["repo"])
    owner, _, short = name.partition("/")
    candidates = [repos / f"{owner}__{short}", repos / owner / short, repos / short]
    repo = next((p for p in candidates if (p / ".git").exists() or (p / "HEAD").is_file()), None)
    if repo is None:
        raise TaskError(f"no clone of {name} under {repos} (looked for {', '.join(p.name for p in candidates)})")
    fail, keep = _tests(data["FAIL_TO_PASS"]), _tests(data.get("PASS_TO_PASS", []))
    if not fail:
        raise TaskError("FAIL_TO_PASS is empty")
    test_patch = str(data.get("test_patch") or "")
    command = data.get("test_command") or swe_bench_command(name, fail)
    return BenchTask(
        id=_identifier(data["instance_id"]), repo=repo, commit=_resolve(repo, str(data["base_commit"])),
        command=command, regression_command=swe_bench_command(name, keep) if keep else None,
        image=data.get("image") or data.get("docker_image"), instructions=data.get("problem_statement"),
        test_patch=test_patch or None, gold_patch=data.get("patch"), protected=tuple(_patched_files(test_patch)),
        kind="swe-bench", extra={"FAIL_TO_PASS": fail, "PASS_TO_PASS": keep})


def swe_bench_command(repo: str, tests: list[str]) -> str:
    """The command that runs these tests: Django's and SymPy's own runners, pytest for the rest."""
    if repo == "django/django":  # "test_name (module.Class)" → module.Class.test_name
        labels = []
        for test in tests:
            m = re.match(r"(\w+) \(([\w.]+)\)", test)
            labels.append(f"{m.group(2)}.{m.group(1)}" if m else test)
        return "./tests/runtests.py --verbosity 2 --parallel 1 " + " ".join(shlex.quote(t) for t in labels)
    if repo == "sympy/sympy":
        return "bin/test -C --verbose " + " ".join(shlex.quote(t) for t in tests)
    return "python -m pytest -rA -p no:cacheprovider " + " ".join(shlex.quote(t) for t in tests)


def _tests(value) -> list[str]:
    if isinstance(value, str):
        value = json.loads(value) if value.strip() else []
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise TaskError("FAIL_TO_PASS and PASS_TO_PASS must be lists of test names")
    return value


def _patched_files(patch: str) -> list[str]:
    return sorted({m.group(1) for m in re.finditer(r"^\+\+\+ b/(\S+)", patch, re.M)}
                  | {m.group(1) for m in re.finditer(r"^--- a/(\S+)", patch, re.M)})


def _repository(path: Path) -> Path:
    if not (path / ".git").exists():
        raise TaskError(f"{path}: not a git repository")
    return path.resolve()


def _resolve(repo: Path, commit: str) -> str:
    done = run_git(["rev-parse", "--verify", "--quiet", f"{commit}^{{commit}}"], cwd=repo, check=False)
    if done.returncode != 0:
        raise TaskError(f"{commit!r} is not a commit of {repo}")
    return stdout_text(done)


def _identifier(value) -> str:
    text = str(value)
    if not re.fullmatch(r"[\w.@+-]{1,200}", text):
        raise TaskError(f"the id {text!r} may only hold letters, digits and . _ - @ +")
    return text


def _text(data: dict, key: str) -> str:
    value = data[key]
    if not isinstance(value, str) or not value.strip():
        raise TaskError(f"{key} must be a non-empty string")
    return value
