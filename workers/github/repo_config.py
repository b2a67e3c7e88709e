"""The repository's `.github/qwen.yml`: schema, defaults, loading and a help table.

The caller reads the file from the BASE branch (never from a pull request's head) and passes its
text here. Loading never raises: a broken file yields the defaults plus one error message that
names the offending field, so the app can keep working and tell the maintainer what to fix.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from core import bounded_yaml

CONFIG_PATH = ".github/qwen.yml"
MAX_CONFIG_CHARS = 100_000

RepairMode = Literal["suggest", "commit", "pull_request", "comment"]
REPAIR_MODES: tuple[str, ...] = ("suggest", "commit", "pull_request", "comment")

# Keys under `model:` that would let a repository redirect the agent or read credentials.
_OPERATOR_ONLY_HINTS = ("url", "endpoint", "key", "token", "secret", "host", "base", "name", "org")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _empty_section_is_defaults(cls, data: Any) -> Any:
        # `repair:` with nothing under it parses as None.
        return {} if data is None else data


def _one_or_many(value: Any) -> Any:
    """Accept `branches: main` as shorthand for `branches: [main]`."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return value


class RepairConfig(_Section):
    mode: RepairMode | None = None
    command: str | None = None
    regression_command: str | None = None
    setup: str | None = None
    candidates: int = Field(2, ge=1, le=8)
    max_attempts_per_day: int = Field(3, ge=0, le=100)
    allow_ci_changes: bool = False
    allow_test_deletion: bool = False
    forks: bool = False  # repair red builds of pull requests from forks (as suggestions, never a base branch)
    allow_test_changes: bool = False
    branches: list[str] = Field(default_factory=lambda: ["*"])
    exclude_branches: list[str] = Field(default_factory=list)
    rerun_flaky: bool = False
    fix_base: bool = False  # a failure that happens on the base too gets a fix pull request to the base

    @field_validator("branches", "exclude_branches", mode="before")
    @classmethod
    def _lists(cls, value: Any) -> Any:
        return _one_or_many(value)

    @field_validator("command", "regression_command", "setup")
    @classmethod
    def _non_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must not be empty (remove the key to use the default)")
        return value


class SandboxConfig(_Section):
    image: str | None = None
    network: bool = False

    @field_validator("image")
    @classmethod
    def _image_name(cls, value: str | None) -> str | None:
        if value is not None and (not value.strip() or any(c.isspace() for c in value)):
            raise ValueError("must be an image reference without spaces")
        return value


class PathsConfig(_Section):
    ignore: list[str] = Field(default_factory=list)

    @field_validator("ignore", mode="before")
    @classmethod
    def _lists(cls, value: Any) -> Any:
        return _one_or_many(value)


class ReviewConfig(_Section):
    enabled: bool = False
    drafts: bool = False
    max_comments: int = Field(10, ge=1, le=50)


class ModelConfig(_Section):
    """Safe per-repository overrides; the endpoint, key and model name stay with the operator."""

    temperature: float | None = Field(None, ge=0.0, le=2.0)
    max_steps: int | None = Field(None, ge=1, le=200)
    max_tokens: int | None = Field(None, ge=256, le=131_072)


class RepoConfig(_Section):
    repair: RepairConfig = Field(default_factory=RepairConfig)
    sandbox: SandboxConfig = Field(default_factory=SandboxConfig)
    paths: PathsConfig = Field(default_factory=PathsConfig)
    review: ReviewConfig = Field(default_factory=ReviewConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)

    def effective_mode(self, on_default_branch: bool) -> RepairMode:
        """How a repair is delivered: the configured mode, else suggestions on pull requests and
        a fix pull request on the default branch (nobody pushes to it directly)."""
        if self.repair.mode is not None:
            return self.repair.mode
        return "pull_request" if on_default_branch else "suggest"

    def branch_allowed(self, branch: str) -> bool:
        """Whether the app may repair `branch` (`refs/heads/` is optional). Patterns are
        case-sensitive globs where `*` also matches `/`; exclusions win."""
        name = branch.removeprefix("refs/heads/")
        if not name:
            return False
        if any(fnmatchcase(name, pattern) for pattern in self.repair.exclude_branches):
            return False
        return any(fnmatchcase(name, pattern) for pattern in self.repair.branches)

    def setup_network(self, operator_allows: bool) -> bool:
        """Network for the setup phase only; the test phase never has network."""
        return self.sandbox.network and operator_allows


_SECTIONS: dict[str, type[BaseModel]] = {
    "repair": RepairConfig,
    "sandbox": SandboxConfig,
    "paths": PathsConfig,
    "review": ReviewConfig,
    "model": ModelConfig,
}


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys instead of silently keeping the last one."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False):
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if not isinstance(key, (str, int, float, bool)):
            continue
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping
)


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    if len(loc) == 1:
        return list(RepoConfig.model_fields)
    section = _SECTIONS.get(str(loc[0]))
    return list(section.model_fields) if section else []


def _message(error: dict[str, Any]) -> str:
    loc = tuple(error.get("loc", ()))
    where = _loc(loc)
    if error.get("type") == "extra_forbidden":
        allowed = ", ".join(_allowed_keys(loc))
        if len(loc) == 2 and loc[0] == "model":
            key = str(loc[1]).lower()
            if any(hint in key for hint in _OPERATOR_ONLY_HINTS):
                return (
                    f"{where}: not allowed here; the model endpoint, credentials and model name "
                    f"are set by the operator (allowed: {allowed})"
                )
        return f"{where}: unknown key (allowed: {allowed})"
    msg = str(error.get("msg", "invalid value"))
    msg = msg.removeprefix("Value error, ")
    return f"{where}: {msg}"


def load_repo_config(text: str | None) -> tuple[RepoConfig, str | None]:
    """Parse `.github/qwen.yml` text (None when the file is missing).

    Returns the config and None, or the defaults and a message naming what is wrong,
    e.g. ``"repair.candidates: Input should be less than or equal to 8"``.
    """
    if text is None or not text.strip():
        return RepoConfig(), None
    if len(text) > MAX_CONFIG_CHARS:
        return RepoConfig(), f"{CONFIG_PATH} is larger than {MAX_CONFIG_CHARS} characters"
    try:
        data = bounded_yaml.load(text, _UniqueKeyLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = exc.problem or exc.context or "invalid YAML"
        return RepoConfig(), f"{CONFIG_PATH} is not valid YAML: {where}{problem}"
    except yaml.YAMLError as exc:
        return RepoConfig(), f"{CONFIG_PATH} is not valid YAML: {exc}"
    if data is None:
        return RepoConfig(), None
    if not isinstance(data, dict):
        return RepoConfig(), (
            f"{CONFIG_PATH} must be a mapping with the keys "
            f"{', '.join(RepoConfig.model_fields)}, not a {type(data).__name__}"
        )
    bad_keys = [k for k in data if not isinstance(k, str)]
    if bad_keys:
        return RepoConfig(), f"{bad_keys[0]!r}: keys must be strings"
    try:
        return RepoConfig.model_validate(data), None
    except ValidationError as exc:
        return RepoConfig(), "; ".join(_message(e) for e in exc.errors())


# ---------------------------------------------------------------------------------------------
# `/qwen help`


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, list):
        return ", ".join(_cell(v) for v in value) if value else "(none)"
    text = str(value).strip().replace("\r", "")
    text = "; ".join(line.strip() for line in text.split("\n") if line.strip())
    if len(text) > 120:
        text = text[:117] + "..."
    text = text.replace("|", "\\|").replace("`", "'")
    return f"`{text}`"


_DEFAULT_TEXT = {
    "repair.mode": "suggest on pull requests, pull_request on the default branch",
    "repair.command": "the failing step's command",
    "repair.regression_command": "the failing job's test command",
    "repair.setup": "none",
    "sandbox.image": "the operator's default image",
    "model.temperature": "operator default",
    "model.max_steps": "operator default",
    "model.max_tokens": "operator default",
}


def describe(config: RepoConfig) -> str:
    """A markdown table of the effective values, for `/qwen help`."""
    defaults = RepoConfig()
    rows = ["| key | value | source |", "| --- | --- | --- |"]
    for section_name in RepoConfig.model_fields:
        section = getattr(config, section_name)
        default_section = getattr(defaults, section_name)
        for field in type(section).model_fields:
            key = f"{section_name}.{field}"
            value = getattr(section, field)
            is_default = value == getattr(default_section, field)
            if value is None and key in _DEFAULT_TEXT:
                shown = _DEFAULT_TEXT[key]
            else:
                shown = _cell(value)
            if key == "sandbox.network" and value:
                shown += " (setup phase only, if the operator allows it)"
            rows.append(f"| `{key}` | {shown} | {'default' if is_default else CONFIG_PATH} |")
    return "\n".join(rows) + "\n"
