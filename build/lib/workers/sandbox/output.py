"""Bounded capture of command output: keep the head and the tail, count what was dropped.

Used by every engine so endless output (``yes``) never grows the worker's memory beyond
about twice the cap, and the model sees both how a command started and how it ended.
"""

from __future__ import annotations

from workers.sandbox import ExecResult

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


def result(cap: OutputCap, exit_code: int, duration_s: float, timed_out: bool, oom: bool, memory_mb: int,
           limit_s: float, note: str = "", disk_exceeded_mb: int = 0) -> ExecResult:
    """The ExecResult of a finished command, with the engine's notes appended to what it printed."""
    output = cap.text() + note
    if timed_out:
        output += f"\n[qwenfix: command timed out after {limit_s:g}s and was killed]\n"
    if oom:
        output += f"\n[qwenfix: out of memory: a process was killed at the {memory_mb} MB limit]\n"
    if disk_exceeded_mb:
        output += f"\n[qwenfix: stopped: {disk_exceeded(disk_exceeded_mb)}]\n"
    return ExecResult(exit_code=exit_code, output=output, duration_s=duration_s, timed_out=timed_out,
                      oom_killed=oom, truncated=cap.truncated, disk_exceeded_mb=disk_exceeded_mb)


def disk_exceeded(limit_mb: int) -> str:
    return f"the sandbox wrote more than {limit_mb} MB (the job's disk budget, QWENFIX_SANDBOX_DISK_MB)"
