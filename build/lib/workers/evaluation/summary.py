"""A benchmark run's figures from its per-task results: pass rate with its 95 % Wilson interval,
tokens and cost per solved task, time by stage; written as summary.json, summary.md, SWE-bench
predictions and a PNG chart, for one run or several compared side by side."""

from __future__ import annotations

import json
import math
from pathlib import Path

from matplotlib.figure import Figure  # no pyplot: no global state, no display, safe in threads

Z95 = 1.959964
STAGES = ("setup", "reproduction", "model", "tests", "other")


def wilson(solved: int, total: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a pass rate (sound for small samples and rates near 0 or 1)."""
    if total == 0:
        return 0.0, 0.0
    p = solved / total
    denominator = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denominator
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def load_results(out: Path) -> list[dict]:
    results = []
    for path in sorted((out / "results").glob("*.json")):
        try:
            results.append(json.loads(path.read_text()))
        except ValueError:
            continue  # a result being written when the run was killed: that task runs again
    return results


def summarize(results: list[dict], model: str) -> dict:
    solved = [r for r in results if r.get("verified")]
    total = len(results)
    tokens = {k: sum(r["tokens"][k] for r in results) for k in ("prompt", "cached", "completion")}
    cost = sum(r.get("cost") or 0.0 for r in results)
    low, high = wilson(len(solved), total)
    return {
        "model": model,
        "tasks": total,
        "solved": len(solved),
        "pass_rate": round(len(solved) / total, 4) if total else 0.0,
        "ci95": [round(low, 4), round(high, 4)],
        "tokens": tokens,
        "tokens_per_solved": {k: round(v / len(solved)) for k, v in tokens.items()} if solved else None,
        "cost": round(cost, 6),
        "cost_per_task": round(cost / total, 6) if total else 0.0,
        "cost_per_solved": round(cost / len(solved), 6) if solved else None,
        "model_calls": sum(r.get("model_calls", 0) for r in results),
        "errors": sum(1 for r in results if r.get("error")),
        "time_s": {k: round(sum(r["time_s"].get(k, 0.0) for r in results), 2) for k in ("total", *STAGES)},
    }


def markdown(summary: dict, results: list[dict]) -> str:
    s = summary
    low, high = s["ci95"]
    per_solved = s["tokens_per_solved"]
    lines = [
        f"# qwenfix bench — `{s['model']}`", "",
        "| tasks | solved | pass rate | 95 % CI (Wilson) | prompt tokens (cached) | completion tokens "
        "| tokens per solved task | cost | cost per solved task | model calls |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        f"| {s['tasks']} | {s['solved']} | {s['pass_rate']:.1%} | {low:.1%}–{high:.1%} | "
        f"{s['tokens']['prompt']:,} ({s['tokens']['cached']:,}) | {s['tokens']['completion']:,} | "
        f"{_tokens(per_solved)} | {s['cost']:.4f} | "
        f"{'—' if s['cost_per_solved'] is None else format(s['cost_per_solved'], '.4f')} | {s['model_calls']} |",
        "", "Time by stage (s, summed over tasks): " + ", ".join(f"{k} {v}" for k, v in s["time_s"].items()), "",
        "| task | verified | model calls | prompt / cached / completion tokens | cost | time s (setup / reproduction / "
        "model / tests) | note |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        t = r["time_s"]
        note = (r.get("error") or r.get("reason") or "").replace("|", "/").replace("\n", " ")[:120]
        lines.append(
            f"| {r['id']} | {'yes' if r.get('verified') else 'no'} | {r.get('model_calls', 0)} | "
            f"{r['tokens']['prompt']:,} / {r['tokens']['cached']:,} / {r['tokens']['completion']:,} | "
            f"{r.get('cost', 0.0):.4f} | {t.get('total', 0):.1f} ({t.get('setup', 0):.1f} / "
            f"{t.get('reproduction', 0):.1f} / {t.get('model', 0):.1f} / {t.get('tests', 0):.1f}) | {note} |")
    return "\n".join(lines) + "\n"


def _tokens(per_solved: dict | None) -> str:
    if not per_solved:
        return "—"
    return f"{per_solved['prompt'] + per_solved['completion']:,}"


def predictions(results: list[dict], model: str) -> str:
    """SWE-bench's predictions format, one JSON object a line, for the official harness."""
    return "".join(json.dumps({"instance_id": r["id"], "model_name_or_path": model,
                               "model_patch": r.get("patch") or ""}) + "\n" for r in results)


def write_outputs(out: Path, model: str) -> dict:
    """summary.json, summary.md, predictions.jsonl and chart.png from the results in `out`."""
    results = load_results(out)
    summary = summarize(results, model)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    (out / "summary.md").write_text(markdown(summary, results))
    (out / "predictions.jsonl").write_text(predictions(results, model))
    chart([summary], [model], out / "chart.png")
    return summary


def compare(runs: list[Path], out: Path) -> list[dict]:
    """Several runs side by side: comparison.md and comparison.png (in `out`)."""
    summaries = []
    for run in runs:
        path = run / "summary.json"
        if not path.is_file():
            raise FileNotFoundError(f"{run}: no summary.json (is it a `qwenfix bench` output directory?)")
        summaries.append(json.loads(path.read_text()))
    labels = [f"{s['model']} ({run.name})" if [x["model"] for x in summaries].count(s["model"]) > 1 else s["model"]
              for s, run in zip(summaries, runs, strict=True)]
    rows = ["| run | tasks | solved | pass rate | 95 % CI | cost per task | cost per solved task | "
            "tokens per solved task |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for label, s in zip(labels, summaries, strict=True):
        low, high = s["ci95"]
        per_solved = "—" if s["cost_per_solved"] is None else f"{s['cost_per_solved']:.4f}"
        rows.append(f"| {label} | {s['tasks']} | {s['solved']} | {s['pass_rate']:.1%} | {low:.1%}–{high:.1%} | "
                    f"{s['cost_per_task']:.4f} | {per_solved} | {_tokens(s['tokens_per_solved'])} |")
    out.mkdir(parents=True, exist_ok=True)
    (out / "comparison.md").write_text("# qwenfix bench — comparison\n\n" + "\n".join(rows) + "\n")
    chart(summaries, labels, out / "comparison.png")
    return summaries


def chart(summaries: list[dict], labels: list[str], path: Path) -> None:
    """Pass rate with its 95 % interval, and cost per task, one bar per run."""
    figure = Figure(figsize=(4 + 1.6 * len(summaries), 4))
    rate, cost = figure.subplots(1, 2)
    positions = range(len(summaries))
    rates = [s["pass_rate"] * 100 for s in summaries]
    errors = [[r - s["ci95"][0] * 100 for r, s in zip(rates, summaries, strict=True)],
              [s["ci95"][1] * 100 - r for r, s in zip(rates, summaries, strict=True)]]
    rate.bar(positions, rates, yerr=errors, capsize=6, color="#3b7dd8")
    rate.set_ylim(0, 100)
    rate.set_ylabel("pass rate, % (95 % CI)")
    rate.set_title("Verified fixes")
    for i, s in enumerate(summaries):
        rate.annotate(f"{s['solved']}/{s['tasks']}", (i, 0), ha="center", va="bottom", fontsize=8,
                      xytext=(0, 3), textcoords="offset points", color="white" if rates[i] > 8 else "black")
    cost.bar(positions, [s["cost_per_task"] for s in summaries], color="#e0883b")
    cost.set_ylabel("cost per task")
    cost.set_title("Cost")
    for axis in (rate, cost):
        axis.set_xticks(list(positions), labels, rotation=20, ha="right", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
