"""`qwenfix bench` end to end: generated tasks, real Docker sandboxes, the real openai client against
the scripted model; SWE-bench's format on a local clone; an interrupted run resumed."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rich.console import Console

from tests.support.db import settings_env, wait_for
from tests.support.docker import SANDBOX_IMAGE
from tests.support.fake_openai import call, finish
from workers.evaluation.example import make_example
from workers.evaluation.run import EXIT_DONE, EXIT_INTERRUPTED, BenchOptions, run_bench
from workers.evaluation.summary import wilson
from workers.evaluation.tasks import load_tasks

pytestmark = pytest.mark.docker

API_KEY = "sk-bench-model-key-0123456789abcdef"
ROOT = Path(__file__).resolve().parents[3]
PRICES = {"qwen3-coder-test": {"input": 1.0, "cached_input": 0.1, "output": 4.0}}


@pytest.fixture
def settings(make_settings, fake_model, docker_engine):
    return make_settings(llm_base_url=fake_model.base_url, llm_api_key=API_KEY, llm_model="qwen3-coder-test",
                         llm_timeout_s=20, llm_max_retries=0, sandbox_engine="docker", sandbox_image=SANDBOX_IMAGE,
                         sandbox_memory_mb=512, sandbox_command_timeout_s=60, llm_prices=PRICES)


def task_of(body: dict) -> str:
    return body["messages"][1]["content"]


def scripted(step: int, sleep: float = 0.0):
    """shop-tax is fixed (read, edit, run, finish); any other task gets a wrong edit."""
    def reply(body):
        time.sleep(sleep if "rate_for" not in task_of(body) else 0)
        if "rate_for" in task_of(body):
            script = [call("read_file", path="src/shop/pricing/tax.py"),
                      call("edit_file", path="src/shop/pricing/tax.py", old="RATES.get(region, 0.0)",
                           new="RATES.get(region.upper(), 0.0)"),
                      call("run", command="python -m pytest -q -p no:cacheprovider"),
                      finish("Region codes are upper case; look them up that way.")]
        else:
            script = [call("list_dir", path="."), call("create_file", path="NOTES.md", content="no idea\n"),
                      call("list_dir", path="."), finish("Could not find it.")]
        return script[min(step, len(script) - 1)]
    return reply


def bench(tasks, out, settings, **options) -> tuple[int, str]:
    text = io.StringIO()
    code = run_bench(tasks, out, settings, BenchOptions(model="qwen3-coder-test", **options),
                     Console(file=text, width=200))
    return code, text.getvalue()


def test_a_solved_task_counts_as_solved_and_an_unsolved_one_does_not(tmp_path, settings, fake_model):
    tasks = load_tasks(make_example(tmp_path / "example"))
    fake_model.script([scripted(i) for i in range(6)])
    out = tmp_path / "out"
    code, printed = bench(tasks, out, settings, limit=2, concurrency=2)
    assert code == EXIT_DONE, printed
    shop, textkit = (json.loads((out / "results" / f"{name}.json").read_text()) for name in ("shop-tax", "textkit-mean"))
    assert shop["verified"] and "+    return RATES.get(region.upper(), 0.0)" in shop["patch"]
    assert not textkit["verified"] and "still fails" in json.dumps(textkit["candidates"])
    assert shop["model_calls"] == 4 and shop["tokens"]["prompt"] > shop["tokens"]["cached"] > 0
    cost = (shop["tokens"]["prompt"] - shop["tokens"]["cached"]) * 1e-6 + shop["tokens"]["cached"] * 1e-7 \
        + shop["tokens"]["completion"] * 4e-6
    assert shop["cost"] == pytest.approx(cost, rel=1e-3)
    assert set(shop["time_s"]) == {"total", "setup", "reproduction", "model", "tests", "other"}
    assert shop["time_s"]["reproduction"] > 0 and shop["time_s"]["tests"] > 0 and shop["time_s"]["model"] > 0

    summary = json.loads((out / "summary.json").read_text())
    assert (summary["tasks"], summary["solved"], summary["pass_rate"]) == (2, 1, 0.5)
    assert summary["ci95"] == [round(x, 4) for x in wilson(1, 2)] == [0.0945, 0.9055]
    assert summary["tokens_per_solved"]["prompt"] == shop["tokens"]["prompt"] + textkit["tokens"]["prompt"]
    assert "| 2 | 1 | 50.0% | 9.4%–90.5% |" in (out / "summary.md").read_text()
    predictions = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert {p["instance_id"]: bool(p["model_patch"]) for p in predictions} == {"shop-tax": True, "textkit-mean": False}
    assert all(p["model_name_or_path"] == "qwen3-coder-test" for p in predictions)
    assert (out / "chart.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "1/2 verified" in printed and API_KEY not in printed
    # a finished run is not silently overwritten
    code, printed = bench(tasks, out, settings, limit=2)
    assert code == 2 and "--resume" in printed


def test_swe_bench_instances_run_from_a_local_clone_with_their_test_patch(tmp_path, settings, fake_model):
    clone = tmp_path / "repos" / "octo__calc"
    clone.mkdir(parents=True)
    (clone / "calc.py").write_text("def add(a, b):\n    return a - b\n\n\ndef sub(a, b):\n    return a - b\n")
    (clone / "tests").mkdir()
    (clone / "tests" / "test_sub.py").write_text("from calc import sub\n\n\ndef test_sub():\n    assert sub(5, 3) == 2\n")
    git = ["git", "-C", str(clone), "-c", "user.name=t", "-c", "user.email=t@e"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "calc"]):
        subprocess.run(git + args, check=True)
    base = subprocess.run(git + ["rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    test_patch = ("diff --git a/tests/test_add.py b/tests/test_add.py\nnew file mode 100644\n--- /dev/null\n"
                  "+++ b/tests/test_add.py\n@@ -0,0 +1,5 @@\n+from calc import add\n+\n+\n+def test_add():\n"
                  "+    assert add(2, 3) == 5\n")
    instance = {"instance_id": "octo__calc-1", "repo": "octo/calc", "base_commit": base,
                "problem_statement": "add() returns the difference of its arguments", "test_patch": test_patch,
                "patch": "", "FAIL_TO_PASS": json.dumps(["tests/test_add.py::test_add"]),
                "PASS_TO_PASS": json.dumps(["tests/test_sub.py::test_sub"]), "version": "1.0"}
    (tmp_path / "swe.jsonl").write_text(json.dumps(instance) + "\n")
    fake_model.script([call("edit_file", path="calc.py", old="def add(a, b):\n    return a - b",
                            new="def add(a, b):\n    return a + b"), finish("add() adds now.")])
    tasks = load_tasks(tmp_path / "swe.jsonl", tmp_path / "repos")
    assert tasks[0].command == "python -m pytest -rA -p no:cacheprovider tests/test_add.py::test_add"
    out = tmp_path / "out"
    code, printed = bench(tasks, out, settings)
    assert code == EXIT_DONE, printed
    [prediction] = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert prediction["instance_id"] == "octo__calc-1"
    assert "+    return a + b" in prediction["model_patch"] and "test_add.py" not in prediction["model_patch"]
    first = fake_model.chat_requests()[0].messages[1]["content"]
    assert '<untrusted-data source="pull request comment">' in first and "returns the difference" in first
    assert "tests/test_add.py::test_add" in first  # the test patch's failing test, reproduced


def test_context_only_measures_recall_without_a_model(tmp_path, settings, fake_model):
    tasks = load_tasks(make_example(tmp_path / "example"))
    out = tmp_path / "out"
    code, printed = bench(tasks, out, settings, context_only=True, concurrency=2)
    assert code == EXIT_DONE, printed
    assert fake_model.requests == []
    rows = {row["prompt"]: row for row in json.loads((out / "context.json").read_text())}
    before, code_only, with_map = rows.values()
    assert with_map["tasks"] == 7 and with_map["complete"] == 7
    assert before["complete"] < code_only["complete"] < with_map["complete"]
    shop = json.loads((out / "results" / "shop-tax.json").read_text())
    assert shop["reproduced"] and shop["context"]["+ code involved"]["complete"]
    assert not shop["context"]["failure + tree (before)"]["complete"]
    assert "| + code involved + map | 7/7 (100%)" in (out / "context.md").read_text()


def test_an_interrupted_run_resumes_without_redoing_finished_tasks(tmp_path, settings, fake_model):
    tasks_file = make_example(tmp_path / "example")
    # the unsolved task's model calls are slow, so the interruption comes while it runs, however
    # slow the machine is at finishing the first task
    fake_model.script([scripted(i, sleep=3.0) for i in range(6)])
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if not k.startswith("QWENFIX_")}
    env.update(settings_env(settings), PYTHONPATH=str(ROOT))
    argv = [sys.executable, "-m", "app.cli", "bench", str(tasks_file), "--out", str(out), "--limit", "2"]
    # Ctrl-C as at a terminal: a suite started in the background inherits SIGINT ignored
    first = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        wait_for(lambda: (out / "results" / "shop-tax.json").exists(), timeout=180, interval=0.1,
                 message="the first task's result")
        first.send_signal(signal.SIGINT)
        output, _ = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == EXIT_INTERRUPTED, output
    assert "--resume" in output and not (out / "results" / "textkit-mean.json").exists()
    shop_requests = sum("rate_for" in task_of(r.body) for r in fake_model.chat_requests())
    assert shop_requests == 4
    fake_model.script([scripted(i) for i in range(6)])
    second = subprocess.run(argv + ["--resume"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert second.returncode == EXIT_DONE, second.stdout + second.stderr
    assert "1 of 2 tasks already done" in second.stdout
    assert sum("rate_for" in task_of(r.body) for r in fake_model.chat_requests()) == shop_requests  # not redone
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["tasks"], summary["solved"]) == (2, 1)
