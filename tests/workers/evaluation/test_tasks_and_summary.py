"""Task files, the Wilson interval, recall against a gold patch, and `qwenfix bench compare` (no sandbox)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.cli import main
from workers.evaluation.example import EXAMPLES, make_example
from workers.evaluation.recall import changed, recall
from workers.evaluation.summary import summarize, wilson
from workers.evaluation.tasks import TaskError, load_tasks, swe_bench_command


def test_wilson_interval_matches_the_textbook_values():
    assert wilson(0, 0) == (0.0, 0.0)
    low, high = wilson(8, 10)
    assert (round(low, 3), round(high, 3)) == (0.49, 0.943)
    low, high = wilson(0, 20)  # never below zero, unlike the normal approximation
    assert low == 0.0 and round(high, 3) == 0.161


def test_the_example_set_loads_with_gold_patches(tmp_path):
    tasks = load_tasks(make_example(tmp_path))
    assert [t.id for t in tasks] == [e.id for e in EXAMPLES]
    assert all(t.gold_patch.startswith("diff --git") and len(t.commit) == 40 for t in tasks)
    with pytest.raises(FileExistsError):
        make_example(tmp_path)  # never overwrites


@pytest.mark.parametrize("line, message", [
    ('{"id": "a", "repo": "nowhere", "commit": "HEAD", "command": "true"}', "not a git repository"),
    ('{"id": "a b", "repo": "repos/shop", "commit": "HEAD", "command": "true"}', "may only hold"),
    ('{"id": "a", "repo": "repos/shop", "commit": "nope", "command": "true"}', "is not a commit"),
    ('{"id": "a", "repo": "repos/shop", "commit": "HEAD"}', "missing field 'command'"),
    ('{"instance_id": "x__y-1", "repo": "x/y", "base_commit": "abc", "FAIL_TO_PASS": "[]"}', "need --repos"),
    ('[1, 2]', "not a JSON object"),
])
def test_bad_tasks_are_refused_naming_the_line(tmp_path, line, message):
    make_example(tmp_path)
    bad = tmp_path / "bad.jsonl"
    bad.write_text("# a comment\n" + line + "\n")
    with pytest.raises(TaskError, match=message) as error:
        load_tasks(bad)
    assert "line 2" in str(error.value) or "need --repos" in str(error.value)


def test_swe_bench_test_commands_follow_the_repository():
    assert swe_bench_command("django/django", ["test_x (auth_tests.test_views.LoginTest)"]) == (
        "./tests/runtests.py --verbosity 2 --parallel 1 auth_tests.test_views.LoginTest.test_x")
    assert swe_bench_command("astropy/astropy", ["a/test_b.py::test_c[x y]"]) == (
        "python -m pytest -rA -p no:cacheprovider 'a/test_b.py::test_c[x y]'")


def test_recall_needs_the_changed_functions_code_not_only_its_name():
    base = "def helper():\n    return 1\n\n\ndef total(items):\n    count = len(items)\n    return count - 1\n"
    gold = ("diff --git a/m.py b/m.py\n--- a/m.py\n+++ b/m.py\n@@ -5,3 +5,3 @@\n def total(items):\n"
            "     count = len(items)\n-    return count - 1\n+    return count\n")
    items = changed(gold, {"m.py": base}.get)
    assert [(c.path, c.function, c.lines) for c in items] == [("m.py", "total", ("def total(items):", "return count - 1"))]
    assert recall("m.py: total(items)", items).complete is False
    shown = "m.py\n    5  def total(items):\n    6      count = len(items)\n    7      return count - 1"
    assert recall(shown, items).complete is True


def result(task_id: str, verified: bool, cost: float) -> dict:
    return {"id": task_id, "verified": verified, "cost": cost, "model_calls": 3, "patch": "p" if verified else "",
            "tokens": {"prompt": 1000, "cached": 600, "completion": 100},
            "time_s": {"total": 10.0, "setup": 1.0, "reproduction": 2.0, "model": 3.0, "tests": 3.0, "other": 1.0}}


def test_compare_puts_runs_side_by_side_in_a_table_and_a_chart(tmp_path, capsys):
    for name, model, outcomes in (("a", "qwen3-coder-plus", [True, True, False]), ("b", "qwen3-coder-flash", [True])):
        run = tmp_path / name
        run.mkdir()
        summary = summarize([result(f"t{i}", ok, 0.01) for i, ok in enumerate(outcomes)], model)
        (run / "summary.json").write_text(json.dumps(summary))
    assert summary["tokens_per_solved"] == {"prompt": 1000, "cached": 600, "completion": 100}
    code = main(["bench", "compare", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "cmp")])
    assert code == 0
    table = (tmp_path / "cmp" / "comparison.md").read_text()
    assert "| qwen3-coder-plus | 3 | 2 | 66.7% |" in table and "| qwen3-coder-flash | 1 | 1 | 100.0% |" in table
    assert (tmp_path / "cmp" / "comparison.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["bench", "compare", str(tmp_path / "missing")]) == 2
    assert "no summary.json" in capsys.readouterr().out


def test_bench_usage_errors(tmp_path, capsys):
    assert main(["bench", str(tmp_path / "none.jsonl"), "--out", str(tmp_path / "o")]) == 2
    assert "no such file" in capsys.readouterr().out
    assert main(["bench", str(tmp_path / "none.jsonl")]) == 2
    assert "--out DIR is required" in capsys.readouterr().out
    assert main(["bench", "make-example", str(tmp_path / "ex")]) == 0
    assert Path(tmp_path / "ex" / "tasks.jsonl").is_file()
