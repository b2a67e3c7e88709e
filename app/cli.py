"""The `qwenfix` command: serve, worker, db upgrade, doctor, replay, sandbox build, repair, report,
audit export."""

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

    argv = ["worker", "-Q", "qwenfix", "--loglevel", get_settings().log_level, "--concurrency", str(args.concurrency)]
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
