"""The values a repair passes between its stages: what to repair (RepairTask), what a stage
proposed (Candidate), what validation said of it (Verdict) and what the repair ends with (RepairResult)."""

from __future__ import annotations

from dataclasses import dataclass, field

from workers.engine.environment import JobEnvironment, as_shell
from workers.sandbox import ExecResult


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reasons: list[str] = field(default_factory=list)
    after: ExecResult | None = None  # the command, run with the patch (the evidence of a fix)
    regression: ExecResult | None = None  # the regression command, run with the patch


@dataclass(frozen=True)
class RepairTask:
    command: str
    regression_command: str | None = None
    setup: str | None = None
    instructions: str | None = None
    failure_text: str | None = None
    working_directory: str = "."
    candidates: int = 2
    parallel: int = 2  # candidates running at once
    allow_ci_changes: bool = False
    allow_test_deletion: bool = False
    allow_test_changes: bool = False  # skip markers, test runner configuration, fewer tests run
    ignore_paths: tuple[str, ...] = ()
    temperature: float = 0.0
    max_steps: int = 30
    max_tokens: int | None = None  # per model reply
    max_seconds: float = 900.0  # per candidate, wall time
    require_failure: bool = True  # red build: the command must fail first; `/qwen fix <text>`: it may pass
    setup_network: bool = False  # network for the setup phase only (repo asks and operator allows)
    setup_products: frozenset[str] = frozenset()  # set by repair(): files setup made, never patched
    semgrep_rules: str | None = None  # the operator's semgrep rules (a local directory), for the security gate
    evidence_tokens: int = 6000  # code the failure involves, in the first prompt (0: none)
    map_tokens: int = 1500  # the repository map in the first prompt (0: none)
    shell: str | None = None  # the failing step's `shell:` (None: the runner's default, bash -e)
    environment: JobEnvironment = field(default_factory=JobEnvironment)  # env, index, package cache
    setup_source: str = "repair.setup"  # or "the workflow's steps before the failing step"
    expected_failure: str | None = None  # the CI log's error excerpt: reproduced means the same failure
    services: tuple[str, ...] = ()  # the workflow's service containers (not started here)

    def runnable(self, command: str) -> str:
        """How the sandbox runs one of the task's commands: the failing command in its step's
        shell, the others in the runner's default shell."""
        return as_shell(command, self.shell if command == self.command else None)


CONTEXT_FILES = ("README.md", "AGENTS.md", "QWEN.md", "CONTRIBUTING.md")  # guidance read from the base


@dataclass(frozen=True)
class RepoContext:
    files: dict[str, str] = field(default_factory=dict)  # README head, AGENTS.md, … read from the BASE commit


@dataclass
class Candidate:
    index: int
    source: str  # "agent" or "fixer:<name>"
    patch: str = ""
    summary: str = ""
    outcome: str = ""  # the agent's outcome, "fixer", or "error"
    verdict: Verdict | None = None
    trajectory: list[dict] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0  # of prompt_tokens, served from the endpoint's prefix cache
    validation_s: float = 0.0  # time spent validating the patch (tests in a clean sandbox)
    security_notes: list[str] = field(default_factory=list)  # findings it adds below high severity

    @property
    def verified(self) -> bool:
        return bool(self.verdict and self.verdict.ok)

    @property
    def diff_lines(self) -> int:
        return sum(1 for line in self.patch.splitlines()
                   if line[:1] in "+-" and not line.startswith(("+++", "---")))

    def describe(self) -> dict:
        return {"index": self.index, "source": self.source, "outcome": self.outcome, "verified": self.verified,
                "reasons": self.verdict.reasons if self.verdict else [], "diff_lines": self.diff_lines,
                "summary": self.summary, "security": list(self.security_notes)}

    def trajectory_records(self) -> list[dict]:
        return [{"candidate": self.index, **step} for step in self.trajectory]

    def usage_dict(self) -> dict:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "cached_tokens": self.cached_tokens, "model_calls": len(self.trajectory)}


@dataclass
class RepairResult:
    status: str  # fixed | already_passing | fails_on_base | no_fix | cancelled | setup_failed | not_reproduced
    reproduction: ExecResult | None
    chosen: Candidate | None = None  # always verified
    candidates: list[Candidate] = field(default_factory=list)
    fixer_used: str | None = None
    reason: str = ""
    timings: dict = field(default_factory=dict)
    base_reproduction: ExecResult | None = None  # the command's run on the base, when it was asked for
    reproduced: str | None = None  # exact | partial | no, compared with the CI log
    environment_problem: str | None = None  # what the sandbox lacks, and the setting that provides it
    setup_output: str | None = None  # the setup's output when it failed
    setup_cached: bool = False  # the setup was restored from the setup cache
    notes: list[str] = field(default_factory=list)  # how CI was reproduced: image, versions, what was left out
