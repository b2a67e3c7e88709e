"""Benchmark: prompt size per step with the observation window vs the full history.

    .venv/bin/python bench/agent_context.py [--steps 30] [--window 6]

The same scripted 30-step trajectory (list_dir, read_file of ~200-line files, search, edit_file,
…, finish) runs twice through the real agent loop and the real openai client against the scripted
OpenAI-compatible server on 127.0.0.1: once with the default observation window, once with a
window as long as the run (full history). Prints the prompt tokens sent per step (as the server
counts them: JSON characters / 4), the ratio windowed / full (target <= 0.5x), and the loop's own
overhead per step excluding model latency (building and redacting messages, parsing, tools).
Figures only; nothing asserts on wall-clock time.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.fake_openai import FakeModel, call, finish, make_app  # noqa: E402
from tests.support.git_http import ServerThread  # noqa: E402
from workers.agent.budget import Budget  # noqa: E402
from workers.agent.llm import ModelClient  # noqa: E402
from workers.agent.loop import run_agent  # noqa: E402
from workers.agent.task import AgentTask, file_tree  # noqa: E402
from workers.agent.tools import Toolbox  # noqa: E402

SECRETS = ["sk-bench-key-0123456789", "ghs_bench-installation-token-000"]


def make_repo(root: Path, modules: int = 8) -> None:
    for i in range(modules):
        body = "".join(f"def f{i}_{n}(x):\n    return x + {n}  # helper {n} of module {i}\n\n"
                       for n in range(70))
        (root / "pkg" / f"mod{i}.py").parent.mkdir(parents=True, exist_ok=True)
        (root / "pkg" / f"mod{i}.py").write_text(body)
    (root / "README.md").write_text("# bench\n\n" + "Some documentation.\n" * 40)


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


def run(model: FakeModel, steps: int, window: int) -> tuple[list[int], float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_repo(root)
        model.script(script(steps))
        task = AgentTask(goal="Make the failing command pass.", command="pytest -q",
                         failure_text="E   assert 1 == 2\n" * 50, context={"README.md": (root / "README.md").read_text()},
                         tree=file_tree(root))
        client = ModelClient(model.base_url, SECRETS[0], "bench", timeout_s=30, max_retries=0)
        started = time.perf_counter()
        result = run_agent(task, Toolbox(root, None), client, Budget(max_steps=steps, observation_window=window),
                           secrets=SECRETS)
        wall = time.perf_counter() - started
    assert result.outcome == "finished", result.outcome
    latency = sum(s.latency_s for s in result.steps)
    tools = sum(s.tool_s for s in result.steps)
    return [s.prompt_tokens for s in result.steps], (wall - latency) / len(result.steps), tools / len(result.steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--window", type=int, default=Budget().observation_window)
    args = parser.parse_args()
    model = FakeModel()
    server = ServerThread(make_app(model)).start()
    model.url = server.url
    try:
        windowed, overhead_w, tools_w = run(model, args.steps, args.window)
        full, overhead_f, tools_f = run(model, args.steps, args.steps + 1)
    finally:
        server.stop()
    print(f"prompt tokens per step ({args.steps}-step scripted trajectory, window = {args.window} steps)")
    print(f"{'step':>5} {'window':>8} {'full':>8} {'ratio':>6}")
    for i, (w, f) in enumerate(zip(windowed, full, strict=True), 1):
        if i in (1, 2) or i % 5 == 0 or i == len(full):
            print(f"{i:>5} {w:>8} {f:>8} {w / f:>6.2f}")
    print(f"total prompt tokens: window {sum(windowed)}, full {sum(full)}, "
          f"ratio {sum(windowed) / sum(full):.2f}x (target <= 0.5x)")
    print(f"last step: window {windowed[-1]}, full {full[-1]}, ratio {windowed[-1] / full[-1]:.2f}x")
    print(f"loop overhead per step, excluding model latency: {overhead_w * 1000:.2f} ms with the window "
          f"({tools_w * 1000:.2f} ms of it in tools), {overhead_f * 1000:.2f} ms with full history "
          f"({tools_f * 1000:.2f} ms in tools)")


if __name__ == "__main__":
    main()
