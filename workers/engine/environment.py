"""The job's environment inside its sandboxes, as the workflow's runner had it: the job's plain
`env:` values, the toolchains its setup actions installed (a Python virtual environment at
ENV_MOUNT, on PATH first, as setup-python puts its Python first; not activated, as on the runner,
so Poetry and Pipenv make environments of their own), and where packages come from:
the operator's package index and npm registry (reachable only from a setup sandbox given network)
or the read-only package cache, also read by tools that install while testing (tox, nox, uv run)."""

from __future__ import annotations

import shlex
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from workers.engine.package_index import setup_preamble
from workers.engine.setup_cache import SetupCache, copy_products, setup_key, worktree_files
from workers.sandbox import ExecResult, Mount, Sandbox

ENV_MOUNT = "/opt/qwenfix/env"  # what setup installed outside the repository (read-only after setup)
PACKAGES_MOUNT = "/opt/qwenfix/packages"  # the operator's package cache (read-only)
PYTHON_ENV = f"{ENV_MOUNT}/python"  # the virtual environment setup-python stands for
# What tools keep in the runner's $HOME, which lasts the whole job there but is emptied between
# stages here, lives in the environment directory: Poetry's and Pipenv's virtual environments,
# pipx's tools (their commands next to python's), pre-commit's hook environments (once the setup
# has made its store: pre-commit cannot start one in a read-only directory).
TOOL_HOMES = {"POETRY_VIRTUALENVS_PATH": f"{ENV_MOUNT}/poetry", "WORKON_HOME": f"{ENV_MOUNT}/virtualenvs",
              "PIPX_HOME": f"{ENV_MOUNT}/pipx", "PIPX_BIN_DIR": f"{PYTHON_ENV}/bin"}
PRE_COMMIT_HOME = f"{ENV_MOUNT}/pre-commit"
STEPS_ENV = f"{ENV_MOUNT}/github-env.sh"  # what the setup steps wrote to $GITHUB_ENV and $GITHUB_PATH
# Before any setup: a Python whose pip installs (as setup-python's does), on the image's python3 with
# its packages visible (pytest, …); Debian's pip serves it, so no network is needed to make it. The
# image's console scripts (pip, pytest, …) get launchers in the environment's bin/, so `pytest` runs
# with this Python and sees what setup installed, as on the runner.
_LAUNCHERS = (
    "import importlib.metadata as m, os, sys\n"
    "bin = os.path.join(sys.prefix, 'bin')\n"
    "for dist in m.distributions():\n"
    "    for ep in dist.entry_points:\n"
    "        path = os.path.join(bin, ep.name)\n"
    "        if ep.group != 'console_scripts' or os.path.lexists(path) or '/' in ep.name or not ep.attr:\n"
    "            continue\n"
    "        with open(path, 'w') as f:\n"
    "            f.write(f'#!{sys.executable}\\nimport sys\\nfrom {ep.module} import {ep.attr.split(\".\")[0]}\\n'\n"
    "                    f'sys.exit({ep.attr}())\\n')\n"
    "        os.chmod(path, 0o755)\n"
)
# When the image's python3 is itself a virtual environment's (its tools installed there), that
# environment's packages are made visible too.
_IMAGE_ENV = (
    "import subprocess, sys, sysconfig\n"
    "image = subprocess.run([sys.argv[1], '-c', 'import sys, sysconfig; print(sysconfig.get_paths()[\"purelib\"]'\n"
    "                        ' if sys.prefix != sys.base_prefix else \"\")'], capture_output=True, text=True).stdout\n"
    "if image.strip():\n"
    "    with open(sysconfig.get_paths()['purelib'] + '/_qwenfix_image.pth', 'w') as f:\n"
    "        f.write(image)\n"
)
PYTHON_PREAMBLE = f"""\
if command -v python3 >/dev/null 2>&1 && [ ! -x {PYTHON_ENV}/bin/python ]; then
  image_python=$(command -v python3)
  python3 -m venv --system-site-packages --without-pip {PYTHON_ENV}
  {PYTHON_ENV}/bin/python -c {shlex.quote(_IMAGE_ENV)} "$image_python"
  {PYTHON_ENV}/bin/python -c {shlex.quote(_LAUNCHERS)}
fi
"""


@dataclass(frozen=True)
class JobEnvironment:
    variables: dict[str, str] = field(default_factory=dict)  # the job's plain env
    package_variables: dict[str, str] = field(default_factory=dict)  # package index / registry / cache
    package_cache: Path | None = None  # host directory mounted read-only at PACKAGES_MOUNT
    index_url: str = ""  # the operator's package index (QWENFIX_SANDBOX_PIP_INDEX_URL)

    def setup_preamble(self) -> str:
        """What the setup script starts with: one package index for pip, uv, Poetry, PDM and Pipenv."""
        wheels = f"{PACKAGES_MOUNT}/wheels" if self.package_cache is not None else None
        return f"export PRE_COMMIT_HOME={PRE_COMMIT_HOME}\n" + setup_preamble(self.index_url, wheels)

    def prelude(self, with_env_dir: bool) -> str:
        """What every command of the job starts with."""
        values = {**self.package_variables, **self.variables}
        lines = [f"export {name}={shlex.quote(value)}" for name, value in values.items()]
        if with_env_dir:
            lines.append(f'export PATH="{PYTHON_ENV}/bin:$PATH"')
            lines += [f"export {name}={value}" for name, value in TOOL_HOMES.items()]
            lines.append(f"if [ -f {PRE_COMMIT_HOME}/db.db ]; then export PRE_COMMIT_HOME={PRE_COMMIT_HOME}; fi")
            lines.append(f"if [ -f {STEPS_ENV} ]; then . {STEPS_ENV}; fi")
        return "".join(line + "\n" for line in lines)


class EnvSandbox:
    """A sandbox whose every command starts with the job's environment exported."""

    def __init__(self, sandbox: Sandbox, prelude: str) -> None:
        self._sandbox = sandbox
        self._prelude = prelude

    def exec(self, command: str | list[str], cwd: str = ".", timeout: float | None = None) -> ExecResult:
        if not self._prelude:
            return self._sandbox.exec(command, cwd=cwd, timeout=timeout)
        if isinstance(command, str):
            command = self._prelude + command
        else:
            command = ["sh", "-c", self._prelude + 'exec "$@"', "sh", *command]
        return self._sandbox.exec(command, cwd=cwd, timeout=timeout)

    def __getattr__(self, name: str):  # workspace, refresh, stop, id, …
        return getattr(self._sandbox, name)


# How the runner starts a `run:` script for each `shell:` (Linux runners).
_SHELLS = {
    None: "bash -e -c",
    "bash": "bash --noprofile --norc -eo pipefail -c",
    "sh": "sh -e -c",
    "python": "python -c",
}


def as_shell(script: str, shell: str | None) -> str:
    """A `run:` script as the sandbox runs it, in the step's shell: stopping at the first failing
    line as the runner does. A one-line script in the default shell stays as written."""
    script = script.strip()
    if shell is None and "\n" not in script:
        return script
    if shell in _SHELLS:
        return f"{_SHELLS[shell]} {shlex.quote(script)}"
    words = shlex.split(shell or "")
    if words and words[0] in ("bash", "sh") and words[-1] == "{0}":  # e.g. `bash -l {0}` (conda)
        return " ".join([*words[:-1], "-c", shlex.quote(script)])
    return script  # pwsh, cmd, …: not on this runner; run as written and let the output tell


class JobSandboxes:
    """Starts a job's sandboxes in its environment. The setup sandbox gets the environment
    directory (mounted writable at ENV_MOUNT) and the package cache; every later sandbox gets the
    environment directory read-only, so no stage can change what the next one runs with. With a
    setup cache, a setup whose key matches a kept entry is restored instead of run."""

    def __init__(self, environment: JobEnvironment, start_sandbox, cache: SetupCache | None = None,
                 image: str = "", network: bool = False) -> None:
        self.environment = environment
        self._start = start_sandbox
        self._cache = cache
        self._image = image
        self._network = network
        self.env_dir: Path | None = None
        self._temporary: Path | None = None
        self.cached = False  # the setup was restored from the cache

    def setup_runner(self, script: str, working_directory: str):
        """`run(root) -> ExecResult` for workers.engine.setup_phase.prepared."""

        def run(root: Path) -> ExecResult:
            key = setup_key(root, script, self._image, self.environment.variables) if self._cache else ""
            entry = self._cache.find(key) if self._cache else None
            if entry is not None:
                copy_products(entry.products_dir, root, entry.products())
                self.env_dir, self.cached = entry.env_dir, True
                return ExecResult(0, f"setup restored from the setup cache ({key})", 0.0)
            env_dir = self._cache.new_env_dir() if self._cache else Path(tempfile.mkdtemp(prefix="qwenfix-env-"))
            self.env_dir = self._temporary = env_dir
            before = worktree_files(root)
            mounts = (Mount(env_dir, ENV_MOUNT, read_only=False), *self._package_mounts())
            sandbox = self._start(root, network=self._network, mounts=mounts) if self._network \
                else self._start(root, mounts=mounts)
            try:
                result = EnvSandbox(sandbox, self.environment.prelude(True)).exec(
                    PYTHON_PREAMBLE + self.environment.setup_preamble() + script, cwd=working_directory)
            finally:
                sandbox.stop()
            if result.ok and self._cache is not None:
                stored = self._cache.store(key, env_dir, root, sorted(worktree_files(root) - before))
                if stored is not None:
                    self.env_dir, self._temporary = stored.env_dir, None
            return result

        return run

    def start(self, workspace: Path):
        """A sandbox for reproduction, a candidate or a validation: no network, ever."""
        mounts = ((Mount(self.env_dir, ENV_MOUNT),) if self.env_dir else ()) + self._package_mounts()
        sandbox = self._start(workspace, mounts=mounts) if mounts else self._start(workspace)
        return EnvSandbox(sandbox, self.environment.prelude(self.env_dir is not None))

    def _package_mounts(self) -> tuple[Mount, ...]:
        cache = self.environment.package_cache
        return (Mount(cache, PACKAGES_MOUNT),) if cache is not None else ()

    def close(self) -> None:
        if self._temporary is not None:
            if self._cache is not None:
                self._cache.discard(self._temporary)
            else:
                shutil.rmtree(self._temporary, ignore_errors=True)
            self._temporary = None

    def __enter__(self) -> JobSandboxes:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
