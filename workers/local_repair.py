"""`qwenfix repair PATH --command …`: the repair engine on a local checkout, with progress on the terminal.

Exit codes: 0 a verified patch was found (and applied with --apply); 1 no verified patch;
2 bad usage (not a git checkout); 3 the command already passes; 4 no model endpoint configured or
reachable (and no deterministic fixer applies).
"""

from __future__ import annotations

import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.syntax import Syntax

from app.config import Settings
from workers.agent.llm import ModelClient, ModelUnavailable
from workers.repair import RepairTask, RepoContext, repair
from workers.sandbox import Limits, select_engine
from workers.workspace import MirrorCache, apply_patch, export_patch

EXIT_FIXED, EXIT_NO_FIX, EXIT_USAGE, EXIT_ALREADY_PASSING, EXIT_NO_MODEL = 0, 1, 2, 3, 4
CONTEXT_FILES = ("README.md", "AGENTS.md", "QWEN.md", "CONTRIBUTING.md")


def _head(path: Path) -> str | None:
    result = subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True)
    return result.stdout.strip() if result.returncode == 0 else None


def repair_local(path: Path, command: str, instructions: str | None, candidates: int, apply: bool,
                 settings: Settings, console: Console) -> int:
    path = path.resolve()
    head = _head(path)
    if head is None:
        console.print(f"[red]{path} is not a git checkout with a commit[/]")
        return EXIT_USAGE
    uncommitted = export_patch(path, head)  # the user's own edits go into every candidate's worktree
    client = None
    if settings.llm_base_url:
        try:
            client = ModelClient.from_settings(settings)
            client.list_models()
        except ModelUnavailable as exc:
            console.print(f"[red]model endpoint unreachable:[/] {exc}")
            return EXIT_NO_MODEL
    engine = select_engine(settings.sandbox_engine, settings.sandbox_image)
    limits = Limits(memory_mb=settings.sandbox_memory_mb, cpus=settings.sandbox_cpus, pids=settings.sandbox_pids,
                    timeout_s=settings.sandbox_command_timeout_s, output_bytes=settings.sandbox_output_bytes)

    with tempfile.TemporaryDirectory(prefix="qwenfix-local-") as tmp:
        mirrors = MirrorCache(Path(tmp) / "mirrors", 50 * 1024**3)

        @contextmanager
        def checkout():
            with mirrors.checkout(str(path), head, None) as worktree:
                apply_patch(worktree, uncommitted)
                yield worktree

        context = RepoContext({name: (path / name).read_text(errors="replace")[:4000]
                               for name in CONTEXT_FILES if (path / name).is_file()})
        task = RepairTask(command=command, instructions=instructions, candidates=max(1, candidates),
                          require_failure=instructions is None)
        with console.status("Reproducing…") as status:
            def progress(stage: str, detail: str = "") -> None:
                status.update(f"{stage.capitalize()} {detail}".strip() + "…")
                console.log(f"{stage} {detail}".strip())

            result = repair(task, checkout=checkout, base_sha=head,
                            start_sandbox=lambda ws, network=False: engine.start(ws, settings.sandbox_image, limits, labels={"qwenfix.job": "local"}),
                            client=client, context=context, progress=progress, secrets=settings.secrets())

    if result.status == "already_passing":
        console.print(f"[green]`{command}` already passes[/]: nothing to repair.")
        return EXIT_ALREADY_PASSING
    if result.status != "fixed" or result.chosen is None:
        if client is None and not result.candidates:
            console.print("[red]No model endpoint configured[/] (QWENFIX_LLM_BASE_URL) and no deterministic fixer applies.")
            return EXIT_NO_MODEL
        console.print(f"[red]No verified patch:[/] {result.reason}")
        for candidate in result.candidates:
            console.print(f"  attempt {candidate.index + 1} ({candidate.source}, {candidate.outcome}): "
                          + ("; ".join(candidate.verdict.reasons) if candidate.verdict else "not validated"))
        return EXIT_NO_FIX
    chosen = result.chosen
    console.print(Syntax(chosen.patch, "diff", theme="ansi_dark"))
    console.print(f"[green]Verified[/] by re-running `{command}` ({chosen.source}): {chosen.summary}")
    if apply:
        apply_patch(path, chosen.patch)
        console.print(f"Applied to {path}.")
    return EXIT_FIXED
