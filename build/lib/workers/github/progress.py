"""Progress on GitHub without a request per step: the newest update is posted at most once per
interval, and never lost — an update that arrives too soon is posted when the interval is up,
unless a newer one or the final report replaces it first."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)

PROGRESS_INTERVAL_S = 5.0


class ProgressPublisher:
    def __init__(self, interval_s: float = PROGRESS_INTERVAL_S) -> None:
        self._interval = interval_s
        self._posting = threading.Lock()  # one post at a time, in order
        self._state = threading.Lock()
        self._pending: Callable[[], None] | None = None
        self._timer: threading.Timer | None = None
        self._last = float("-inf")
        self._closed = False

    def submit(self, post: Callable[[], None]) -> None:
        """Post now when the interval is up (errors reach the caller), else later in the background."""
        with self._state:
            if self._closed:
                return
            self._pending = post
            wait = self._last + self._interval - time.monotonic()
            if wait > 0:
                if self._timer is None:
                    self._timer = threading.Timer(wait, self._flush_in_background)
                    self._timer.daemon = True
                    self._timer.start()
                return
        self._flush()

    @contextmanager
    def superseding(self) -> Iterator[None]:
        """For a post that replaces whatever progress is waiting (a final report): drop it, and
        keep background posts out until this one is done."""
        with self._posting:
            self._drop_pending()
            yield

    def close(self) -> None:
        """The job is over: nothing waiting is posted any more."""
        with self._posting:
            self._drop_pending()
            with self._state:
                self._closed = True

    def _drop_pending(self) -> None:
        with self._state:
            self._pending = None
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

    def _flush(self) -> None:
        with self._posting:
            with self._state:
                post, self._pending, self._timer = self._pending, None, None
                if post is None or self._closed:
                    return
                self._last = time.monotonic()
            post()

    def _flush_in_background(self) -> None:
        try:
            self._flush()
        except Exception as exc:  # noqa: BLE001 — progress is best effort; the final report is not
            log.warning("could not post progress: %s", exc)
