"""Benchmark: prompt size and prefix reuse per step, compacted window vs full history vs today's window.

    .venv/bin/python bench/agent_context.py [--steps 30] [--window 2] [--block 6]

The same scripted 30-step trajectory (list_dir, read_file of ~200-line files, search, edit_file,
…, finish) runs three times through the real agent loop and the real openai client against the
scripted OpenAI-compatible server on 127.0.0.1:
- compacted: the default window (older steps shortened in blocks, edits listed last);
- full history: a window as long as the run;
- today: the window before compaction in blocks (the last 5 steps in full, one more step shortened
  at every request, the edit list inside the task message), emulated by moving the edit list back
  into the task message before each request, with the first prompt of before (no code, no map).
The first prompt is built as a repair builds it (a pytest failure in the bench repository, the code
involved and the repository map); today's and its full history without them.
Prints per step the prompt tokens (as the server counts them: characters / 4 of the tools and
messages rendered in order) and the prefix reuse (characters each request shares with the start of
the previous one ÷ its own characters; target: average >= 0.85), total prompt tokens vs full history
(target <= 0.5x), the share of prompt tokens the server reported as cached, and the loop's own
overhead per step excluding model latency. Figures only; nothing asserts on wall-clock time.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.fake_openai import FakeModel, call, finish, make_app, rendered, shared_prefix  # noqa: E402
from tests.support.git_http import ServerThread  # noqa: E402
from workers.agent.budget import Budget  # noqa: E402
from workers.agent.evidence import gather, render  # noqa: E402
from workers.agent.llm import ModelClient  # noqa: E402
from workers.agent.loop import run_agent  # noqa: E402
from workers.agent.repo_map import RepoIndex, render_map  # noqa: E402
from workers.agent.task import AgentTask, file_tree  # noqa: E402
from workers.agent.tools import Toolbox  # noqa: E402
from workers.engine.task import RepairTask  # noqa: E402
from workers.workspace.snapshot import Snapshot  # noqa: E402

SECRETS = ["sk-bench-key-0123456789", "ghs_bench-installation-token-000"]


FAILURE = """\
___________________________________ test_f3 ____________________________________

    def test_f3():
>       assert f3_10(1) == 12
E       assert 11 == 12
E        +  where 11 = f3_10(1)

tests/test_mod3.py:5: AssertionError
=========================== short test summary info ============================
FAILED tests/test_mod3.py::test_f3 - assert 11 == 12
1 failed in 0.03s
"""


def make_repo(root: Path, modules: int = 8) -> str:
    """The repository, committed (evidence is read from git objects); returns the commit."""
    for i in range(modules):
        body = "".join(f"def f{i}_{n}(x):\n    return x + {n}  # helper {n} of module {i}\n\n"
                       for n in range(70))
        (root / "pkg" / f"mod{i}.py").parent.mkdir(parents=True, exist_ok=True)
        (root / "pkg" / f"mod{i}.py").write_text(body)
    (root / "tests").mkdir()
    (root / "tests" / "test_mod3.py").write_text("from pkg.mod3 import f3_10\n\n\ndef test_f3():\n"
                                                 "    assert f3_10(1) == 12\n")
    (root / "README.md").write_text("# bench\n\n" + "Some documentation.\n" * 40)
    git = ["git", "-C", str(root), "-c", "user.name=b", "-c", "user.email=b@e"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "bench"]):
        subprocess.run(git + args, check=True)
    return subprocess.run(git + ["rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()


def first_task(root: Path, sha: str, evidence: bool) -> AgentTask:
    """The first prompt as a repair builds it now (the code involved and the repository map), or as
    it was before (the failure and the file tree only)."""
    snippets, repo_map = [], ""
    if evidence:
        defaults = RepairTask("")
        index = RepoIndex.build(Snapshot.at(root, sha))
        chosen = gather(index, FAILURE, defaults.evidence_tokens)
        snippets = render(index, chosen)
        repo_map = render_map(index, index.rank([c.path for c in chosen], FAILURE), defaults.map_tokens)
    return AgentTask(goal="Make the failing command pass.", command="pytest -q", failure_text=FAILURE,
                     context={"README.md": (root / "README.md").read_text()}, tree=file_tree(root),
                     evidence=snippets, repo_map=repo_map)


def script(steps: int) -> list[dict]:
    replies: list[dict] = []
    i = 0
    while len(replies) < steps - 1:
        module = f"pkg/mod{i % 8}.py"
        replies += [call("list_dir", path="pkg"), call("read_file", path=module),
                    call("search", pattern=f"return x \\+ {i % 70}\\b"),
                    call("read_file", path=module, start_line=100),
                    call("edit_file", path=module, old=f"return x + {i}  #", new=f"return x - {i}  #")]
        i += 1
    return replies[: steps - 1] + [finish("bench done")]


class EditsInTask(ModelClient):
    """Today's request layout: the edit list inside the task message, not after the last step."""

    def complete(self, messages, *args, **kwargs):
        if messages[-1]["role"] == "user" and messages[-1]["content"].startswith("# Edits made so far"):
            *messages, note = messages
            messages[1] = {**messages[1], "content": messages[1]["content"] + "\n\n" + note["content"]}
        return super().complete(messages, *args, **kwargs)


@dataclass
class Run:
    prompt_tokens: list[int]
    cached_tokens: list[int]
    reuse: list[float]  # per request after the first: shared prefix with the previous ÷ its length
    overhead_s: float
    tools_s: float

    @property
    def mean_reuse(self) -> float:
        return sum(self.reuse) / len(self.reuse)


def run(model: FakeModel, steps: int, budget: Budget, client_type: type[ModelClient] = ModelClient,
        evidence: bool = True) -> Run:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        sha = make_repo(root)
        model.script(script(steps))
        model.requests.clear()
        model.seen_prompts.clear()
        task = first_task(root, sha, evidence)
        client = client_type(model.base_url, SECRETS[0], "bench", timeout_s=30, max_retries=0)
        started = time.perf_counter()
        result = run_agent(task, Toolbox(root, None), client, budget, secrets=SECRETS)
        wall = time.perf_counter() - started
    assert result.outcome == "finished", result.outcome
    latency = sum(s.latency_s for s in result.steps)
    tools = sum(s.tool_s for s in result.steps)
    prompts = [rendered(r.body) for r in model.chat_requests()]
    reuse = [shared_prefix(b, a) / len(b) for a, b in zip(prompts, prompts[1:], strict=False)]
    return Run([s.prompt_tokens for s in result.steps], [s.cached_tokens for s in result.steps], reuse,
               (wall - latency) / len(result.steps), tools / len(result.steps))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--window", type=int, default=Budget().observation_window)
    parser.add_argument("--block", type=int, default=Budget().compaction_block)
    args = parser.parse_args()
    model = FakeModel()
    server = ServerThread(make_app(model)).start()
    model.url = server.url
    try:
        new = run(model, args.steps, Budget(max_steps=args.steps, observation_window=args.window,
                                            compaction_block=args.block))
        full = run(model, args.steps, Budget(max_steps=args.steps, observation_window=args.steps + 1,
                                             compaction_block=1))
        today = run(model, args.steps, Budget(max_steps=args.steps, observation_window=5, compaction_block=1),
                    EditsInTask, evidence=False)
        today_full = run(model, args.steps, Budget(max_steps=args.steps, observation_window=args.steps + 1,
                                                   compaction_block=1), EditsInTask, evidence=False)
    finally:
        server.stop()
    print(f"{args.steps}-step scripted trajectory; compacted: at least {args.window} steps in full, older ones "
          f"shortened {args.block} at a time; today: 5 steps in full, one more shortened per step")
    print(f"{'step':>5} {'compacted':>10} {'reuse':>6} {'today':>8} {'reuse':>6} {'full':>8} {'reuse':>6}")
    for i, (c, t, f) in enumerate(zip(new.prompt_tokens, today.prompt_tokens, full.prompt_tokens, strict=True), 1):
        if i in (1, 2) or i % 3 == 0 or i == len(full.prompt_tokens):
            r = [f"{x.reuse[i - 2]:>6.2f}" if i > 1 else f"{'-':>6}" for x in (new, today, full)]
            print(f"{i:>5} {c:>10} {r[0]} {t:>8} {r[1]} {f:>8} {r[2]}")
    for name, x, baseline in (("compacted", new, full), ("today", today, today_full), ("full history", full, full)):
        total = sum(x.prompt_tokens)
        print(f"{name:>12}: prefix reuse {x.mean_reuse:.2f} (target >= 0.85); prompt tokens {total} = "
              f"{total / sum(baseline.prompt_tokens):.2f}x its full history (target <= 0.5x); reported cached "
              f"{sum(x.cached_tokens) / total:.2f} of prompt tokens, uncached {total - sum(x.cached_tokens)}; "
              f"first step {x.prompt_tokens[0]}, last step {x.prompt_tokens[-1]} tokens")
    print(f"loop overhead per step, excluding model latency: {new.overhead_s * 1000:.2f} ms compacted "
          f"({new.tools_s * 1000:.2f} ms of it in tools), {today.overhead_s * 1000:.2f} ms today, "
          f"{full.overhead_s * 1000:.2f} ms with full history")


if __name__ == "__main__":
    main()
