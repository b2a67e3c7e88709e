"""The audit trail is append-only through every path the app has to the database — and the database's
own triggers refuse raw SQL; retention deletes whole old records; export filters by time and repository."""

from __future__ import annotations

import gzip
import json
import os
import time
from datetime import timedelta

import pytest
from sqlalchemy import delete, text, update

from core import audit
from core.db.models import AppendOnly, AuditRecord, utcnow
from core.db.session import engine_for, session_scope


def _one(database_url: str, **data) -> int:
    with session_scope(database_url) as session:
        row = audit.add(session, "trigger", data or {"actor": "alice"}, job_id=1, repo="octo/calc")
        session.flush()
        return row.id


def test_a_record_cannot_be_changed_or_removed_through_the_apps_database_layer(database_url):
    record_id = _one(database_url)
    with session_scope(database_url) as session:
        session.get(AuditRecord, record_id).data = {"actor": "mallory"}
        with pytest.raises(AppendOnly):
            session.flush()
        session.rollback()
        session.delete(session.get(AuditRecord, record_id))
        with pytest.raises(AppendOnly):
            session.flush()
        session.rollback()
        with pytest.raises(AppendOnly):
            session.execute(update(AuditRecord).values(kind="model"))
        with pytest.raises(AppendOnly):
            session.execute(delete(AuditRecord).where(AuditRecord.id == record_id))
    with engine_for(database_url).connect() as conn, pytest.raises(AppendOnly):
        conn.execute(AuditRecord.__table__.delete())
    with session_scope(database_url) as session:
        assert session.get(AuditRecord, record_id).data == {"actor": "alice"}


def test_the_database_refuses_raw_sql_that_changes_a_record(database_url):
    _one(database_url)
    for statement in ("UPDATE audit_records SET kind = 'model'", "DELETE FROM audit_records"):
        with pytest.raises(Exception, match="append-only"), engine_for(database_url).begin() as conn:
            conn.execute(text(statement))
    with engine_for(database_url).connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM audit_records")).scalar() == 1


def test_retention_deletes_whole_old_records_and_unused_request_texts(database_url, tmp_path):
    fresh = _one(database_url)
    with session_scope(database_url) as session:
        session.add(AuditRecord(kind="model", data={"model": "m"}, at=utcnow() - timedelta(days=40)))
    old_digest, old_file = audit.keep_request(tmp_path, {"messages": [{"content": "old"}]})
    _, new_file = audit.keep_request(tmp_path, {"messages": [{"content": "new"}]})
    past = time.time() - 40 * 86400
    os.utime(old_file, (past, past))
    with session_scope(database_url) as session:
        assert audit.purge(session, 0) == 0  # 0 days: keep everything
        assert audit.purge(session, 30, tmp_path) == 1
    with session_scope(database_url) as session:
        assert [r["id"] for r in audit.export(session, utcnow() - timedelta(days=400))] == [fresh]
    assert not os.path.exists(old_file) and os.path.exists(new_file)


def test_export_filters_by_time_repository_and_job_and_keeps_request_texts_redacted(database_url, tmp_path):
    with session_scope(database_url) as session:
        audit.add(session, "github", {"method": "POST", "path": "/repos/octo/calc/issues/7/comments"},
                  job_id=1, repo="octo/calc")
        audit.add(session, "sandbox", {"argv": ["sh", "-c", "echo ghs_secrettoken123"]}, job_id=2,
                  repo="octo/other", secrets=["ghs_secrettoken123"])
    with session_scope(database_url) as session:
        everything = list(audit.export(session, utcnow() - timedelta(days=1)))
        assert [r["repo"] for r in everything] == ["octo/calc", "octo/other"]
        assert "ghs_secrettoken123" not in json.dumps(everything)
        assert [r["job_id"] for r in audit.export(session, utcnow() - timedelta(days=1), repo="octo/other")] == [2]
        assert list(audit.export(session, utcnow() + timedelta(minutes=1))) == []
    digest, path = audit.keep_request(tmp_path, {"messages": [{"content": "key sk-live-abcdef123456"}]},
                                      ["sk-live-abcdef123456"])
    assert path.endswith(f"{digest}.json.gz")
    assert b"sk-live-abcdef123456" not in gzip.decompress(open(path, "rb").read())


def test_unknown_kinds_are_refused():
    with pytest.raises(ValueError):
        audit.add(None, "gossip", {})  # type: ignore[arg-type]
