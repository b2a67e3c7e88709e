"""The values a repair passes between its stages: what to repair (RepairTask), what a stage
proposed (Candidate), what validation said of it (Verdict) and what the repair ends with (RepairResult)."""

from __future__ import annotations

from dataclasses import dataclass, field

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
    ignore_paths: tuple[str, ...] = ()
    temperature: float = 0.0
    max_steps: int = 30
    max_tokens: int | None = None  # per model reply
    max_seconds: float = 900.0  # per candidate, wall time
    require_failure: bool = True  # red build: the command must fail first; `/qwen fix <text>`: it may pass
    setup_network: bool = False  # network for the setup phase only (repo asks and operator allows)
    setup_products: frozenset[str] = frozenset()  # set by repair(): files setup made, never patched


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
                "summary": self.summary}

    def trajectory_records(self) -> list[dict]:
        return [{"candidate": self.index, **step} for step in self.trajectory]

    def usage_dict(self) -> dict:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "model_calls": len(self.trajectory)}


@dataclass
class RepairResult:
    status: str  # fixed | already_passing | no_fix | cancelled
    reproduction: ExecResult | None
    chosen: Candidate | None = None  # always verified
    candidates: list[Candidate] = field(default_factory=list)
    fixer_used: str | None = None
    reason: str = ""
    timings: dict = field(default_factory=dict)
