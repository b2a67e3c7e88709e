"""Benchmark: matching a job name against a workflow's name template grows linearly.

    .venv/bin/python bench/workflow_match.py [--repeat 2000]

A pull request controls its workflow file, so a job name template may hold any number of
`${{ … }}` expressions. For 7, 14 and 28 expressions, and a job name that almost matches (one
value short, so every separator is searched for), prints the time of one match (best of
five rounds) and its ratio to the 7-expression case: linear matching gives about 2x and 4x (the
backtracking regex it replaced took 1.1 s at 7 expressions and about ten times more per further
expression). Figures only; nothing asserts on wall-clock time.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workers.failure.workflow import NameTemplate, locate_step, parse_workflow  # noqa: E402


def workflow(count: int) -> str:
    name = "test (" + ", ".join(f"${{{{ matrix.k{i} }}}}" for i in range(count)) + ")"
    return yaml.safe_dump({"jobs": {"unit": {
        "name": name, "strategy": {"matrix": {f"k{i}": ["py"] for i in range(count)}},
        "steps": [{"name": "Run tests", "run": "python -m pytest -q"}]}}})


def per_call(count: int, repeat: int) -> float:
    parsed = parse_workflow(workflow(count))
    almost = "test (" + ", ".join(["py"] * (count - 1)) + ")"  # one value short: no job has this name
    assert locate_step(parsed, almost, "Run tests", None).command is None
    template = NameTemplate.parse(parsed.jobs["unit"].name)
    rounds = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(repeat):
            template.match(almost)
        rounds.append((time.perf_counter() - start) / repeat)
    return min(rounds)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=2000)
    args = parser.parse_args()
    per_call(7, args.repeat)  # warm up
    took = {count: per_call(count, args.repeat) for count in (7, 14, 28)}
    for count, seconds in took.items():
        print(f"{count:3d} expressions: {seconds * 1e6:6.2f} µs per match   ratio to 7: {seconds / took[7]:5.2f}x")


if __name__ == "__main__":
    main()
