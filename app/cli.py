"""The `qwenfix` command: serve, worker, db upgrade, setup, doctor, replay, sandbox build, repair, bench,
report, audit export."""

from __future__ import annotations

import argparse
import hashlib
import hmac
import os
import subprocess
import sys
import uuid
from pathlib import Path

from core.config import get_settings


def cmd_serve(args) -> int:
    import uvicorn

    from core.db.migrate import upgrade

    settings = get_settings()
    if settings.database_url.startswith("sqlite"):
        upgrade(settings.database_url)  # the embedded database keeps itself current
    worker = None
    if settings.embedded_broker and not args.no_worker:
        # one box: the worker runs beside the web process on the same embedded broker
        worker = subprocess.Popen([sys.executable, "-m", "app.cli", "worker", "--beat"], preexec_fn=_die_with_parent)
    try:
        uvicorn.run("app.main:create_app", factory=True, host=args.host, port=args.port, log_level="warning")
    finally:
        if worker:
            worker.terminate()
            worker.wait(timeout=30)
    return 0


def _die_with_parent() -> None:
    """Linux: the embedded worker gets SIGTERM when `serve` goes away, however it goes."""
    import ctypes
    import signal

    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def cmd_worker(args) -> int:
    from core.queue import celery_app

    # No mingle or gossip: qwenfix keeps its own state (jobs, leases) in the database and never uses
    # Celery's revokes or remote control, so a worker need not wait for its peers' answers to start.
    argv = ["worker", "-Q", "qwenfix", "--loglevel", get_settings().log_level, "--concurrency", str(args.concurrency),
            "--without-mingle", "--without-gossip"]
    if args.beat:
        argv.append("--beat")
        argv += ["--schedule", str(get_settings().data_dir / "celerybeat-schedule")]
    celery_app.worker_main(argv)
    return 0


def cmd_db_upgrade(_args) -> int:
    from core.db.migrate import upgrade

    settings = get_settings()
    upgrade(settings.database_url)
    print(f"database at {_safe_url(settings.database_url)} is up to date")
    return 0


def cmd_setup(args) -> int:
    from app.manifest import setup_link, valid_account

    account = (args.org or "").strip() or None
    if account is not None and not valid_account(account):
        print(f"'{account}' is not a GitHub organization name", file=sys.stderr)
        return 2
    settings = get_settings()
    print(setup_link(settings, account))
    if settings.app_configured:
        print("(an App is already configured: only admins may open this page)", file=sys.stderr)
    return 0


def cmd_doctor(_args) -> int:
    from app.doctor import run_checks

    return run_checks(get_settings())


def cmd_replay(args) -> int:
    import httpx

    body = Path(args.file).read_bytes()
    secret = get_settings().webhook_secret.get_secret_value()
    if not secret:
        print("QWENFIX_WEBHOOK_SECRET is not set: cannot sign the payload", file=sys.stderr)
        return 2
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": args.event,
        "X-GitHub-Delivery": args.delivery or str(uuid.uuid4()),
        "X-Hub-Signature-256": signature,
    }
    response = httpx.post(args.url, content=body, headers=headers, timeout=30)
    print(f"{response.status_code} {response.text}")
    return 0 if response.status_code < 400 else 1


def cmd_sandbox_build(args) -> int:
    from workers.sandbox.image import build_image

    tag = args.tag or get_settings().sandbox_image
    build_image(tag)
    print(f"built sandbox image {tag}")
    return 0


def cmd_repair(args) -> int:
    from rich.console import Console

    from workers.local_repair import repair_local

    return repair_local(
        Path(args.path), args.command, args.instructions, args.candidates, args.apply, get_settings(), Console()
    )


def cmd_bench(args) -> int:
    """`bench TASKS --out DIR …`, `bench compare DIR… [--out DIR]`, `bench make-example DIR`."""
    from rich.console import Console

    from workers.evaluation.example import make_example
    from workers.evaluation.run import BenchOptions, run_bench
    from workers.evaluation.summary import compare
    from workers.evaluation.tasks import TaskError, load_tasks

    console = Console(soft_wrap=True)  # paths and table rows stay on one line
    if args.target == "make-example":
        if len(args.paths) != 1:
            console.print("[red]usage:[/] qwenfix bench make-example DIR")
            return 2
        try:
            tasks = make_example(Path(args.paths[0]))
        except FileExistsError as exc:
            console.print(f"[red]{exc}[/]")
            return 2
        console.print(f"Wrote {tasks}. Run: qwenfix bench {tasks} --out bench-out")
        return 0
    if args.target == "compare":
        if not args.paths:
            console.print("[red]usage:[/] qwenfix bench compare DIR [DIR …] [--out DIR]")
            return 2
        try:
            summaries = compare([Path(p) for p in args.paths], Path(args.out or "."))
        except FileNotFoundError as exc:
            console.print(f"[red]{exc}[/]")
            return 2
        out = Path(args.out or ".")
        console.print((out / "comparison.md").read_text())
        console.print(f"{len(summaries)} runs compared: {out / 'comparison.md'}, {out / 'comparison.png'}")
        return 0
    if args.paths:
        console.print(f"[red]unexpected arguments:[/] {' '.join(args.paths)}")
        return 2
    if not args.out:
        console.print("[red]--out DIR is required[/]: where results, the summary and the chart go")
        return 2
    try:
        tasks = load_tasks(Path(args.target), Path(args.repos) if args.repos else None)
    except TaskError as exc:
        console.print(f"[red]Cannot read the tasks:[/] {exc}")
        return 2
    settings = get_settings()
    options = BenchOptions(model=args.model or settings.llm_model, candidates=args.candidates,
                           concurrency=args.concurrency, resume=args.resume, limit=args.limit,
                           context_only=args.context_only, max_steps=args.max_steps)
    return run_bench(tasks, Path(args.out), settings, options, console)


def cmd_report(args) -> int:
    from app.report import fix_table, parse_since, render
    from core.db.session import session_scope

    try:
        since = parse_since(args.since)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    with session_scope(get_settings().database_url) as session:
        sys.stdout.write(render(fix_table(session, since, args.repo), args.format))
    return 0


def cmd_audit_export(args) -> int:
    import json

    from app.report import parse_since
    from core.audit import export
    from core.db.session import session_scope

    try:
        since = parse_since(args.since)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    with session_scope(get_settings().database_url) as session:
        for record in export(session, since, args.repo, args.job):
            sys.stdout.write(json.dumps(record, sort_keys=True) + "\n")
    return 0


def _safe_url(url: str) -> str:
    """A database URL without its password, for printing."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qwenfix", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the web app (and, on embedded defaults, a worker beside it)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--no-worker", action="store_true", help="do not start the embedded worker")
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser("worker", help="run a Celery worker that executes jobs")
    worker.add_argument("--concurrency", type=int, default=max(1, (os.cpu_count() or 2) // 2))
    worker.add_argument("--beat", action="store_true", help="also run the periodic sweep (one worker only)")
    worker.set_defaults(func=cmd_worker)

    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("upgrade", help="apply Alembic migrations").set_defaults(func=cmd_db_upgrade)

    setup = sub.add_parser("setup", help="print the link that registers the GitHub App in one click")
    setup.add_argument("--org", help="organization to register the App on (default: your account)")
    setup.set_defaults(func=cmd_setup)

    sub.add_parser("doctor", help="check settings and dependencies, say how to fix what is missing").set_defaults(
        func=cmd_doctor
    )

    replay = sub.add_parser("replay", help="sign a saved webhook payload and post it")
    replay.add_argument("file")
    replay.add_argument("--event", required=True, help="X-GitHub-Event, e.g. workflow_run")
    replay.add_argument("--url", default="http://127.0.0.1:8000/webhooks/github")
    replay.add_argument("--delivery", help="X-GitHub-Delivery (default: a new UUID)")
    replay.set_defaults(func=cmd_replay)

    sandbox = sub.add_parser("sandbox", help="sandbox image")
    sandbox_sub = sandbox.add_subparsers(dest="sandbox_command", required=True)
    build = sandbox_sub.add_parser("build", help="build the sandbox image offline (debootstrap + docker import)")
    build.add_argument("--tag")
    build.set_defaults(func=cmd_sandbox_build)

    repair = sub.add_parser("repair", help="repair a failing command in a local checkout")
    repair.add_argument("path")
    repair.add_argument("--command", required=True, help='the failing command, e.g. "pytest -q"')
    repair.add_argument("--instructions")
    repair.add_argument("--candidates", type=int, default=2)
    repair.add_argument("--apply", action="store_true", help="write the verified patch into the checkout")
    repair.set_defaults(func=cmd_repair)

    bench = sub.add_parser("bench", help="measure repairs over a task set (also: bench compare, bench make-example)",
                           description="qwenfix bench TASKS --out DIR [options] | qwenfix bench compare DIR… "
                                       "[--out DIR] | qwenfix bench make-example DIR")
    bench.add_argument("target", help="a task file (JSONL), or `compare`, or `make-example`")
    bench.add_argument("paths", nargs="*", help="output directories to compare, or where to make the example")
    bench.add_argument("--out", help="output directory (results, summary, predictions, chart)")
    bench.add_argument("--model", help="model name on the configured endpoint (default: QWENFIX_LLM_MODEL)")
    bench.add_argument("--candidates", type=int, default=1, help="agent attempts per task (default 1)")
    bench.add_argument("--concurrency", type=int, default=1, help="tasks at once (default 1)")
    bench.add_argument("--resume", action="store_true", help="continue the run in --out, skipping finished tasks")
    bench.add_argument("--limit", type=int, help="only the first N tasks")
    bench.add_argument("--repos", help="directory of local clones, for SWE-bench tasks (owner__name)")
    bench.add_argument("--context-only", action="store_true",
                       help="no model: build each first prompt and measure context recall against the gold patch")
    bench.add_argument("--max-steps", type=int, help="agent steps per candidate (default 30)")
    bench.set_defaults(func=cmd_bench)

    report = sub.add_parser("report", help="delivered fixes per repository and model: accepted, rejected, CI, cost")
    report.add_argument("--since", default="30d", help="a span (30d, 12h, 2w) or a date (2026-01-31); default 30d")
    report.add_argument("--repo", help="only this repository (owner/name)")
    report.add_argument("--format", choices=("md", "json", "csv"), default="md")
    report.set_defaults(func=cmd_report)

    audit = sub.add_parser("audit", help="the audit trail")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)
    export = audit_sub.add_parser("export", help="write audit records as JSON lines")
    export.add_argument("--since", required=True, help="a span (7d, 12h) or a date (2026-01-31)")
    export.add_argument("--repo", help="only this repository (owner/name)")
    export.add_argument("--job", type=int, help="only this job")
    export.set_defaults(func=cmd_audit_export)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
