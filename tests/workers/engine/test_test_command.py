"""Detecting the test command reads the pull request's files, never what its symlinks point to."""

from __future__ import annotations

from workers.engine.test_command import detect_test_command


def test_markers_are_found_in_regular_files(tmp_path):
    (tmp_path / "package.json").write_text('{"scripts": {"test": "jest"}}')
    assert detect_test_command(tmp_path) == "npm test"
    (tmp_path / "package.json").unlink()
    (tmp_path / "Makefile").write_text("build:\n\ttrue\ntest:\n\tpytest\n")
    assert detect_test_command(tmp_path) == "make test"


def test_symlinks_out_of_the_checkout_are_not_read(tmp_path):
    """Fails on main: the checkout's `package.json -> /host/...` was followed and read as the worker."""
    host, repo = tmp_path / "host", tmp_path / "repo"
    host.mkdir()
    repo.mkdir()
    (host / "package.json").write_text('{"scripts": {"test": "jest"}}')
    (repo / "package.json").symlink_to(host / "package.json")
    (repo / "Makefile").symlink_to("/dev/zero")  # would be read forever
    (repo / "tests").symlink_to(host)
    assert detect_test_command(repo) is None
