"""A compact map of the repository for the first prompt: its source files with their top-level
symbols, the files most related to the failure first, trimmed to a token budget.

The approach of aider's repository map, written here from scratch: files are nodes; a file that
uses a name another file defines points to it; a personalized PageRank, seeded with the files the
failure names and the files defining names the failure mentions, ranks them. The index built for it
(every file's definitions) also serves `workers/agent/evidence.py` to find the code a failing test calls.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from workers.agent.symbols import IDENTIFIER, SOURCE_SUFFIXES, Symbol, suffix, symbols
from workers.workspace.snapshot import Snapshot

SKIP_PARTS = {"node_modules", "vendor", "third_party", "dist", "build", ".git", "__pycache__", ".venv", "venv",
              "site-packages", ".tox", "target", "migrations"}
MAX_FILES = 4000
MAX_DEFINERS = 4  # a name defined in more files than this says nothing about which one is meant
CHARS_PER_TOKEN = 4


@dataclass
class RepoIndex:
    """Source files, their definitions, and which files define each name."""

    texts: dict[str, str] = field(default_factory=dict)
    symbols: dict[str, list[Symbol]] = field(default_factory=dict)
    definers: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))

    @classmethod
    def build(cls, snapshot: Snapshot) -> RepoIndex:
        paths = [p for p in snapshot.paths() if suffix(p) in SOURCE_SUFFIXES and "\n" not in p
                 and not SKIP_PARTS & set(p.split("/")[:-1])]
        paths.sort(key=lambda p: (p.count("/"), p))  # shallow files first when there are too many
        index = cls()
        index.texts = snapshot.read_many(paths[:MAX_FILES])
        for path, text in index.texts.items():
            found = symbols(path, text)
            index.symbols[path] = found
            for symbol in found:
                index.definers[symbol.name].add(path)
        return index

    def resolve(self, path: str) -> str | None:
        """The repository file a printed path means: itself, or the one file ending with it (a path
        printed relative to a subdirectory)."""
        if path in self.texts:
            return path
        matches = [p for p in self.texts if p.endswith("/" + path)]
        return matches[0] if len(matches) == 1 else None

    def rank(self, focus: list[str], failure_text: str, iterations: int = 20) -> list[str]:
        """Files by relevance to the failure (personalized PageRank over name references)."""
        files = list(self.texts)
        if not files:
            return []
        edges: dict[str, dict[str, float]] = {}
        for path, text in self.texts.items():
            out: dict[str, float] = defaultdict(float)
            for name in set(IDENTIFIER.findall(text)):
                where = self.definers.get(name)
                if where and len(where) <= MAX_DEFINERS:
                    for target in where:
                        if target != path:
                            out[target] += 1.0 / len(where)
            edges[path] = out
        seed: dict[str, float] = defaultdict(float)
        for path in focus:
            if path in self.texts:
                seed[path] += 1.0
        for name in set(IDENTIFIER.findall(failure_text or "")):
            where = self.definers.get(name)
            if where and len(where) <= MAX_DEFINERS:
                for target in where:
                    seed[target] += 0.5 / len(where)
        total = sum(seed.values())
        personal = {p: seed.get(p, 0.0) / total for p in files} if total else {p: 1 / len(files) for p in files}
        score = dict(personal)
        for _ in range(iterations):
            nxt = {p: 0.15 * personal[p] for p in files}
            for path, out in edges.items():
                weight = sum(out.values())
                if weight:
                    share = 0.85 * score[path] / weight
                    for target, w in out.items():
                        nxt[target] += share * w
                else:  # a file that uses nothing hands its score back to the seeds
                    for p, v in personal.items():
                        if v:
                            nxt[p] += 0.85 * score[path] * v
            score = nxt
        first = [p for p in dict.fromkeys(focus) if p in self.texts]
        rest = sorted((p for p in files if p not in first), key=lambda p: (-score[p], p))
        return first + rest


def render_map(index: RepoIndex, ranked: list[str], budget_tokens: int) -> str:
    """`path` lines with their symbols indented under them, in rank order, within the budget."""
    budget = budget_tokens * CHARS_PER_TOKEN
    out: list[str] = []
    used = 0
    for path in ranked:
        block = _file_block(path, index.symbols.get(path, []))
        if used + len(block) + 1 > budget:
            if used + len(path) + 1 <= budget:  # no room for its symbols: the name alone still helps
                out.append(path)
                used += len(path) + 1
            continue
        out.append(block)
        used += len(block) + 1
    left = len(ranked) - len(out)
    return "\n".join(out) + (f"\n[… {left} more files not shown]" if left > 0 else "")


def _file_block(path: str, found: list[Symbol]) -> str:
    lines = [path]
    methods: dict[str, list[str]] = defaultdict(list)
    for symbol in found:
        if symbol.kind == "method" and symbol.parent:
            methods[symbol.parent].append(symbol.name)
    for symbol in found:
        if symbol.kind == "method" and symbol.parent:
            continue
        line = f"  {symbol.signature}"
        if symbol.kind == "class" and methods.get(symbol.name):
            shown = methods[symbol.name][:12]
            more = len(methods[symbol.name]) - len(shown)
            line += ": " + ", ".join(shown) + (f", … {more} more" if more > 0 else "")
        lines.append(line)
    return "\n".join(lines)
