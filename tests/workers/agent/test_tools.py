"""The agent's tools: contracts, path confinement, the syntax gate, and `run` in the real sandbox."""

from __future__ import annotations

import os
import re

import pytest

from workers.agent.tools import MAX_MATCHES, SCHEMAS, TOOL_SCHEMAS, Toolbox


@pytest.fixture
def box(tmp_path):
    root = tmp_path / "repo"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "calc.py").write_text("def add(a, b):\n    return a - b\n")
    (root / "long.txt").write_text("".join(f"line {i}\n" for i in range(1, 451)))
    return Toolbox(root, sandbox=None)


def test_every_tool_has_a_schema_and_its_docstring_as_description():
    assert set(SCHEMAS) == {"list_dir", "read_file", "search", "edit_file", "create_file", "run", "finish"}
    for schema in TOOL_SCHEMAS:
        assert "Args:" in schema["function"]["description"]


def test_read_file_shows_a_numbered_window_and_the_total(box):
    out = box.call("read_file", {"path": "long.txt"})
    assert out.splitlines()[0] == "long.txt: lines 1-200 of 450; continue with start_line=201"
    assert out.splitlines()[1] == "    1  line 1" and len(out.splitlines()) == 201
    out = box.call("read_file", {"path": "long.txt", "start_line": "440", "end_line": "999"})
    assert out.splitlines()[0] == "long.txt: lines 440-450 of 450" and out.endswith("  450  line 450")
    assert "is a directory" in box.call("read_file", {"path": "pkg"})
    (box.workspace / "blob.bin").write_bytes(b"\0\1\2")
    assert "binary file" in box.call("read_file", {"path": "blob.bin"})


def test_list_dir(box):
    assert box.call("list_dir", {}) == "long.txt\npkg/"
    assert "no such file" in box.call("list_dir", {"path": "nope"})


def test_search_caps_matches_with_ripgrep_and_without(box):
    out = box.call("search", {"pattern": r"line \d+"})
    assert out.count("\n") == MAX_MATCHES and "more matches not shown" in out
    assert box.call("search", {"pattern": "return a", "path": "pkg"}) == "pkg/calc.py:2:    return a - b"
    assert box.call("search", {"pattern": "return a", "path": "pkg/calc.py"}) == "pkg/calc.py:2:    return a - b"
    assert box._python_search(re.compile("return a"), box.workspace) == ["pkg/calc.py:2:    return a - b"]
    assert "invalid regular expression" in box.call("search", {"pattern": "("})
    assert box.call("search", {"pattern": "nothing-like-this"}) == "no matches"


def test_search_does_not_follow_symlinks_out(box, tmp_path):
    (tmp_path / "outside.txt").write_text("host secret\n")
    (box.workspace / "link.txt").symlink_to(tmp_path / "outside.txt")
    (box.workspace / "linkdir").symlink_to(tmp_path)
    assert "host secret" not in box.call("search", {"pattern": "secret"})
    assert box._python_search(re.compile("secret"), box.workspace.resolve()) == []


def test_edit_file_replaces_exactly_one_occurrence(box):
    out = box.call("edit_file", {"path": "pkg/calc.py", "old": "a - b", "new": "a + b"})
    assert out.startswith("pkg/calc.py: replaced 1 occurrence") and "    2      return a + b" in out
    (box.workspace / "dup.txt").write_text("x\nx\n")
    assert "appears 2 times" in box.call("edit_file", {"path": "dup.txt", "old": "x", "new": "y"})
    assert "was not found" in box.call("edit_file", {"path": "dup.txt", "old": "z", "new": "y"})
    assert "`old` is empty" in box.call("edit_file", {"path": "dup.txt", "old": "", "new": "y"})
    assert box.edits == ["edited pkg/calc.py"]


def test_create_file_refuses_to_overwrite_unless_asked(box):
    assert box.call("create_file", {"path": "new/mod.py", "content": "x = 1\n"}).startswith("new/mod.py: written")
    assert "already exists" in box.call("create_file", {"path": "new/mod.py", "content": "x = 2\n"})
    assert "written" in box.call("create_file", {"path": "new/mod.py", "content": "x = 2\n", "overwrite": "true"})
    assert (box.workspace / "new" / "mod.py").read_text() == "x = 2\n"
    assert box.edits == ["created new/mod.py", "overwrote new/mod.py"]


def test_python_syntax_gate_rolls_back_and_says_where(box):
    out = box.call("edit_file", {"path": "pkg/calc.py", "old": "return a - b", "new": "return (a +"})
    assert "rolled back" in out and "line 2" in out
    assert (box.workspace / "pkg" / "calc.py").read_text() == "def add(a, b):\n    return a - b\n"
    out = box.call("create_file", {"path": "bad.py", "content": "def f(:\n"})
    assert "rolled back" in out and "line 1" in out and not (box.workspace / "bad.py").exists()
    assert box.edits == []


def test_a_file_that_was_already_broken_may_be_repaired_in_steps(box):
    (box.workspace / "broken.py").write_text("def f(:\n    return 1\ndef g(:\n    return 2\n")
    out = box.call("edit_file", {"path": "broken.py", "old": "def f(:", "new": "def f():"})
    assert "still does not parse: line 3" in out
    assert "replaced 1 occurrence" in box.call("edit_file", {"path": "broken.py", "old": "def g(:", "new": "def g():"})


@pytest.mark.parametrize("path, message", [
    ("../outside.txt", "'..' is refused"),
    ("pkg/../../outside.txt", "'..' is refused"),
    ("/etc/passwd", "absolute paths are refused"),
    ("~/.ssh/id_rsa", "absolute paths are refused"),
    ("link.txt", "leads outside the repository"),
    ("linkdir/outside.txt", "leads outside the repository"),
    ("dangling", "leads outside the repository"),
    (".git/config", "git metadata is off limits"),
])
def test_paths_outside_the_workspace_are_refused_by_every_file_tool(box, tmp_path, path, message):
    (tmp_path / "outside.txt").write_text("host secret\n")
    (box.workspace / "link.txt").symlink_to(tmp_path / "outside.txt")
    (box.workspace / "linkdir").symlink_to(tmp_path)
    (box.workspace / "dangling").symlink_to(tmp_path / "not-yet")
    for name, args in [("read_file", {}), ("list_dir", {}), ("search", {"pattern": "x"}),
                       ("edit_file", {"old": "host", "new": "pwned"}), ("create_file", {"content": "pwned"})]:
        out = box.call(name, {"path": path, **args})
        assert out.startswith("error:") and message in out, (name, out)
    assert (tmp_path / "outside.txt").read_text() == "host secret\n" and not (tmp_path / "not-yet").exists()


def test_links_and_special_files_the_sandbox_left_are_never_followed_or_opened(box, tmp_path):
    """A sandbox (or the pull request) leaves a hard link to a host file, a fifo, and symlinks that
    stay inside. Fails on main: read_file showed the host file through the hard link, edit_file
    rewrote the host file in place, and read_file on the fifo blocked the worker forever."""
    (tmp_path / "outside.txt").write_text("host secret\n")
    os.link(tmp_path / "outside.txt", box.workspace / "hard.txt")
    os.mkfifo(box.workspace / "fifo")
    (box.workspace / "docs").symlink_to("pkg")
    (box.workspace / "calc.py").symlink_to("pkg/calc.py")
    out = box.call("read_file", {"path": "hard.txt"})
    assert out.startswith("error:") and "hard-linked" in out and "host secret" not in out
    out = box.call("edit_file", {"path": "hard.txt", "old": "host", "new": "pwned"})
    assert out.startswith("error:") and "hard-linked" in out
    out = box.call("create_file", {"path": "hard.txt", "content": "replaced\n", "overwrite": True})
    assert out.startswith("error:")
    assert "not a regular file" in box.call("read_file", {"path": "fifo"})
    assert box.call("search", {"pattern": "secret"}) == "no matches"
    assert box._python_search(re.compile("secret"), box.workspace) == []
    out = box.call("read_file", {"path": "docs/calc.py"})
    assert out == "error: docs/calc.py: docs is a symlink to pkg; refused, use pkg/calc.py"
    out = box.call("edit_file", {"path": "calc.py", "old": "a - b", "new": "a + b"})
    assert out == "error: calc.py: calc.py is a symlink to pkg/calc.py; refused, use pkg/calc.py"
    assert "docs -> pkg" in box.call("list_dir", {}) and "fifo" in box.call("list_dir", {})
    assert (tmp_path / "outside.txt").read_text() == "host secret\n"


def test_edits_replace_the_file_keeping_its_mode(box):
    script = box.workspace / "run.sh"
    script.write_text("echo one\n")
    script.chmod(0o755)
    assert "replaced 1 occurrence" in box.call("edit_file", {"path": "run.sh", "old": "one", "new": "two"})
    assert script.read_text() == "echo two\n" and script.stat().st_mode & 0o777 == 0o755


def test_bad_calls_come_back_as_text(box):
    assert box.call("nope", {}).startswith("error: unknown tool 'nope'")
    assert "needs path" in box.call("read_file", {})
    assert "not a valid JSON object" in box.call("run", {"__unparsed__": "{"})
    assert "not available" in box.call("run", {"command": "ls"})
    assert box.call("finish", {"summary": 42}) == "finished" and box.finished and box.summary == "42"


@pytest.mark.docker
def test_run_executes_in_the_sandbox_with_a_time_limit(tmp_path, sandbox_factory):
    root = tmp_path / "repo"
    root.mkdir()
    (root / "hello.py").write_text("print('hello from', __import__('os').getcwd())\n")
    box = Toolbox(root, sandbox_factory(root), run_timeout_s=3)
    out = box.call("run", {"command": "python3 hello.py; exit 3"})
    assert out.startswith("[exit code 3,") and "hello from /workspace" in out
    out = box.call("run", {"command": "sleep 30", "timeout": "60"})  # capped at run_timeout_s
    assert out.startswith("[timed out after 3 s")
