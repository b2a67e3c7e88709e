"""Is the failure the pull request's fault? The failing command also runs on the base (the merge base
of a pull request), before the model sees anything; a failure that happens there too is not caused by
the pull request, and is reported as such instead of being "fixed" on the pull request's branch."""

from __future__ import annotations

from workers.failure.report import failure_items
from workers.sandbox import ExecResult


def fails_on_base(head: ExecResult, base: ExecResult | None) -> bool:
    """The base fails too, the same way: every failing test (or error line) of the head's run fails
    there as well. A base that passes, or fails otherwise, leaves the failure to the pull request."""
    if base is None or base.ok or head.ok:
        return False
    if head.timed_out or base.timed_out:
        return head.timed_out and base.timed_out
    head_items = failure_items(head.output)
    return bool(head_items) and head_items <= failure_items(base.output)
