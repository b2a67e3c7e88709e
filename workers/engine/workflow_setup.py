"""The failing job's own setup as the repair's setup phase: its `run:` steps before the failing
step, in order, each in its working directory, shell and env, after what its setup actions stand
for (setup-uv: `uv` installed with pip) and what the runner has that the image may not (pipx).
Used when the repository sets no `repair.setup`."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from workers.engine.environment import PACKAGES_MOUNT, STEPS_ENV, JobEnvironment, as_shell
from workers.failure.ci_job import CiJob
from workers.sandbox import WORKSPACE_MOUNT

WORKFLOW_SETUP = "the workflow's steps before the failing step"


# tox makes a test environment when first run and reuses it while its deps are unchanged.
_TOX = re.compile(r"^(?:python3?\s+-m\s+)?tox(?:\s+(?:run|r))?(?=\s|$)")


def prepare_tox(command: str | None) -> str | None:
    """`tox -e py311` → `tox -e py311 --notest`: the test environments made once, in the setup
    (where packages come from), so that reproduction, candidates and validation only reinstall
    the project and run the tests. None for any other command."""
    command = (command or "").strip()
    if not _TOX.match(command) or re.search(r"[\n;&|<>`$()]", command):
        return None
    words = shlex.split(command)
    at = words.index("--") if "--" in words else len(words)
    return shlex.join([*words[:at], "--notest", *words[at:]])


# The runner gives every step files through which it passes settings to the later steps
# (`echo "PYTHON_GIL=0" >> "$GITHUB_ENV"`); without them such a step fails. After each step what
# it wrote to $GITHUB_ENV (NAME=value, or NAME<<DELIMITER lines) and $GITHUB_PATH is applied, and
# kept in the environment directory for the job's later commands (the failing step among them).
_GITHUB_FILES = f"""\
export GITHUB_ENV="$(mktemp)" GITHUB_PATH="$(mktemp)" GITHUB_OUTPUT="$(mktemp)" GITHUB_STEP_SUMMARY="$(mktemp)"
qwenfix_quoted() {{ printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\\\\\''/g")"; }}
qwenfix_set() {{
  case "$1" in ''|[0-9]*|*[!A-Za-z0-9_]*) return 0 ;; esac
  export "$1=$2" 2>/dev/null || return 0
  printf 'export %s=%s\\n' "$1" "$(qwenfix_quoted "$2")" >> {STEPS_ENV}
}}
qwenfix_github_env() {{
  while IFS= read -r line; do
    case "$line" in
      *'<<'*) name=${{line%%<<*}}; delimiter=${{line#*<<}}; value=''; sep=''
        while IFS= read -r more && [ "$more" != "$delimiter" ]; do value="$value$sep$more"; sep='
'; done
        qwenfix_set "$name" "$value" ;;
      *=*) qwenfix_set "${{line%%=*}}" "${{line#*=}}" ;;
    esac
  done < "$GITHUB_ENV"
  while IFS= read -r dir; do
    if [ -n "$dir" ]; then
      PATH="$dir:$PATH"; printf 'export PATH=%s:"$PATH"\\n' "$(qwenfix_quoted "$dir")" >> {STEPS_ENV}
    fi
  done < "$GITHUB_PATH"
  export PATH; : > "$GITHUB_ENV"; : > "$GITHUB_PATH"
}}"""
_GITHUB_FILE = re.compile(r"\bGITHUB_(?:ENV|PATH|OUTPUT|STEP_SUMMARY)\b")


def setup_script(job: CiJob, command: str | None = None, working_directory: str | None = None,
                 env: dict[str, str] | None = None) -> str | None:
    """One script for the setup sandbox, or None when the job has nothing to set up. `command`
    is the failing step's (in `working_directory`, with the step's `env`): a tox run's
    environments are made here too."""
    lines: list[str] = []
    for toolchain in job.toolchains:
        if toolchain.name == "uv":  # setup-uv puts `uv` on PATH; here it comes from the package index/cache
            spec = f"uv=={toolchain.version}" if toolchain.version and toolchain.version[0].isdigit() else "uv"
            lines.append(f"command -v uv >/dev/null 2>&1 || python -m pip install {shlex.quote(spec)}")
    if any(re.search(r"(^|[\s;&|(])pipx\s", step.run) for step in job.setup_steps):  # runners have pipx
        lines.append("command -v pipx >/dev/null 2>&1 || python -m pip install pipx")
    github_files = any(_GITHUB_FILE.search(step.run) for step in job.setup_steps)
    if github_files:
        lines.append(_GITHUB_FILES)
    for step in job.setup_steps:
        lines.append(f"echo {shlex.quote('--- ' + step.name)}")
        body = _in_step(step.working_directory, step.env, as_shell(step.run, step.shell))
        lines.append(f"{body} || true" if step.continue_on_error else body)
        if github_files:
            lines.append("qwenfix_github_env")
    tox = prepare_tox(command)
    if tox is not None:
        lines.append(f"echo {shlex.quote('--- tox environments: ' + tox)}")
        lines.append(_in_step(working_directory, env or {}, tox))
    if not lines:
        return None
    return "set -e\n" + "\n".join(lines)


def _in_step(working_directory: str | None, env: dict[str, str], script: str) -> str:
    """`script` in a subshell, in the step's directory of the workspace, with the step's env."""
    where = f"{WORKSPACE_MOUNT}/{working_directory}".rstrip("/") if working_directory not in (None, ".") \
        else WORKSPACE_MOUNT
    exports = "".join(f"export {name}={shlex.quote(value)}; " for name, value in env.items())
    return f"( cd {shlex.quote(where)} && {exports}{script} )"


def job_environment(job: CiJob | None, pip_index_url: str = "", npm_registry: str = "",
                    package_cache: Path | None = None, network: bool = False) -> JobEnvironment:
    """The job's plain env, and where packages come from: the operator's index and registry, or
    the read-only package cache (wheels/, npm/), and no index at all when the setup sandbox has no
    network (so an install fails at once, saying what is missing)."""
    setup: dict[str, str] = {}
    if package_cache is not None:
        setup["PIP_FIND_LINKS"] = f"{PACKAGES_MOUNT}/wheels"
        setup["UV_FIND_LINKS"] = f"{PACKAGES_MOUNT}/wheels"
        setup["npm_config_cache"] = f"{PACKAGES_MOUNT}/npm"
    if pip_index_url:
        setup["PIP_INDEX_URL"] = pip_index_url
        setup["UV_DEFAULT_INDEX"] = pip_index_url
    elif not network:
        setup["PIP_NO_INDEX"] = "1"
        setup["UV_NO_INDEX"] = "1"
        setup["UV_OFFLINE"] = "1"
    if npm_registry:
        setup["npm_config_registry"] = npm_registry
    elif not network:
        setup["npm_config_offline"] = "true"
    return JobEnvironment(variables=dict(job.env) if job else {}, package_variables=setup,
                          package_cache=package_cache, index_url=pip_index_url)
