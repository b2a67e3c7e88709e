"""The repository's setup phase (`repair.setup`, e.g. `pip install -e .[test]`), run once per job.

It runs in its own worktree and sandbox — the only sandbox that may get network, and only when the
operator allows it — before anything from the model runs. Every worktree handed out afterwards
receives the files setup created (hardlinked, so even a large `node_modules` costs little), so the
candidates and their validation reuse one setup; those files are never part of a patch.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workers.engine.stations import Checkout, StartSandbox, workdir
from workers.sandbox import ExecResult


@dataclass(frozen=True)
class Prepared:
    checkout: Checkout  # worktrees that already contain the setup's products
    failure: ExecResult | None  # the setup's result when it failed
    products: frozenset[str]  # repository-relative paths the setup created
    carry: Callable[[Any], None] = lambda worktree: None  # puts the products back into a reset worktree


def _files(root: Path) -> set[str]:
    found = set()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not (dirpath == str(root) and d == ".git")]
        for name in filenames:
            found.add(os.path.relpath(os.path.join(dirpath, name), root))
    return found


def _carry(source: Path, target: Path, products: frozenset[str]) -> None:
    for rel in sorted(products):
        src, dst = source / rel, target / rel
        if dst.exists() or dst.is_symlink():
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            os.symlink(os.readlink(src), dst)
            continue
        try:
            os.link(src, dst)
        except OSError:  # another filesystem: copy instead
            shutil.copy2(src, dst)


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
        before = _files(root)
        if run is not None:
            result = run(root)
        else:
            sandbox = start_sandbox(root, network=network) if network else start_sandbox(root)
            try:
                result = sandbox.exec(setup, cwd=working_directory)
            finally:
                sandbox.stop()
        products = frozenset(_files(root) - before)

        def carry(worktree) -> None:
            _carry(root, workdir(worktree), products)

        @contextmanager
        def with_products():
            with checkout() as worktree:
                carry(worktree)
                yield worktree

        yield Prepared(with_products, None if result.ok else result, products, carry)
