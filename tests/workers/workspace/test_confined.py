"""File operations inside a tree a sandbox controls: every way a sandbox could point the worker
outside the tree (symlinked parents, swaps between check and use, hard links to host files, `..`,
fifos, devices, sockets) is refused or neutralised, and the host file is never touched."""

from __future__ import annotations

import os
import socket
import stat
import threading
import time
from pathlib import Path

import pytest

from workers.sandbox.docker import chown_tree
from workers.workspace import confined
from workers.workspace.confined import Refused


@pytest.fixture
def host(tmp_path: Path) -> Path:
    """A directory of the host that no operation on the tree may change or reveal."""
    root = tmp_path / "host"
    root.mkdir()
    (root / "secret.txt").write_text("host secret\n")
    return root


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "mod.py").write_text("x = 1\n")
    return root


def untouched(host: Path) -> bool:
    st = (host / "secret.txt").stat()
    return (sorted(os.listdir(host)) == ["secret.txt"] and (host / "secret.txt").read_text() == "host secret\n"
            and (st.st_uid, st.st_gid) == (os.getuid(), os.getgid()) and stat.S_IMODE(st.st_mode) == 0o644)


def mkfifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def mksocket(path: Path) -> Path:
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(path))
    sock.close()
    return path


def mknull(path: Path) -> Path:
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # what /dev/null is
    except PermissionError:
        pytest.skip("cannot make device nodes here")
    return path


@pytest.mark.parametrize("path, reason", [
    ("../host/secret.txt", "'..' is refused"),
    ("pkg/../../host/secret.txt", "'..' is refused"),
    ("/etc/passwd", "absolute paths are refused"),
    ("pkg/\0x", "not a path"),
])
def test_paths_that_name_something_outside_are_refused_before_any_system_call(tree, path, reason):
    with pytest.raises(Refused, match=reason):
        confined.read_file(tree, path)
    with pytest.raises(Refused, match=reason):
        confined.write_file(tree, path, b"pwned", create_parents=True)


def test_reading_never_follows_a_link_nor_opens_a_special_file(tree, host):
    (tree / "link.txt").symlink_to(host / "secret.txt")
    (tree / "linkdir").symlink_to(host)
    os.link(host / "secret.txt", tree / "hardlink.txt")
    mkfifo(tree / "fifo")  # opening it for reading would block forever
    mksocket(tree / "sock")
    mknull(tree / "null")
    assert confined.read_file(tree, "pkg/mod.py") == b"x = 1\n"
    for path, reason in [("link.txt", "is a symlink"), ("linkdir/secret.txt", "linkdir: is a symlink"),
                         ("hardlink.txt", "is hard-linked"), ("fifo", "not a regular file"),
                         ("sock", "not a regular file"), ("null", "not a regular file"), ("pkg", "is a directory")]:
        with pytest.raises(Refused, match=reason):
            confined.read_file(tree, path)
    with pytest.raises(Refused, match="is a symlink"):
        confined.list_dir(tree, "linkdir")
    assert dict(confined.list_dir(tree)) == {"pkg": "dir", "link.txt": "link", "linkdir": "link", "hardlink.txt": "file",
                                             "fifo": "special", "sock": "special", "null": "special"}
    assert untouched(host)


def test_writing_replaces_the_name_never_what_it_points_to(tree, host):
    (tree / "linkdir").symlink_to(host)
    (tree / "link.txt").symlink_to(host / "secret.txt")
    os.link(host / "secret.txt", tree / "hardlink.txt")
    mkfifo(tree / "fifo")
    with pytest.raises(Refused, match="linkdir: is a symlink"):
        confined.write_file(tree, "linkdir/secret.txt", b"pwned")
    with pytest.raises(Refused, match="linkdir: is a symlink"):
        confined.write_file(tree, "linkdir/new/file.txt", b"pwned", create_parents=True)
    with pytest.raises(Refused, match="is a symlink"):
        confined.write_file(tree, "link.txt", b"pwned")
    with pytest.raises(Refused, match="not a regular file"):
        confined.write_file(tree, "fifo", b"pwned")
    confined.write_file(tree, "hardlink.txt", b"new content\n")  # a new file takes the name
    assert (tree / "hardlink.txt").read_text() == "new content\n" and (tree / "hardlink.txt").stat().st_nlink == 1
    assert untouched(host)


def test_writing_keeps_the_mode_refuses_to_clobber_when_asked_and_leaves_no_temporary(tree):
    script = tree / "run.sh"
    script.write_text("echo 1\n")
    script.chmod(0o750)
    confined.write_file(tree, "run.sh", b"echo 2\n")
    assert script.read_text() == "echo 2\n" and stat.S_IMODE(script.stat().st_mode) == 0o750
    with pytest.raises(FileExistsError):
        confined.write_file(tree, "run.sh", b"echo 3\n", exclusive=True)
    confined.write_file(tree, "new/deep/file.py", b"y = 2\n", create_parents=True, exclusive=True)
    assert (tree / "new/deep/file.py").read_text() == "y = 2\n"
    assert sorted(p.name for p in tree.rglob(".qwenfix-*")) == []


def test_a_directory_swapped_for_a_symlink_between_listing_and_entering_is_not_followed(tree, host):
    def visit(dir_fd, name, kind, rel):
        if rel == "pkg":  # the sandbox wins the race: `pkg` becomes a link to the host
            os.rename(tree / "pkg", tree / "pkg.moved")
            os.symlink(host, tree / "pkg")
        return kind == "dir"

    with confined.opened(tree) as top, pytest.raises(Refused, match="replaced while the tree was walked"):
        confined.walk(top, visit)
    assert untouched(host)


def test_chown_tree_gives_the_tree_away_and_nothing_else(tree, host):
    (tree / "link.txt").symlink_to(host / "secret.txt")
    (tree / "linkdir").symlink_to(host)
    os.link(host / "secret.txt", tree / "hardlink.txt")
    mkfifo(tree / "fifo")
    mknull(tree / "null")
    if os.geteuid() != 0:
        pytest.skip("only root changes owners")
    confined.chown_tree(tree, 4321, 4321)
    assert (tree / "pkg" / "mod.py").stat().st_uid == 4321 and (tree / "pkg").stat().st_uid == 4321
    assert os.lstat(tree / "link.txt").st_uid == 4321 and (tree / "fifo").stat().st_uid == 4321
    assert untouched(host)  # the hard link's data is the host file's: left alone


def test_chown_tree_under_a_racing_sandbox_never_reaches_the_host(tree, host):
    """A sandbox flipping `pkg` between a directory and a link to the host while the worker gives
    the workspace back to it. Fails on main: `chown_tree` walked path strings with os.walk, which
    followed the link when it lost the race (the host file was chowned within a second here)."""
    if os.geteuid() != 0:
        pytest.skip("only root changes owners")
    for i in range(200):
        (tree / "pkg" / f"f{i}").write_text("x")
    stop = threading.Event()

    def flip():
        while not stop.is_set():
            os.rename(tree / "pkg", tree / "pkg.real")
            os.symlink(host, tree / "pkg")
            time.sleep(0)
            os.unlink(tree / "pkg")
            os.rename(tree / "pkg.real", tree / "pkg")

    racer = threading.Thread(target=flip)
    racer.start()
    try:
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            try:
                chown_tree(tree, 4321, 4321)  # what every sandbox start and refresh does as root
            except (Refused, FileNotFoundError):
                pass
    finally:
        stop.set()
        racer.join()
    assert untouched(host)


def test_remove_tree_removes_whatever_the_sandbox_left_and_only_that(tmp_path, host):
    root = tmp_path / "slot"
    (root / "ro" / "inner").mkdir(parents=True)
    (root / "ro" / "inner" / "f").write_text("x")
    (root / "linkdir").symlink_to(host)
    (root / "link.txt").symlink_to(host / "secret.txt")
    os.link(host / "secret.txt", root / "hardlink.txt")
    mkfifo(root / "fifo")
    mksocket(root / "sock")
    mknull(root / "null")
    os.chmod(root / "ro" / "inner", 0o000)
    os.chmod(root / "ro", 0o500)
    deep = os.open(root, confined.DIR_FLAGS)
    for _ in range(3000):  # deeper than any fd budget or recursion limit would allow
        os.mkdir("d", dir_fd=deep)
        child = os.open("d", confined.DIR_FLAGS, dir_fd=deep)
        os.close(deep)
        deep = child
    os.close(deep)
    confined.remove_tree(root)
    assert not root.exists() and untouched(host)
    confined.remove_tree(root)  # already gone: fine
    (tmp_path / "alink").symlink_to(host)
    confined.remove_tree(tmp_path / "alink")  # a link is removed, not followed
    assert not (tmp_path / "alink").is_symlink() and untouched(host)


def test_special_files_are_removed_and_usage_counts_blocks_once(tree):
    mkfifo(tree / "pkg" / "fifo")
    mksocket(tree / "sock")
    mknull(tree / "pkg" / "null")
    assert sorted(confined.remove_special_files(tree)) == ["pkg/fifo", "pkg/null", "sock"]
    assert confined.files(tree) == {"pkg/mod.py"}
    before = confined.usage(tree)
    (tree / "big").write_bytes(b"\1" * (1 << 20))
    os.link(tree / "big", tree / "big-again")
    with open(tree / "sparse", "wb") as f:
        f.truncate(1 << 30)  # a 1 GiB hole holds no disk
    grown = confined.usage(tree) - before
    assert (1 << 20) <= grown < (1 << 20) + 64 * 1024


def test_files_linked_from_outside_are_found(tree, host):
    os.link(host / "secret.txt", tree / "pkg" / "stolen.txt")
    (tree / "a").write_text("a")
    os.link(tree / "a", tree / "b")  # both names inside: fine
    assert confined.linked_from_outside(tree) == ["pkg/stolen.txt"]


def test_copy_files_never_follows_a_link_and_copies_data_not_inodes(tmp_path, host):
    source, target = tmp_path / "setup", tmp_path / "next"
    (source / "link").mkdir(parents=True)
    (source / "link" / "x").write_text("pwned\n")
    (source / "bin").mkdir()
    (source / "bin" / "check").write_text("python3 -m pytest\n")
    (source / "bin" / "check").chmod(0o4755)  # setuid: never carried
    os.utime(source / "bin" / "check", ns=(1_000_000_000, 1_000_000_000))
    (source / "bin" / "py").symlink_to("/usr/bin/python3")
    mkfifo(source / "bin" / "fifo")
    mknull(source / "bin" / "null")
    target.mkdir()
    (target / "link").symlink_to(host)  # the pull request's own `link -> /host/dir`
    (target / "bin").mkdir()
    (target / "bin" / "py").write_text("already here\n")
    skipped = confined.copy_files(source, target, ["link/x", "bin/check", "bin/py", "bin/fifo", "bin/null",
                                                   "../host/y"])
    assert sorted(skipped) == ["../host/y: '..' is refused", "bin/fifo: is not a regular file",
                               "bin/null: is not a regular file", "bin/py: already exists", "link/x: link: is a symlink"]
    assert untouched(host)
    copied = target / "bin" / "check"
    assert copied.read_text() == "python3 -m pytest\n" and stat.S_IMODE(copied.stat().st_mode) == 0o755
    assert copied.stat().st_mtime_ns == 1_000_000_000 and copied.stat().st_nlink == 1
    copied.write_text("exit 0  # poisoned\n")  # a later stage rewrites its copy in place
    assert (source / "bin" / "check").read_text() == "python3 -m pytest\n"
    assert (target / "bin" / "py").read_text() == "already here\n"
