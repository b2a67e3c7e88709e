"""The repository's setup phase (`repair.setup`, e.g. `pip install -e .[test]`), run once per job.

It runs in its own worktree and sandbox — the only sandbox that may get network, and only when the
operator allows it — before anything from the model runs. Every worktree handed out afterwards
receives a fresh copy of the files setup created (shared copy-on-write where the filesystem can),
so the candidates and their validation reuse one setup, yet no stage can change what a later one
runs: the setup worktree is never mounted in a sandbox again, and nothing is hard-linked. Those
files are never part of a patch. A sandbox chose their names and could have made any of them a
link, so copying never follows one (workers/workspace/confined.py): a product whose directory is a
symlink in the receiving worktree (e.g. the pull request's `link -> /host/dir`) is not carried.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from workers.engine.stations import Checkout, StartSandbox, workdir
from workers.sandbox import ExecResult
from workers.workspace.confined import copy_files, files

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Prepared:
    checkout: Checkout  # worktrees that already contain the setup's products
    failure: ExecResult | None  # the setup's result when it failed
    products: frozenset[str]  # repository-relative paths the setup created
    carry: Callable[[Any], None] = lambda worktree: None  # puts the products back into a reset worktree


@contextmanager
def prepared(setup: str | None, working_directory: str, network: bool, checkout: Checkout,
             start_sandbox: StartSandbox) -> Iterator[Prepared]:
    """Run setup once; yield worktree factories carrying its products (the setup worktree lives until exit)."""
    if not setup:
        yield Prepared(checkout, None, frozenset())
        return
    with checkout() as setup_worktree:
        root = workdir(setup_worktree)
        before = files(root)
        sandbox = start_sandbox(root, network=network) if network else start_sandbox(root)
        try:
            result = sandbox.exec(setup, cwd=working_directory)
        finally:
            sandbox.stop()
        products = frozenset(files(root) - before)

        def carry(worktree) -> None:
            skipped = copy_files(root, workdir(worktree), products)
            if skipped:
                log.warning("setup products not carried: %s", "; ".join(skipped[:10]))

        @contextmanager
        def with_products():
            with checkout() as worktree:
                carry(worktree)
                yield worktree

        yield Prepared(with_products, None if result.ok else result, products, carry)
