"""Run the repair engine — the one red-build jobs run — over a task set: each task in its own
worktrees and sandboxes, at most `concurrency` at once, one result file per finished task (so an
interrupted run resumes where it stopped), progress on the terminal. With `context_only`, no model is
called: each task's first prompt is built and scored for context recall against its gold patch."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from core.config import Settings
from workers.agent.budget import Budget
from workers.agent.llm import ModelClient, ModelUnavailable, Usage
from workers.engine.repair import first_prompts, repair
from workers.engine.task import CONTEXT_FILES, RepairResult, RepairTask, RepoContext
from workers.evaluation.recall import changed, recall
from workers.evaluation.summary import STAGES, write_outputs
from workers.evaluation.tasks import BenchTask
from workers.sandbox import Limits
from workers.sandbox.engines import select_engine
from workers.workspace.baseline import commit_baseline
from workers.workspace.mirrors import MirrorCache
from workers.workspace.patches import patch_files
from workers.workspace.snapshot import Snapshot

EXIT_DONE, EXIT_USAGE, EXIT_NO_MODEL, EXIT_NO_SANDBOX, EXIT_INTERRUPTED = 0, 2, 4, 5, 130
_DEFAULTS = RepairTask("")
CONTEXT_VARIANTS = {  # name: (evidence tokens, map tokens)
    "failure + tree (before)": (0, 0),
    "+ code involved": (_DEFAULTS.evidence_tokens, 0),
    "+ code involved + map": (_DEFAULTS.evidence_tokens, _DEFAULTS.map_tokens),
}


@dataclass(frozen=True)
class BenchOptions:
    model: str
    candidates: int = 1
    concurrency: int = 1
    resume: bool = False
    limit: int | None = None
    context_only: bool = False
    max_steps: int | None = None


def run_bench(tasks: list[BenchTask], out: Path, settings: Settings, options: BenchOptions, console: Console) -> int:
    results_dir = out / "results"
    done = _finished(results_dir)
    if done and not options.resume:
        console.print(f"[red]{out} already holds results of {len(done)} tasks[/]: add --resume to continue that "
                      "run, or choose another --out.")
        return EXIT_USAGE
    run_file = out / "run.json"
    run = {"model": options.model, "context_only": options.context_only, "candidates": options.candidates}
    if run_file.is_file() and options.resume:
        earlier = json.loads(run_file.read_text())
        if {k: earlier.get(k) for k in run} != run:
            console.print(f"[red]{out} holds a run with other settings[/] ({earlier}); resume it with those.")
            return EXIT_USAGE
    results_dir.mkdir(parents=True, exist_ok=True)
    run_file.write_text(json.dumps(run) + "\n")

    client = None
    if not options.context_only:
        if not settings.llm_base_url:
            console.print("[red]No model endpoint configured[/] (set QWENFIX_LLM_BASE_URL), or use --context-only.")
            return EXIT_NO_MODEL
        try:
            client = ModelClient(settings.llm_base_url, settings.llm_api_key.get_secret_value(), options.model,
                                 settings.llm_timeout_s, settings.llm_max_retries)
            client.list_models()
        except ModelUnavailable as exc:
            console.print(f"[red]The model endpoint cannot be reached:[/] {exc}")
            return EXIT_NO_MODEL
    chosen = tasks[: options.limit] if options.limit else tasks
    todo = [t for t in chosen if t.id not in done]
    try:
        engines = {image: select_engine(settings.sandbox_engine, image)
                   for image in {t.image or settings.sandbox_image for t in todo}}
    except (RuntimeError, ValueError) as exc:
        console.print(f"[red]No sandbox:[/] {exc}")
        return EXIT_NO_SANDBOX
    if len(chosen) > len(todo):
        console.print(f"Resuming: {len(chosen) - len(todo)} of {len(chosen)} tasks already done.")

    runner = _Runner(out, settings, options, client, engines)
    solved = sum(1 for r in done.values() if r.get("verified") and r["id"] in {t.id for t in chosen})
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[note]}"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        bar = progress.add_task("qwenfix bench", total=len(chosen), completed=len(chosen) - len(todo),
                                note="" if options.context_only else f"solved {solved}")
        pool = ThreadPoolExecutor(max_workers=max(1, options.concurrency), thread_name_prefix="bench")
        futures = {pool.submit(runner.run_one, task): task for task in todo}
        try:
            for future in as_completed(futures):
                task, result = futures[future], future.result()
                if result is None:
                    continue
                _write(results_dir / f"{task.id}.json", result)
                solved += bool(result.get("verified"))
                progress.console.print(_line(result, options.context_only))
                progress.update(bar, advance=1, note="" if options.context_only else f"solved {solved}")
        except KeyboardInterrupt:
            runner.cancel()
            pool.shutdown(wait=True, cancel_futures=True)
            finished = len(_finished(results_dir))
            console.print(f"[yellow]Interrupted[/]: {finished} tasks have results in {results_dir}; "
                          "run the same command with --resume to do the rest.")
            return EXIT_INTERRUPTED
        pool.shutdown(wait=True)
    if options.context_only:
        _context_summary(out, console)
    else:
        summary = write_outputs(out, options.model)
        low, high = summary["ci95"]
        console.print(f"[bold]{summary['solved']}/{summary['tasks']} verified[/] — pass rate "
                      f"{summary['pass_rate']:.1%} (95 % CI {low:.1%}–{high:.1%}), cost {summary['cost']:.4f}. "
                      f"Written: summary.md, summary.json, predictions.jsonl, chart.png in {out}")
    return EXIT_DONE


class _Runner:
    def __init__(self, out: Path, settings: Settings, options: BenchOptions, client: ModelClient | None,
                 engines: dict) -> None:
        self.settings, self.options, self.client, self.engines = settings, options, client, engines
        self.mirrors = MirrorCache(out / ".work" / "mirrors", settings.mirror_disk_budget_mb * 1024 * 1024)
        self._cancelled = threading.Event()
        self._live: list = []
        self._lock = threading.Lock()
        price = settings.llm_prices.get(options.model)  # the same table as the service's costs
        self.budget = Budget(price_per_1k_prompt=price.input / 1000 if price else 0.0,
                             price_per_1k_cached=price.cached_input / 1000 if price and price.cached_input is not None
                             else None,
                             price_per_1k_completion=price.output / 1000 if price else 0.0)

    def cancel(self) -> None:
        """Stop now: no new stage starts, every sandbox is killed (its command ends at once)."""
        self._cancelled.set()
        with self._lock:
            live = list(self._live)
        for sandbox in live:
            try:
                sandbox.stop()
            except Exception:  # noqa: BLE001 — the others must still be stopped
                pass

    def run_one(self, task: BenchTask) -> dict | None:
        if self._cancelled.is_set():
            return None
        started = time.monotonic()
        try:
            result = self._context(task, started) if self.options.context_only else self._repair(task, started)
        except Exception as exc:  # noqa: BLE001 — one broken task is its own result, not the run's end
            if self._cancelled.is_set():
                return None
            result = _empty(task, self.options.model, started)
            result["error"] = f"{type(exc).__name__}: {exc}"[:2000]
        return None if self._cancelled.is_set() else result

    # ------------------------------------------------------------------------------ parts
    @contextmanager
    def _checkout(self, task: BenchTask):
        with self.mirrors.checkout(str(task.repo), task.commit, None) as worktree:
            if task.test_patch:  # the same commit in every worktree of this task
                commit_baseline(worktree, task.test_patch, f"test patch of {task.id}")
            yield worktree

    def _start_sandbox(self, task: BenchTask) -> Callable:
        image = task.image or self.settings.sandbox_image
        engine = self.engines[image]

        def start(workspace, network: bool = False):
            if self._cancelled.is_set():
                raise RuntimeError("interrupted")
            sandbox = engine.start(workspace, image, Limits.from_settings(self.settings, network),
                                   labels={"qwenfix.job": "bench"})
            with self._lock:
                self._live.append(sandbox)
            return sandbox
        return start

    def _prepare(self, task: BenchTask, paths: list[str] = ()) -> tuple[str, RepoContext, dict[str, str]]:
        with self._checkout(task) as first:
            base = first.base_sha
            snapshot = Snapshot.at(first, base)
            files = snapshot.read_many([*CONTEXT_FILES, *paths])
        context = RepoContext({name: files[name][:4000] for name in CONTEXT_FILES if name in files})
        return base, context, files

    def _task(self, task: BenchTask) -> RepairTask:
        return RepairTask(command=task.command, regression_command=task.regression_command, setup=task.setup,
                          instructions=task.instructions, candidates=max(1, self.options.candidates), parallel=1,
                          ignore_paths=task.protected, max_steps=self.options.max_steps or _DEFAULTS.max_steps,
                          semgrep_rules=str(self.settings.semgrep_rules) if self.settings.semgrep_rules else None)

    def _repair(self, task: BenchTask, started: float) -> dict:
        base, context, _ = self._prepare(task)
        prepared_s = time.monotonic() - started
        outcome = repair(self._task(task), checkout=lambda: self._checkout(task), base_sha=base,
                         start_sandbox=self._start_sandbox(task), client=self.client, context=context,
                         secrets=self.settings.secrets(), cancelled=self._cancelled.is_set)
        return self._result(task, outcome, started, prepared_s)

    def _result(self, task: BenchTask, outcome: RepairResult, started: float, prepared_s: float) -> dict:
        result = _empty(task, self.options.model, started)
        steps = [s for c in outcome.candidates for s in c.trajectory]
        usage = Usage(sum(c.prompt_tokens for c in outcome.candidates),
                      sum(c.completion_tokens for c in outcome.candidates),
                      sum(c.cached_tokens for c in outcome.candidates))
        time_s = result["time_s"]
        time_s["setup"] = round(prepared_s + outcome.timings.get("setup", 0.0), 3)
        time_s["reproduction"] = outcome.timings.get("reproduce", 0.0)
        time_s["model"] = round(sum(s["latency_s"] for s in steps), 3)
        time_s["tests"] = round(sum(c.validation_s for c in outcome.candidates)
                                + sum(s["tool_s"] for s in steps if s["tool"] == "run"), 3)
        time_s["other"] = round(max(0.0, time_s["total"] - sum(time_s[k] for k in STAGES[:-1])), 3)
        reason = outcome.reason
        if outcome.status == "already_passing":
            reason = f"`{task.command}` already passes at this commit: not a failing task"
        result.update({
            "status": outcome.status, "verified": outcome.status == "fixed" and outcome.chosen is not None,
            "patch": outcome.chosen.patch if outcome.chosen else "", "reason": reason,
            "source": outcome.chosen.source if outcome.chosen else None,
            "tokens": {"prompt": usage.prompt_tokens, "cached": usage.cached_tokens,
                       "completion": usage.completion_tokens},
            "cost": round(self.budget.cost(usage), 6), "model_calls": len(steps),
            "candidates": [c.describe() for c in outcome.candidates],
            "trajectory": [step for c in outcome.candidates for step in c.trajectory_records()],
        })
        return result

    def _context(self, task: BenchTask, started: float) -> dict:
        result = _empty(task, self.options.model, started)
        if not task.gold_patch:
            result["reason"] = "no gold patch: context recall cannot be measured"
            result["context"] = {}
            return result
        touched = [c.old_path for c in patch_files(task.gold_patch) if c.old_path]
        base, context, files = self._prepare(task, touched)
        items = changed(task.gold_patch, files.get)
        reproduction, prompts = first_prompts(self._task(task), lambda: self._checkout(task), base,
                                              self._start_sandbox(task), context, CONTEXT_VARIANTS)
        result["reproduced"] = not reproduction.ok
        result["context"] = {}
        for name, prompt in prompts.items():
            score = recall(prompt, items)
            result["context"][name] = {"files": score.files, "files_found": score.files_found,
                                       "functions": score.functions, "functions_found": score.functions_found,
                                       "complete": score.complete, "prompt_tokens": len(prompt) // 4}
        result["time_s"]["total"] = round(time.monotonic() - started, 3)
        return result


def _empty(task: BenchTask, model: str, started: float) -> dict:
    return {"id": task.id, "kind": task.kind, "model": model, "status": "error", "verified": False, "patch": "",
            "reason": "", "error": None, "tokens": {"prompt": 0, "cached": 0, "completion": 0}, "cost": 0.0,
            "model_calls": 0, "time_s": {"total": round(time.monotonic() - started, 3), **dict.fromkeys(STAGES, 0.0)}}


def _finished(results_dir: Path) -> dict[str, dict]:
    """Tasks with a result, by id; a task that failed for the machine's reasons (an error) runs again."""
    out = {}
    for path in results_dir.glob("*.json") if results_dir.is_dir() else []:
        try:
            data = json.loads(path.read_text())
        except ValueError:
            continue
        if not data.get("error"):
            out[data["id"]] = data
    return out


def _write(path: Path, data: dict) -> None:
    """Atomically: a run killed mid-write leaves no half a result."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    os.replace(tmp, path)


def _line(result: dict, context_only: bool) -> str:
    if context_only:
        scores = result.get("context") or {}
        if not scores:
            return f"  [dim]–[/] {result['id']}: {result.get('error') or result.get('reason')}"
        marks = " · ".join(f"{name}: {'all' if s['complete'] else 'missing'}" for name, s in scores.items())
        return f"  {result['id']}: {marks}"
    if result.get("error"):
        return f"  [red]![/] {result['id']}: {result['error'][:200]}"
    mark = "[green]✓[/]" if result["verified"] else "[red]✗[/]"
    what = "verified" if result["verified"] else f"not verified: {result.get('reason') or result.get('status')}"
    return (f"  {mark} {result['id']} {what} ({result['model_calls']} model calls, "
            f"{result['time_s']['total']:.1f} s)")


def _context_summary(out: Path, console: Console) -> None:
    results = [r for r in (json.loads(p.read_text()) for p in sorted((out / "results").glob("*.json")))
               if r.get("context")]
    rows = []
    for name in CONTEXT_VARIANTS:
        scores = [r["context"][name] for r in results if name in r["context"]]
        if not scores:
            continue
        rows.append({
            "prompt": name, "tasks": len(scores), "complete": sum(s["complete"] for s in scores),
            "files_found": sum(s["files_found"] for s in scores), "files": sum(s["files"] for s in scores),
            "functions_found": sum(s["functions_found"] for s in scores),
            "functions": sum(s["functions"] for s in scores),
            "mean_prompt_tokens": round(sum(s["prompt_tokens"] for s in scores) / len(scores)),
        })
    lines = ["| first prompt | context recall (tasks with every changed file and function) | files | "
             "functions (code) | prompt tokens (mean) |", "| --- | --- | --- | --- | --- |"]
    for row in rows:
        lines.append(f"| {row['prompt']} | {row['complete']}/{row['tasks']} ({row['complete'] / row['tasks']:.0%}) | "
                     f"{row['files_found']}/{row['files']} | {row['functions_found']}/{row['functions']} | "
                     f"{row['mean_prompt_tokens']:,} |")
    table = "\n".join(lines) + "\n"
    (out / "context.json").write_text(json.dumps(rows, indent=2) + "\n")
    (out / "context.md").write_text("# qwenfix bench --context-only\n\n" + table)
    console.print(table)
