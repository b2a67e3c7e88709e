"""The repository's setup phase (`repair.setup`, e.g. `pip install -e .[test]`), run once per job.

It runs in its own worktree and sandbox — the only sandbox that may get network, and only when the
operator allows it — before anything from the model runs. Every worktree handed out afterwards
receives the files setup created, so the candidates and their validation reuse one setup, yet no
stage can change what a later one runs: the setup worktree is never given to a sandbox again, and
each stage gets copies, never hard links (see SetupProducts). Those files are never part of a patch.

A sandbox chose their names and could have made any of them a link, so nothing here follows one
(workers/workspace/confined.py): a product whose directory is a symlink in the receiving worktree
(e.g. the pull request's `link -> /host/dir`) is not carried.
"""

from __future__ import annotations

import logging
import os
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from workers.engine.stations import Checkout, StartSandbox, workdir
from workers.sandbox import ExecResult
from workers.workspace.confined import (
    Refused,
    copy_files,
    files,
    lstat_at,
    names,
    open_dir,
    opened,
    remove_at,
    walk,
)

log = logging.getLogger(__name__)


class SetupProducts:
    """The setup's products, and a pristine copy of them for every stage at the cost of a walk.

    A worktree gets copies the first time. Directories that hold nothing but products (their
    *roots*: `node_modules/`, `.venv/`, `build/lib/`) survive the next reset of that worktree, and
    the next stage keeps each file in them that is exactly as it was when the previous stage's
    sandbox got it — same inode, same ctime (which nothing can set back), one link — and gets a new
    copy of every other; whatever else is under a root is removed. Products outside the roots
    (beside tracked files) are copied again after every reset."""

    def __init__(self, source: Path, paths: frozenset[str], tracked: set[str]) -> None:
        self.source, self.paths = source, paths
        self.roots = _roots(paths, tracked)
        self._dirs = self._source_dirs()  # directory under a root -> its permission bits
        self._sealed: dict[str, dict[str, tuple[int, int, int]]] = {}
        self._lock = threading.Lock()

    def carry(self, worktree) -> None:
        """Into a fresh or reset worktree: keep what the seal vouches for, copy the rest."""
        target = workdir(worktree)
        with self._lock:
            sealed = self._sealed.pop(str(target), {})
        kept = self._sweep(target, sealed)
        skipped = copy_files(self.source, target, self.paths - kept)
        if skipped:
            log.warning("setup products not carried: %s", "; ".join(skipped[:10]))

    def seal(self, worktree) -> None:
        """A sandbox is about to get this worktree: remember how its products are now, and return
        only once the filesystem's clock has moved past their ctimes (so that no change the sandbox
        makes can carry a ctime seen here — git's "racy entry" rule)."""
        target, record = workdir(worktree), {}

        def visit(dir_fd: int, name: str, kind: str, rel: str) -> bool:
            if kind in ("file", "link") and rel in self.paths:
                st = lstat_at(dir_fd, name)
                if st is not None:
                    record[rel] = (st.st_dev, st.st_ino, st.st_ctime_ns)
            return kind == "dir"

        self._each_root(target, visit)
        if not _wait_past(max((ctime for _, _, ctime in record.values()), default=0), target.parent):
            record = {}  # the clock did not move: vouch for nothing, the next stage copies again
        with self._lock:
            self._sealed[str(target)] = record

    def _sweep(self, target: Path, sealed: dict[str, tuple[int, int, int]]) -> set[str]:
        """Remove from the roots what the seal does not vouch for; return the products kept."""
        kept: set[str] = set()

        def visit(dir_fd: int, name: str, kind: str, rel: str) -> bool:
            if kind == "dir" and rel in self._dirs:
                return True
            st = lstat_at(dir_fd, name) if kind in ("file", "link") else None
            if st is not None and sealed.get(rel) == (st.st_dev, st.st_ino, st.st_ctime_ns) and (
                    kind == "link" or st.st_nlink == 1):
                kept.add(rel)
            else:
                remove_at(dir_fd, name)
            return False

        def enter(fd: int, rel: str) -> None:  # a sandbox may have changed a directory's mode
            mode = self._dirs.get(rel)
            if mode is not None and stat.S_IMODE(os.fstat(fd).st_mode) != mode:
                os.fchmod(fd, mode)

        self._each_root(target, visit, enter)
        return kept

    def _each_root(self, tree: Path, visit, enter=None) -> None:
        """walk() every root present in ``tree``, with paths relative to the tree."""
        with opened(tree) as top:
            for root in sorted(self.roots):
                try:
                    fd = open_dir(top, names(root))
                except (FileNotFoundError, Refused):
                    continue
                try:
                    _walk_root(fd, root, visit, enter)
                finally:
                    os.close(fd)

    def _source_dirs(self) -> dict[str, int]:
        modes: dict[str, int] = {}

        def enter(fd: int, rel: str) -> None:
            modes[rel] = stat.S_IMODE(os.fstat(fd).st_mode) & 0o777 | 0o700  # as copy_files makes them

        self._each_root(self.source, lambda *args: args[2] == "dir", enter)
        return modes


def _wait_past(ctime_ns: int, near: Path, limit_s: float = 2.0) -> bool:
    """Wait until a file changed now on ``near``'s filesystem gets a ctime later than ``ctime_ns``."""
    deadline = time.monotonic() + limit_s
    with tempfile.TemporaryFile(dir=near) as probe:
        while os.fstat(probe.fileno()).st_ctime_ns <= ctime_ns:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.002)
            os.fchmod(probe.fileno(), 0o600)  # a change: the kernel stamps the ctime again
    return True


def _walk_root(fd: int, root: str, visit, enter) -> None:
    def entered(dir_fd: int, rel: str) -> None:
        enter(dir_fd, f"{root}/{rel}" if rel else root)

    walk(fd, lambda dir_fd, name, kind, rel: visit(dir_fd, name, kind, f"{root}/{rel}"),
         enter=entered if enter is not None else None)


def _roots(paths: frozenset[str], tracked: set[str]) -> frozenset[str]:
    """The shallowest directories of the products that are neither tracked nor hold a tracked path."""
    taken = set(tracked)
    for path in tracked:
        parts = path.split("/")
        taken.update("/".join(parts[:i]) for i in range(1, len(parts)))
    roots = set()
    for path in paths:
        parts = path.split("/")
        for i in range(1, len(parts)):
            directory = "/".join(parts[:i])
            if directory not in taken:
                roots.add(directory)
                break
    return frozenset(roots)


@dataclass(frozen=True)
class Prepared:
    checkout: Checkout  # worktrees that already contain the setup's products
    failure: ExecResult | None  # the setup's result when it failed
    products: frozenset[str]  # repository-relative paths the setup created
    carried: SetupProducts | None = None  # puts them back into a reset worktree


@contextmanager
def prepared(setup: str | None, working_directory: str, network: bool, checkout: Checkout,
             start_sandbox: StartSandbox,
             run: Callable[[Path], ExecResult] | None = None) -> Iterator[Prepared]:
    """Run setup once; yield worktree factories carrying its products (the setup worktree lives until exit).
    `run(root)`, when given, runs (or restores) the setup in that worktree instead of a plain sandbox
    (workers/engine/environment.py: the job's environment and the setup cache)."""
    if not setup:
        yield Prepared(checkout, None, frozenset())
        return
    with checkout() as setup_worktree:
        root = workdir(setup_worktree)
        before = files(root)
        if run is not None:
            result = run(root)
        else:
            sandbox = start_sandbox(root, network=network) if network else start_sandbox(root)
            try:
                result = sandbox.exec(setup, cwd=working_directory)
            finally:
                sandbox.stop()
        products = SetupProducts(root, frozenset(files(root) - before), before)

        @contextmanager
        def with_products():
            with checkout() as worktree:
                products.carry(worktree)
                yield worktree

        yield Prepared(with_products, None if result.ok else result, products.paths, products)
