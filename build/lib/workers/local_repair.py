"""`qwenfix repair PATH --command …`: the repair engine on a local checkout, with progress on the terminal.

Every candidate works in its own worktree made from the checkout's HEAD plus its uncommitted changes
(tracked and untracked, minus ignored files); the patch shown, and written by --apply, is relative
to that state, so it applies on top of the user's own edits.

Exit codes:
  0  a verified patch was found (and applied with --apply)
  1  no verified patch
  2  bad usage: PATH is not inside a git checkout with a commit
  3  the command already passes: nothing to repair
  4  no model endpoint configured, or it cannot be reached (and no deterministic fixer applies)
  5  no sandbox engine is usable (see `qwenfix doctor`)
  6  a verified patch was found but --apply could not write it into the checkout
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.syntax import Syntax

from core.config import Settings
from workers.agent.llm import ModelClient, ModelUnavailable
from workers.engine.repair import repair
from workers.engine.task import CONTEXT_FILES, RepairResult, RepairTask, RepoContext
from workers.sandbox import Limits
from workers.sandbox.disk import DiskBudget
from workers.sandbox.engines import select_engine
from workers.workspace.baseline import commit_baseline
from workers.workspace.git import PatchApplyError
from workers.workspace.mirrors import MirrorCache
from workers.workspace.patches import apply_patch, export_patch

EXIT_FIXED, EXIT_NO_FIX, EXIT_USAGE, EXIT_ALREADY_PASSING, EXIT_NO_MODEL, EXIT_NO_SANDBOX, EXIT_APPLY_FAILED = range(7)


def repair_local(path: Path, command: str, instructions: str | None, candidates: int, apply: bool,
                 settings: Settings, console: Console) -> int:
    located = _locate(path)
    if located is None:
        console.print(f"[red]{path} is not inside a git checkout with a commit[/]")
        return EXIT_USAGE
    root, head, subdir = located
    client = None
    if settings.llm_base_url:
        try:
            client = ModelClient.from_settings(settings)
            client.list_models()
        except ModelUnavailable as exc:
            console.print(f"[red]The model endpoint cannot be reached:[/] {exc}")
            return EXIT_NO_MODEL
    try:
        engine = select_engine(settings.sandbox_engine, settings.sandbox_image)
    except (RuntimeError, ValueError) as exc:
        console.print(f"[red]No sandbox:[/] {exc}")
        return EXIT_NO_SANDBOX
    limits = Limits.from_settings(settings)
    disk = DiskBudget.from_settings(settings)
    uncommitted = export_patch(root, head)  # the user's own edits, in every candidate's worktree

    with tempfile.TemporaryDirectory(prefix="qwenfix-local-") as tmp:
        mirrors = MirrorCache(Path(tmp) / "mirrors", 50 * 1024**3)

        @contextmanager
        def checkout():
            with mirrors.checkout(str(root), head, None) as worktree:
                if uncommitted:  # the same commit in every worktree; a reset goes back to it
                    commit_baseline(worktree, uncommitted, "uncommitted changes")
                yield worktree

        with checkout() as first:  # the base every candidate's patch is measured against
            base = _rev_parse(first.path)
        context = RepoContext({name: (root / name).read_text(errors="replace")
                               for name in CONTEXT_FILES if (root / name).is_file()})
        task = RepairTask(command=command, instructions=instructions, candidates=max(1, candidates),
                          working_directory=subdir, require_failure=instructions is None,
                          semgrep_rules=str(settings.semgrep_rules) if settings.semgrep_rules else None)
        with console.status(f"Reproducing `{command}`…") as status:
            def progress(stage: str, detail: str = "") -> None:
                line = f"{stage} {detail}".strip()
                status.update(line + "…")
                console.log(line)

            result = repair(task, checkout=checkout, base_sha=base,
                            start_sandbox=lambda ws: engine.start(ws, settings.sandbox_image, limits,
                                                                  labels={"qwenfix.job": "local"}, disk=disk),
                            client=client, context=context, progress=progress, secrets=settings.secrets())
    return _report(result, command, root, apply, client is not None, console)


def _report(result: RepairResult, command: str, root: Path, apply: bool, have_model: bool, console: Console) -> int:
    if result.status == "already_passing":
        console.print(f"[green]`{command}` already passes[/]: nothing to repair.")
        return EXIT_ALREADY_PASSING
    for candidate in result.candidates:
        reasons = "; ".join(candidate.verdict.reasons) if candidate.verdict else "not validated"
        console.print(f"  attempt {candidate.index + 1} ({candidate.source}, {candidate.outcome or '-'}): "
                      f"{'verified' if candidate.verified else 'rejected'}{': ' + reasons if reasons else ''}")
    if result.status != "fixed" or result.chosen is None:
        if not have_model and not result.candidates and result.reproduction and not result.reproduction.ok:
            console.print("[red]No model endpoint configured[/] (set QWENFIX_LLM_BASE_URL), "
                          "and no deterministic fixer applies to this command.")
            return EXIT_NO_MODEL
        console.print(f"[red]No verified patch:[/] {result.reason or result.status}")
        return EXIT_NO_FIX
    chosen = result.chosen
    console.print(Syntax(chosen.patch, "diff", theme="ansi_dark", word_wrap=True))
    console.print(f"[green]Verified[/] by re-running `{command}` on a pristine worktree in a clean sandbox ({chosen.source}).")
    console.print(f"Summary: {chosen.summary}")
    for note in chosen.security_notes:
        console.print(f"[yellow]Security finding[/] (below high severity): {note}")
    if apply:
        try:
            apply_patch(root, chosen.patch)
        except PatchApplyError as exc:
            console.print(f"[red]Could not apply the patch to {root}:[/] {exc}")
            return EXIT_APPLY_FAILED
        console.print(f"Applied to {root}.")
    else:
        console.print("Run again with --apply to write it into the checkout.")
    return EXIT_FIXED


def _git(cwd: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, text=True,
                          env={**os.environ, **env} if env else None)


def _rev_parse(path: Path) -> str:
    return _git(path, "rev-parse", "HEAD").stdout.strip()


def _locate(path: Path) -> tuple[Path, str, str] | None:
    """(repository root, HEAD sha, PATH relative to the root) or None when PATH is not in a checkout."""
    path = path.resolve()
    top = _git(path, "rev-parse", "--show-toplevel")
    head = _git(path, "rev-parse", "HEAD")
    if top.returncode != 0 or head.returncode != 0:
        return None
    root = Path(top.stdout.strip()).resolve()
    return root, head.stdout.strip(), path.relative_to(root).as_posix() if path != root else "."
