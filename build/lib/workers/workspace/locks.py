"""File locks (flock) that survive nothing but their holder: a crashed worker's lock is free again."""

from __future__ import annotations

import errno
import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from workers.workspace.git import WorkspaceError

LOCK_TIMEOUT_S = 1800.0  # waiting for another job's fetch of the same repository


class Flock:
    """An flock on its own open file description (so threads of one process exclude each other
    too)."""

    def __init__(self, path: Path, exclusive: bool) -> None:
        self.path = path
        self.exclusive = exclusive
        self.fd: int | None = None

    def acquire(self, timeout: float | None = LOCK_TIMEOUT_S) -> bool:
        """Block up to ``timeout`` seconds (None: forever; 0: try once). False when not taken."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        mode = fcntl.LOCK_EX if self.exclusive else fcntl.LOCK_SH
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.005
        while True:
            try:
                fcntl.flock(fd, mode | fcntl.LOCK_NB)
                self.fd = fd
                return True
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    os.close(fd)
                    raise
            if deadline is not None and time.monotonic() >= deadline:
                os.close(fd)
                return False
            time.sleep(delay)
            delay = min(delay * 2, 0.2)

    def release(self) -> None:
        if self.fd is not None:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_UN)
            finally:
                os.close(self.fd)
                self.fd = None


@contextmanager
def locked(path: Path, exclusive: bool, timeout: float | None) -> Iterator[None]:
    lock = Flock(path, exclusive)
    if not lock.acquire(timeout):
        raise WorkspaceError(f"timed out after {timeout}s waiting for lock {path.name}")
    try:
        yield
    finally:
        lock.release()
