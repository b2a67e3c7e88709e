"""Files a sandbox could have written are read without following links, waiting on fifos or
reading without bound."""

from __future__ import annotations

import os

from workers.workspace.sandbox_files import read_sandbox_file


def test_a_regular_file_within_the_limit_is_read(tmp_path):
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "r.xml").write_bytes(b"<testsuites/>")
    assert read_sandbox_file(tmp_path, "reports/r.xml", 100) == b"<testsuites/>"
    assert read_sandbox_file(tmp_path, "reports/r.xml", 5) is None  # too large
    assert read_sandbox_file(tmp_path, "reports/missing.xml", 100) is None


def test_links_fifos_and_escaping_names_are_not_read(tmp_path):
    secret = tmp_path / "host-secret"
    secret.write_text("the worker's file")
    root = tmp_path / "worktree"
    (root / "real").mkdir(parents=True)
    (root / "link.xml").symlink_to(secret)
    (root / "linked-dir").symlink_to(tmp_path)  # a symlinked parent
    os.mkfifo(root / "fifo.xml")  # opening it for reading would block the worker
    assert read_sandbox_file(root, "link.xml", 100) is None
    assert read_sandbox_file(root, "linked-dir/host-secret", 100) is None
    assert read_sandbox_file(root, "fifo.xml", 100) is None
    assert read_sandbox_file(root, "../host-secret", 100) is None
    assert read_sandbox_file(root, str(secret), 100) is None
    assert read_sandbox_file(root, "real", 100) is None  # a directory
