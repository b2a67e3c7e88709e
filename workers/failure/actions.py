"""What a workflow's `uses:` steps mean for reproducing it: setup actions become toolchain
requests (setup-python → python 3.12), checkout and cache actions need nothing, a few actions run a
known command (pre-commit/action) or install a tool (snok/install-poetry), and every other action is
named as not reproduced."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

# action (owner/name, lower case, no @ref) → (toolchain, the input holding its version)
SETUP_ACTIONS = {
    "actions/setup-python": ("python", "python-version"),
    "astral-sh/setup-uv": ("uv", "version"),
    "actions/setup-node": ("node", "node-version"),
    "actions/setup-go": ("go", "go-version"),
    "actions/setup-java": ("java", "java-version"),
    "dtolnay/rust-toolchain": ("rust", "toolchain"),
    "hynek/setup-cached-uv": ("uv", "version"),  # setup-uv with its cache kept
    "pdm-project/setup-pdm": ("python", "python-version"),  # and PDM, installed in the setup
}
# The file input an action reads the version from when the version input is absent.
VERSION_FILE_INPUTS = {"python-version-file", "node-version-file", "go-version-file", "java-version-file"}
# Nothing to reproduce: the worktree is the checkout; caches only make CI faster; uploads come after.
IGNORED_ACTIONS = {
    "actions/checkout", "actions/cache", "actions/cache/restore", "actions/cache/save",
    "actions/upload-artifact", "codecov/codecov-action", "coverallsapp/github-action",
    "swatinem/rust-cache",  # a cache of cargo's target/ and registry
    "rui314/setup-mold",  # a faster linker: the image's links the same
    "simenb/github-actions-cpu-cores",  # only an output, the runner's CPU count
}


# Actions that install Poetry on the runner (with pipx or its installer; here with pip, from where
# packages come from), and how their inputs persist as Poetry's settings.
POETRY_ACTIONS = {"snok/install-poetry", "abatilo/actions-poetry"}
_POETRY_INPUTS = {"virtualenvs-create": "POETRY_VIRTUALENVS_CREATE",
                  "virtualenvs-in-project": "POETRY_VIRTUALENVS_IN_PROJECT"}


@dataclass(frozen=True)
class Toolchain:
    """A toolchain the failing job asked for: `python` `3.12`, `node` `20.x`, `rust` `stable`, …"""

    name: str
    version: str | None  # as requested; None: whatever the image has
    action: str  # the `uses:` that asked, for the report

    def describe(self) -> str:
        return f"{self.name} {self.version}" if self.version else self.name


@dataclass(frozen=True)
class ActionMeaning:
    kind: str  # toolchain | ignored | command | unsupported
    toolchains: tuple[Toolchain, ...] = ()
    command: str | None = None  # for kind == "command": what the action runs (None: it only installs)
    setup: str | None = None  # what it installs first (part of the setup phase)
    env: tuple[tuple[str, str], ...] = ()  # settings it leaves for the job's later steps
    note: str | None = None


def action_name(uses: str) -> str:
    """`actions/setup-python@v5` → `actions/setup-python`; `./local` and `docker://…` stay as they are."""
    return uses.split("@", 1)[0].strip().lower().rstrip("/")


def _ref(uses: str) -> str:
    return uses.split("@", 1)[1].strip() if "@" in uses else ""


def _version(value: str | None) -> str | None:
    value = (value or "").strip().strip("'\"")
    if not value or "${{" in value:
        return None
    return value.splitlines()[-1].strip() or None  # several versions: the last is the default


_RUST_REF = re.compile(r"^(?:stable|beta|nightly(?:-\d{4}-\d\d-\d\d)?|\d+\.\d+(?:\.\d+)?)$")


def interpret(uses: str, inputs: dict[str, str]) -> ActionMeaning:
    """The meaning of one `uses:` step with its `with:` inputs (expressions already substituted)."""
    name = action_name(uses)
    if name in IGNORED_ACTIONS:
        return ActionMeaning("ignored")
    if name in SETUP_ACTIONS:
        toolchain, key = SETUP_ACTIONS[name]
        version = _version(inputs.get(key))
        notes = []
        if version is None and any(inputs.get(k) for k in VERSION_FILE_INPUTS):
            notes.append(f"{uses}: the version file is not read; the image's {toolchain} is used")
        if name == "dtolnay/rust-toolchain" and version is None and _RUST_REF.match(_ref(uses)):
            version = _ref(uses)  # dtolnay/rust-toolchain@1.75 names the toolchain in its ref
        found = [Toolchain(toolchain, version, uses)]
        if name == "astral-sh/setup-uv":
            python = _version(inputs.get("python-version"))
            found.append(Toolchain("python", python, uses))
        if name == "actions/setup-python" and "," in (version or ""):
            found = [Toolchain("python", version.split(",")[-1].strip(), uses)]  # the last is the default
        setup = "command -v pdm >/dev/null 2>&1 || python -m pip install pdm" if name == "pdm-project/setup-pdm" else None
        return ActionMeaning("toolchain", tuple(found), setup=setup, note="; ".join(notes) or None)
    if name == "pre-commit/action":  # its hooks' environments are made in the setup, where packages come from
        extra = inputs.get("extra_args") or "--all-files"
        return ActionMeaning("command", setup="pip install pre-commit && pre-commit install-hooks",
                             command="pre-commit run --show-diff-on-failure --color=always " + extra)
    if name == "gradle/actions/setup-gradle" and not inputs.get("gradle-version"):
        return ActionMeaning("ignored")  # caching only: the project's ./gradlew brings its Gradle
    if name in POETRY_ACTIONS:
        return _install_poetry(inputs)
    if name == "pnpm/action-setup":  # pnpm from the npm registry, where packages come from
        version = _version(inputs.get("version"))
        spec = shlex.quote(f"pnpm@{version}" if version else "pnpm")
        return ActionMeaning("command", setup=f"command -v pnpm >/dev/null 2>&1 || npm install -g {spec}",
                             note=None if version else f"{uses}: no version given; the latest pnpm is used")
    if name == "nick-fields/retry" and inputs.get("command", "").strip():  # runs its `command:` until it passes
        return ActionMeaning("command", command=inputs["command"].strip())
    return ActionMeaning("unsupported", note=f"{uses} (an action qwenfix does not reproduce)")


def _install_poetry(inputs: dict[str, str]) -> ActionMeaning:
    version = _version(inputs.get("version") or inputs.get("poetry-version"))
    spec = f"poetry=={version}" if version and version[0].isdigit() else "poetry"
    env = tuple((variable, inputs[key].strip().lower()) for key, variable in _POETRY_INPUTS.items()
                if inputs.get(key, "").strip().lower() in ("true", "false"))
    return ActionMeaning("command", setup=f"command -v poetry >/dev/null 2>&1 || python -m pip install '{spec}'",
                         env=env)
