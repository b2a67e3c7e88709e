"""What the agent is asked to do: the task prompt, with everything from the pull request, the logs
and the repository fenced and labelled as untrusted data."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from workers.agent.tools import SKIP_DIRS, shorten

PROMPTS = Path(__file__).parent / "prompts"
MAX_FAILURE = 12_000  # characters of the failure report, head + tail
MAX_CONTEXT_FILE = 4_000  # characters of each of README, AGENTS.md, …
_FENCE = re.compile(r"<(/?)untrusted-data", re.I)


@dataclass(frozen=True)
class AgentTask:
    goal: str  # what to achieve, in the app's own words (trusted)
    command: str  # the command that must pass (trusted: it comes from config or the failure report)
    working_directory: str = "."
    failure_text: str | None = None  # CI log excerpt, or the reproduction's output (untrusted)
    instructions: str | None = None  # a maintainer's `/qwen fix …` text (untrusted)
    context: dict[str, str] = field(default_factory=dict)  # README head, AGENTS.md, … from the BASE commit
    tree: str = ""  # compact file tree
    failure_source: str = "CI failure"  # what failure_text is, for its fence
    evidence: list[tuple[str, str]] = field(default_factory=list)  # (heading, numbered code) the failure involves
    repo_map: str = ""  # source files ranked by relevance, with their top-level symbols

    def prompt(self) -> str:
        sections = {
            "failure": "# Failure\n\n" + fenced(self.failure_source, shorten(self.failure_text, MAX_FAILURE))
            if self.failure_text else "",
            "evidence": "# Code involved in the failure\n\nCut from the repository, with the line numbers of "
                        "the files:\n\n" + "\n\n".join(f"## {heading}\n\n{fenced(heading.split(' — ')[0], code)}"
                                                      for heading, code in self.evidence)
            if self.evidence else "",
            "repo_map": "Source files, those most related to the failure first, with their definitions:\n\n"
                        + fenced("repository map", self.repo_map) if self.repo_map else "",
            "instructions": "# Requested change\n\n" + fenced("pull request comment", self.instructions)
            if self.instructions else "",
            "context": "\n\n".join(f"## {name}\n\n{fenced(name, text[:MAX_CONTEXT_FILE])}"
                                   for name, text in self.context.items()),
        }
        text = (PROMPTS / "task.md").read_text().format(
            goal=self.goal, command=self.command, working_directory=self.working_directory,
            tree=fenced("file tree", self.tree or "(not available)"), **sections)
        return re.sub(r"\n{3,}", "\n\n", text).strip()


def fenced(label: str, text: str) -> str:
    """Text from the repository, logs or PR, marked as data. It cannot open or close the marker."""
    safe = _FENCE.sub(r"<\1untrusted_data", text)
    return f'<untrusted-data source="{label}">\n{safe}\n</untrusted-data>'


def file_tree(root: Path, depth: int = 3, limit: int = 300) -> str:
    """The repository's paths up to `depth` levels, directories ending in '/', at most `limit` lines.
    Hidden entries (but .github), caches and dependency folders are left out and never walked."""
    paths: list[str] = []
    for current, dirs, files in os.walk(root):
        rel = Path(current).relative_to(root)
        level = len(rel.parts)
        shown = sorted(d for d in dirs if d not in SKIP_DIRS and (not d.startswith(".") or d == ".github"))
        paths.extend((rel / d).as_posix() + "/" for d in shown)
        paths.extend((rel / name).as_posix() for name in sorted(files) if not name.startswith("."))
        dirs[:] = shown if level + 1 < depth else []
        if len(paths) > limit:
            break
    paths.sort()
    return "\n".join(paths[:limit] + (["…"] if len(paths) > limit else []))
