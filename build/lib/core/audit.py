"""The audit trail: one append-only record per action — who triggered a job, the configuration that
applied, every sandbox command, every model request, every write to GitHub.

Records are only ever added (core/db/models.py refuses changes, the database's triggers too); the
one way out is retention, which deletes whole records older than QWENFIX_AUDIT_RETENTION_DAYS. The
redacted text of each model request is kept in a file named by its SHA-256 under QWENFIX_AUDIT_DIR;
the record holds the hash and that file's path. Every value passes through redaction before it is
stored, the last gate for secrets that should never have reached it.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import threading
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select, text
from sqlalchemy.orm import Session

from core.db.models import PURGE_OPTION, AuditRecord, utcnow
from core.db.session import session_scope
from core.logs import redact

KINDS = ("trigger", "config", "sandbox", "model", "github")
REQUESTS = "requests"  # folder of stored model requests under the audit dir


def scrub(value: Any, secrets: Iterable[str]) -> Any:
    """``value`` with every string redacted (secrets, Authorization headers, URL userinfo)."""
    secrets = [s for s in secrets if s]
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, dict):
        return {str(k): scrub(v, secrets) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub(v, secrets) for v in value]
    return value


def add(session: Session, kind: str, data: dict, *, job_id: int | None = None,
        installation_id: int | None = None, repo: str | None = None,
        secrets: Iterable[str] = ()) -> AuditRecord:
    """Add one record to the session (the caller commits)."""
    if kind not in KINDS:
        raise ValueError(f"unknown audit record kind {kind!r}")
    row = AuditRecord(kind=kind, data=scrub(data, secrets), job_id=job_id,
                      installation_id=installation_id, repo=repo)
    session.add(row)
    return row


class Trail:
    """One job's records: each carries the job, its installation and repository, and is committed at
    once in its own transaction, so what was done is on record even if the worker dies next."""

    def __init__(self, database_url: str, job_id: int | None, installation_id: int | None,
                 repo: str | None, secrets: Iterable[str] = ()) -> None:
        self.database_url = database_url
        self.job_id, self.installation_id, self.repo = job_id, installation_id, repo
        self._secrets = [s for s in secrets if s]
        self._lock = threading.Lock()

    def add_secret(self, secret: str | None) -> None:
        """A value learned later (the installation token) that must never be recorded."""
        if secret:
            with self._lock:
                self._secrets.append(secret)

    def record(self, kind: str, **data: Any) -> None:
        with self._lock:
            secrets = list(self._secrets)
        with session_scope(self.database_url) as session:
            add(session, kind, data, job_id=self.job_id, installation_id=self.installation_id,
                repo=self.repo, secrets=secrets)


def keep_request(audit_dir: Path, body: dict, secrets: Iterable[str] = ()) -> tuple[str, str]:
    """Store a model request's redacted text; returns (its SHA-256, the file it is kept in)."""
    data = json.dumps(scrub(body, secrets), sort_keys=True, ensure_ascii=False).encode()
    digest = hashlib.sha256(data).hexdigest()
    path = Path(audit_dir).resolve() / REQUESTS / digest[:2] / f"{digest}.json.gz"
    if path.exists():
        os.utime(path)  # used again: retention counts from the latest use
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_bytes(gzip.compress(data, mtime=0))
        tmp.replace(path)
    return digest, str(path)


def export(session: Session, since: datetime, repo: str | None = None,
           job_id: int | None = None) -> Iterator[dict]:
    """Records from ``since`` on, oldest first, as plain dicts (one JSON line each when exported)."""
    query = select(AuditRecord).where(AuditRecord.at >= since).order_by(AuditRecord.id)
    if repo:
        query = query.where(AuditRecord.repo == repo)
    if job_id is not None:
        query = query.where(AuditRecord.job_id == job_id)
    for row in session.scalars(query).yield_per(500):
        yield row.as_dict()


def purge(session: Session, retention_days: int, audit_dir: Path | None = None,
          now: datetime | None = None) -> int:
    """Delete whole records older than the retention period, and stored requests not used since;
    returns how many records went. 0 days keeps everything."""
    if retention_days <= 0:
        return 0
    cutoff = (now or utcnow()) - timedelta(days=retention_days)
    if session.get_bind().dialect.name == "postgresql":  # what the trigger lets through, this transaction only
        session.execute(text("SELECT set_config('qwenfix.audit_purge_before', :cutoff, true)"),
                        {"cutoff": cutoff.isoformat()})
    statement = delete(AuditRecord).where(AuditRecord.at < cutoff).execution_options(
        **{PURGE_OPTION: True, "synchronize_session": False})
    removed = session.execute(statement).rowcount or 0
    session.commit()
    if audit_dir is not None:
        _purge_requests(Path(audit_dir) / REQUESTS, cutoff.timestamp())
    return removed


def _purge_requests(folder: Path, before: float) -> None:
    if not folder.is_dir():
        return
    for path in folder.glob("*/*.json.gz"):
        try:
            if path.stat().st_mtime < before:
                path.unlink()
        except FileNotFoundError:
            continue
