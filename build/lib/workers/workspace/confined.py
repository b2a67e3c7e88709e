"""File operations inside a tree a sandbox could have changed: worktrees and the setup's products.

Everything a sandbox wrote is hostile to the worker, which may run as root (DESIGN rule 10), so no
path is handed to the kernel whole. A path is checked first (relative, no `..`, no NUL), then
walked one name at a time from a directory descriptor the worker opened itself, every step with
O_NOFOLLOW | O_DIRECTORY: a symlink anywhere on the way, there before the call or swapped in during
it, makes the call fail with `Refused` and is never followed. Only regular files are opened (with
O_NONBLOCK, so a fifo cannot hang the worker; fifos, sockets and devices are refused), a file is
written by creating a new one beside it and renaming it over the name (never through a hard link),
and whole trees are walked with two descriptors at most, going back up through `..` only after
checking that it is the directory we came down from. Nothing here relies on permissions.
"""

from __future__ import annotations

import errno
import fcntl
import os
import secrets
import stat
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from workers.workspace.git import WorkspaceError

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
FICLONE = 0x40049409  # ioctl: share the source's blocks (btrfs, XFS); copy-on-write from then on
_LINK_ERRORS = (errno.ELOOP, errno.ENOTDIR, errno.EMLINK)


class Refused(WorkspaceError):
    """A path the worker will not use: it leads through a symlink, out of the tree, or to something
    that is not a regular file or directory."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = path, reason


def names(path: str) -> list[str]:
    """The names along a path relative to the tree ('' and '.' are the tree itself)."""
    if not isinstance(path, str) or "\0" in path:
        raise Refused(repr(path), "not a path")
    if path.startswith("/"):
        raise Refused(path, "absolute paths are refused")
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise Refused(path, "'..' is refused")
    return parts


def kind_of(mode: int) -> str:
    """'dir', 'file', 'link' or 'special' (fifo, socket, device)."""
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISREG(mode):
        return "file"
    return "link" if stat.S_ISLNK(mode) else "special"


def lstat_at(dir_fd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


@contextmanager
def opened(root: Path | str) -> Iterator[int]:
    """A descriptor of the tree's root directory (itself never a symlink)."""
    try:
        fd = os.open(root, DIR_FLAGS)
    except OSError as exc:
        if exc.errno in _LINK_ERRORS:
            raise Refused(str(root), "is a symlink or not a directory") from None
        raise
    try:
        yield fd
    finally:
        os.close(fd)


def _child_dir(dir_fd: int, name: str, where: str, mode: Callable[[], int] | None = None) -> int:
    """Open a directory entry (made first, with ``mode()``, when missing and ``mode`` is given)."""
    try:
        return os.open(name, DIR_FLAGS, dir_fd=dir_fd)
    except FileNotFoundError:
        if mode is None:
            raise
    except OSError as exc:
        if exc.errno in _LINK_ERRORS:
            st = lstat_at(dir_fd, name)
            what = "a symlink" if st is not None and stat.S_ISLNK(st.st_mode) else "not a directory"
            raise Refused(where, f"is {what}") from None
        raise
    try:
        os.mkdir(name, mode(), dir_fd=dir_fd)
        _inherit_owner(dir_fd, name)
    except FileExistsError:
        pass
    return _child_dir(dir_fd, name, where)


def open_dir(top: int, path: Iterable[str], *, create: bool = False, mode: int = 0o755) -> int:
    """A new descriptor of the directory at ``path`` (names) under ``top``; with ``create``, missing
    directories are made (owned like their parent). Raises Refused at a symlink or a non-directory,
    FileNotFoundError when a name is missing."""
    parts = list(path)
    fd = os.open(".", DIR_FLAGS, dir_fd=top)
    try:
        for i, name in enumerate(parts):
            child = _child_dir(fd, name, "/".join(parts[: i + 1]), (lambda: mode) if create else None)
            os.close(fd)
            fd = child
        return fd
    except BaseException:
        os.close(fd)
        raise


def _inherit_owner(dir_fd: int, name: str) -> None:
    """As root, give what we just made to the owner of the directory it is in (the sandbox user)."""
    if os.geteuid() != 0:
        return
    parent = os.fstat(dir_fd)
    os.chown(name, parent.st_uid, parent.st_gid, dir_fd=dir_fd, follow_symlinks=False)


def _open_regular(dir_fd: int, name: str, where: str) -> tuple[int, os.stat_result]:
    """Open a regular file with a single link for reading; anything else is refused, unopened."""
    st = lstat_at(dir_fd, name)
    if st is None:
        raise FileNotFoundError(errno.ENOENT, "no such file", where)
    if not stat.S_ISREG(st.st_mode):
        raise Refused(where, {"dir": "is a directory", "link": "is a symlink"}.get(kind_of(st.st_mode),
                                                                                   "is not a regular file"))
    try:
        fd = os.open(name, FILE_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in _LINK_ERRORS:
            raise Refused(where, "is a symlink") from None
        raise
    opened_st = os.fstat(fd)
    if not stat.S_ISREG(opened_st.st_mode) or (opened_st.st_dev, opened_st.st_ino) != (st.st_dev, st.st_ino):
        os.close(fd)
        raise Refused(where, "changed while it was opened")
    if opened_st.st_nlink > 1:  # another name, maybe outside the tree, shares its data
        os.close(fd)
        raise Refused(where, "is hard-linked to another file")
    return fd, opened_st


def read_file(root: Path | str, path: str, limit: int | None = None) -> bytes:
    """The bytes of the regular file at ``path`` in the tree (at most ``limit`` + 1 of them, so a
    caller can tell the file is longer)."""
    parts = names(path)
    if not parts:
        raise Refused(path or ".", "is a directory")
    with opened(root) as top:
        parent = open_dir(top, parts[:-1])
        try:
            fd, st = _open_regular(parent, parts[-1], path)
        finally:
            os.close(parent)
    with os.fdopen(fd, "rb") as f:
        return f.read() if limit is None else f.read(limit + 1)


def path_kind(root: Path | str, path: str) -> str | None:
    """What is at ``path``: 'dir', 'file', 'link', 'special' or None (missing); Refused when a
    directory on the way is a symlink or not a directory."""
    parts = names(path)
    if not parts:
        return "dir"
    with opened(root) as top:
        try:
            parent = open_dir(top, parts[:-1])
        except FileNotFoundError:
            return None
        try:
            st = lstat_at(parent, parts[-1])
        finally:
            os.close(parent)
    return None if st is None else kind_of(st.st_mode)


def read_link(root: Path | str, path: str) -> str:
    """Where the symlink at ``path`` points (its text; nothing is followed)."""
    parts = names(path)
    with opened(root) as top:
        parent = open_dir(top, parts[:-1])
        try:
            return os.readlink(parts[-1], dir_fd=parent)
        finally:
            os.close(parent)


def list_dir(root: Path | str, path: str = "") -> list[tuple[str, str]]:
    """(name, kind) of each entry of the directory at ``path``."""
    with opened(root) as top:
        fd = open_dir(top, names(path))
        try:
            return _listing(fd)
        finally:
            os.close(fd)


def write_file(root: Path | str, path: str, data: bytes, *, create_parents: bool = False,
               exclusive: bool = False) -> None:
    """Put ``data`` at ``path``: a new file renamed over the old name, so nothing is written through
    a symlink or a hard link. The old file's mode and owner are kept; a new file gets 0644 and its
    directory's owner. Refuses to replace a symlink, a directory or a special file."""
    parts = names(path)
    if not parts:
        raise Refused(path or ".", "is a directory")
    with opened(root) as top:
        parent = open_dir(top, parts[:-1], create=create_parents)
        try:
            _replace(parent, parts[-1], path, data, exclusive)
        finally:
            os.close(parent)


def _replace(dir_fd: int, name: str, where: str, data: bytes, exclusive: bool) -> None:
    old = lstat_at(dir_fd, name)
    if old is not None:
        if exclusive:
            raise FileExistsError(errno.EEXIST, "already exists", where)
        if not stat.S_ISREG(old.st_mode):
            raise Refused(where, {"dir": "is a directory", "link": "is a symlink"}.get(
                kind_of(old.st_mode), "is not a regular file"))
    owner = old or os.fstat(dir_fd)
    temporary = f".qwenfix-{secrets.token_hex(6)}.tmp"
    fd = os.open(temporary, NEW_FILE_FLAGS, 0o600, dir_fd=dir_fd)
    try:
        with os.fdopen(fd, "wb", closefd=False) as f:
            f.write(data)
        os.fchmod(fd, stat.S_IMODE(old.st_mode) & 0o777 if old else 0o644)
        if os.geteuid() == 0:
            os.fchown(fd, owner.st_uid, owner.st_gid)
    except BaseException:
        os.close(fd)
        os.unlink(temporary, dir_fd=dir_fd)
        raise
    os.close(fd)
    try:
        if exclusive:  # link() fails when the name appeared meanwhile; rename() would replace it
            os.link(temporary, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd, follow_symlinks=False)
        else:
            os.rename(temporary, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    finally:
        try:
            os.unlink(temporary, dir_fd=dir_fd)
        except FileNotFoundError:
            pass


# -- whole trees ----------------------------------------------------------------------------------


def _listing(fd: int) -> list[tuple[str, str]]:
    out = []
    with os.scandir(fd) as it:
        for entry in it:  # d_type: no extra system call for the kind
            try:
                if entry.is_symlink():
                    kind = "link"
                elif entry.is_dir(follow_symlinks=False):
                    kind = "dir"
                elif entry.is_file(follow_symlinks=False):
                    kind = "file"
                else:
                    kind = "special"
            except FileNotFoundError:
                continue
            out.append((entry.name, kind))
    return out


def _identity(fd: int) -> tuple[int, int]:
    st = os.fstat(fd)
    return st.st_dev, st.st_ino


def _enter(dir_fd: int, name: str, unlock: bool) -> int | None:
    """Open a child directory (None when it is gone). With ``unlock`` (removal by a non-root worker),
    a directory the sandbox made unreadable is given back to us first."""
    try:
        return os.open(name, DIR_FLAGS, dir_fd=dir_fd)
    except FileNotFoundError:
        return None
    except PermissionError:
        if not unlock:
            raise
    except OSError as exc:
        if exc.errno in _LINK_ERRORS:
            raise Refused(name, "was replaced while the tree was walked") from None
        raise
    handle = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        os.chmod(f"/proc/self/fd/{handle}", 0o700)  # the directory itself, whatever its name is now
    finally:
        os.close(handle)
    return os.open(name, DIR_FLAGS, dir_fd=dir_fd)


Visit = Callable[[int, str, str, str], object]


def walk(top: int, visit: Visit, *, enter: Callable[[int, str], None] | None = None,
         leave: Callable[[int, str, str], None] | None = None, unlock: bool = False) -> None:
    """Depth-first over everything below the directory ``top``; no link is followed.

    ``visit(dir_fd, name, kind, rel)`` is called for each entry (kind as in :func:`kind_of`); a
    directory is entered when it returns true. ``enter(fd, rel)`` gets each directory entered (the
    top as ''), ``leave(parent_fd, name, rel)`` is called once a directory is done. Only the current
    directory and its parent are open at any time, whatever the depth."""
    fd = os.open(".", DIR_FLAGS, dir_fd=top)
    try:
        if enter is not None:
            enter(fd, "")
        frames = [(_identity(fd), iter(_listing(fd)), "", "")]
        while frames:
            _, entries, prefix, _ = frames[-1]
            child, child_rel, child_name = None, "", ""
            for name, kind in entries:
                rel = prefix + name
                if visit(fd, name, kind, rel) and kind == "dir":
                    child = _enter(fd, name, unlock)
                    if child is not None:
                        child_rel, child_name = rel, name
                        break
            if child is not None:
                os.close(fd)
                fd = child
                if enter is not None:
                    enter(fd, child_rel)
                frames.append((_identity(fd), iter(_listing(fd)), child_rel + "/", child_name))
                continue
            _, _, done_prefix, done_name = frames.pop()
            if frames:
                parent = os.open("..", DIR_FLAGS, dir_fd=fd)
                if _identity(parent) != frames[-1][0]:
                    os.close(parent)
                    raise Refused(done_prefix.rstrip("/"), "was moved while the tree was walked")
                os.close(fd)
                fd = parent
                if leave is not None:
                    leave(fd, done_name, done_prefix.rstrip("/"))
    finally:
        os.close(fd)


def remove_tree(path: Path | str) -> None:
    """Delete ``path`` and everything below it, whatever a sandbox left there: symlinks (removed,
    never followed), read-only directories, fifos, any depth. A missing path is fine."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(path)
        return
    with opened(path) as top:
        _empty(top)
    os.rmdir(path)


def remove_at(dir_fd: int, name: str) -> None:
    """Delete the entry ``name`` of an open directory: a file or a link, or a directory and all below."""
    st = lstat_at(dir_fd, name)
    if st is None:
        return
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(name, dir_fd=dir_fd)
        return
    fd = _enter(dir_fd, name, unlock=os.geteuid() != 0)
    if fd is not None:
        try:
            _empty(fd)
        finally:
            os.close(fd)
    os.rmdir(name, dir_fd=dir_fd)


def _empty(top: int) -> None:
    root_user = os.geteuid() == 0

    def visit(dir_fd: int, name: str, kind: str, rel: str) -> bool:
        if kind == "dir":
            return True
        try:
            os.unlink(name, dir_fd=dir_fd)
        except FileNotFoundError:
            pass
        return False

    def enter(fd: int, rel: str) -> None:
        if not root_user:  # a directory the sandbox made read-only: ours to change back
            mode = os.fstat(fd).st_mode
            if mode & 0o700 != 0o700:
                os.fchmod(fd, stat.S_IMODE(mode) | 0o700)

    def leave(parent_fd: int, name: str, rel: str) -> None:
        os.rmdir(name, dir_fd=parent_fd)

    walk(top, visit, enter=enter, leave=leave, unlock=not root_user)


def remove_special_files(root: Path | str, skip: Iterable[str] = ()) -> list[str]:
    """Delete fifos, sockets and devices under ``root`` but in the directories ``skip`` (git leaves
    them; nothing should use them)."""
    removed: list[str] = []
    skipped = {".git", *skip}

    def visit(dir_fd: int, name: str, kind: str, rel: str) -> bool:
        if kind == "special":
            os.unlink(name, dir_fd=dir_fd)
            removed.append(rel)
        return kind == "dir" and rel not in skipped

    with opened(root) as top:
        walk(top, visit)
    return removed


def files(root: Path | str) -> set[str]:
    """Relative paths of the regular files and symlinks under ``root``, outside the top ``.git``."""
    found: set[str] = set()

    def visit(dir_fd: int, name: str, kind: str, rel: str) -> bool:
        if kind in ("file", "link") and rel != ".git":
            found.add(rel)
        return kind == "dir" and rel != ".git"

    with opened(root) as top:
        walk(top, visit)
    return found


def usage(root: Path | str) -> int:
    """Bytes the tree holds on disk (allocated blocks, each hard-linked file counted once)."""
    total, seen = 0, set()

    def visit(dir_fd: int, name: str, kind: str, rel: str) -> bool:
        nonlocal total
        st = lstat_at(dir_fd, name)
        if st is not None:
            if st.st_nlink > 1 and kind != "dir":
                if (st.st_dev, st.st_ino) in seen:
                    return False
                seen.add((st.st_dev, st.st_ino))
            total += st.st_blocks * 512
        return kind == "dir"

    with opened(root) as top:
        walk(top, visit)
    return total


def linked_from_outside(root: Path | str) -> list[str]:
    """Files whose data also has a name outside the tree (more hard links than names in it)."""
    names_in_tree: dict[tuple[int, int], list[str]] = {}
    links: dict[tuple[int, int], int] = {}

    def visit(dir_fd: int, name: str, kind: str, rel: str) -> bool:
        if name == ".git":  # git never puts a repository's own files into a patch
            return False
        if kind == "file":
            st = lstat_at(dir_fd, name)
            if st is not None and st.st_nlink > 1:
                key = (st.st_dev, st.st_ino)
                names_in_tree.setdefault(key, []).append(rel)
                links[key] = st.st_nlink
        return kind == "dir"

    with opened(root) as top:
        walk(top, visit)
    return sorted(rel for key, rels in names_in_tree.items() if len(rels) < links[key] for rel in rels)


def chown_tree(root: Path | str, uid: int, gid: int) -> None:
    """Give the tree to ``uid:gid``: directories, regular files with a single link, symlinks
    themselves. A file with other hard links is left alone (its other name may be outside)."""

    def enter(fd: int, rel: str) -> None:
        st = os.fstat(fd)
        if (st.st_uid, st.st_gid) != (uid, gid):
            os.fchown(fd, uid, gid)

    def visit(dir_fd: int, name: str, kind: str, rel: str) -> bool:
        if kind == "dir":
            return True
        st = lstat_at(dir_fd, name)
        if st is None or (st.st_uid, st.st_gid) == (uid, gid):
            return False
        try:
            if kind == "file":
                fd, _ = _open_regular(dir_fd, name, rel)
                try:
                    os.fchown(fd, uid, gid)
                finally:
                    os.close(fd)
            else:
                os.chown(name, uid, gid, dir_fd=dir_fd, follow_symlinks=False)
        except (FileNotFoundError, Refused):
            pass
        return False

    with opened(root) as top:
        walk(top, visit, enter=enter)


# -- copying between trees ------------------------------------------------------------------------


class _DirPath:
    """Descriptors of one directory path in a tree, kept while consecutive files share it."""

    def __init__(self, top: int) -> None:
        self.parts: list[str] = []
        self.fds = [top]

    def at(self, parts: list[str], mode_for: Callable[[list[str]], int] | None = None) -> int:
        """The directory at ``parts``; with ``mode_for``, missing ones are made with its mode."""
        keep = 0
        while keep < min(len(parts), len(self.parts)) and parts[keep] == self.parts[keep]:
            keep += 1
        while len(self.parts) > keep:
            self.parts.pop()
            os.close(self.fds.pop())
        for name in parts[keep:]:
            here = self.parts + [name]
            mode = (lambda here=here: mode_for(here)) if mode_for is not None else None
            self.fds.append(_child_dir(self.fds[-1], name, "/".join(here), mode))
            self.parts.append(name)
        return self.fds[-1]

    def close(self) -> None:
        while len(self.fds) > 1:
            os.close(self.fds.pop())
        self.parts = []


def copy_files(source: Path | str, target: Path | str, paths: Iterable[str]) -> list[str]:
    """Copy the regular files and symlinks (as symlinks) at ``paths`` from one tree to the same
    place in another, making the directories on the way (with the source's permissions). Links are
    never followed in either tree, names that already exist in the target are kept, special files
    are not copied. The data is shared copy-on-write where the filesystem can (reflink), else copied
    in the kernel. Returns "path: why" for each path not copied."""
    skipped: list[str] = []
    with opened(source) as src_top, opened(target) as dst_top:
        sources, targets = _DirPath(src_top), _DirPath(dst_top)

        def source_mode(parts: list[str]) -> int:
            st = os.fstat(sources.at(parts))
            return stat.S_IMODE(st.st_mode) & 0o777 | 0o700  # the worker keeps write and search

        clone = [True]
        try:
            for rel in sorted(paths):
                try:
                    parts = names(rel)
                    if not parts:
                        raise Refused(rel, "is the tree itself")
                    dst_dir = targets.at(parts[:-1], source_mode)
                    _copy_entry(sources.at(parts[:-1]), dst_dir, parts[-1], rel, clone)
                except Refused as exc:
                    skipped.append(f"{rel}: {exc.reason}" if exc.path == rel else f"{rel}: {exc}")
                except FileExistsError:
                    skipped.append(f"{rel}: already exists")
                except FileNotFoundError:
                    skipped.append(f"{rel}: missing")
        finally:
            sources.close()
            targets.close()
    return skipped


def _copy_entry(src_dir: int, dst_dir: int, name: str, rel: str, clone: list[bool]) -> None:
    st = lstat_at(src_dir, name)
    if st is None:
        raise FileNotFoundError(errno.ENOENT, "no longer in the source", rel)
    if stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(name, dir_fd=src_dir), name, dir_fd=dst_dir)
        return
    if not stat.S_ISREG(st.st_mode):
        raise Refused(rel, "is not a regular file")
    src = os.open(name, FILE_FLAGS, dir_fd=src_dir)
    try:
        got = os.fstat(src)
        if not stat.S_ISREG(got.st_mode) or (got.st_dev, got.st_ino) != (st.st_dev, st.st_ino):
            raise Refused(rel, "changed while it was copied")
        dst = os.open(name, NEW_FILE_FLAGS, 0o600, dir_fd=dst_dir)
        try:
            _copy_data(src, dst, got.st_size, clone)
            os.fchmod(dst, stat.S_IMODE(got.st_mode) & 0o777)  # never setuid, setgid or sticky
            os.utime(dst, ns=(got.st_atime_ns, got.st_mtime_ns))  # make, pip and .pyc compare mtimes
        except BaseException:
            os.close(dst)
            os.unlink(name, dir_fd=dst_dir)
            raise
        os.close(dst)
    finally:
        os.close(src)


def _copy_data(src: int, dst: int, size: int, clone: list[bool]) -> None:
    if clone[0]:
        try:
            fcntl.ioctl(dst, FICLONE, src)
            return
        except OSError:
            clone[0] = False  # this filesystem cannot: do not ask again during this copy
    copied = 0
    while copied < size:
        try:
            n = os.copy_file_range(src, dst, size - copied)
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL):
                raise
            n = os.sendfile(dst, src, None, size - copied)
        if n == 0:  # the source shrank meanwhile
            break
        copied += n
