"""Bounded capture of command output: keep the head and the tail, count what was dropped.

Used by every engine so endless output (``yes``) never grows the worker's memory beyond
about twice the cap, and the model sees both how a command started and how it ended.
"""

from __future__ import annotations

MARKER = "\n\n[... qwenfix: {dropped} bytes of output omitted ...]\n\n"
_MARKER_RESERVE = len(MARKER.format(dropped=10**15))
NOTE_RESERVE = 200  # room kept for the engine's own notes (timeout, out of memory)


class OutputCap:
    """Feed bytes with :meth:`write`; :meth:`text` returns head + marker + tail within ``cap``."""

    def __init__(self, cap: int) -> None:
        self.cap = max(int(cap), 64)
        budget = max(self.cap - _MARKER_RESERVE, 32)
        self.head_cap = budget // 2
        self.tail_cap = budget - self.head_cap
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def write(self, data: bytes) -> None:
        if not data:
            return
        self.total += len(data)
        room = self.head_cap - len(self.head)
        if room > 0 and not self.tail:
            self.head += data[:room]
            data = data[room:]
            if not data:
                return
        self.tail += data
        if len(self.tail) > 2 * self.tail_cap:  # amortised trim, memory stays O(cap)
            del self.tail[: len(self.tail) - self.tail_cap]

    @property
    def truncated(self) -> bool:
        return self.total > len(self.head) + min(len(self.tail), self.tail_cap)

    @property
    def dropped(self) -> int:
        return self.total - len(self.head) - min(len(self.tail), self.tail_cap)

    def text(self) -> str:
        tail = bytes(self.tail[-self.tail_cap :]) if self.tail else b""
        if not self.truncated:
            return (bytes(self.head) + bytes(self.tail)).decode("utf-8", "replace")
        head = bytes(self.head).decode("utf-8", "replace")
        return head + MARKER.format(dropped=self.dropped) + tail.decode("utf-8", "replace")
