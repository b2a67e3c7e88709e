"""The `follow_up` job: something happened to a pull request or branch that carries a delivered fix —
a push, a merge or a close, a review thread resolved — and the fix's outcome is read from GitHub.

- suggestions (and a patch in a comment): a block is applied when a later head has its lines; a
  resolved thread without them dismisses it; the commit that applied them is the one whose CI counts;
- a fix commit: overwritten when a later push drops it from the branch's history; when the pull
  request merges, kept if it is still in the history and its lines still in the files (else reverted);
- a fix pull request: merged or closed.

It reads GitHub and writes only the outcome rows; it never posts anything.
"""

from __future__ import annotations

from core import outcomes
from core.db.models import FixOutcome
from core.db.session import session_scope
from core.github import status_code
from workers.context import JobContext, Outcome
from workers.github.fix_blocks import present
from workers.github.job import audit_writes, call, github_app
from workers.github.target import read_text

IN_HISTORY = ("ahead", "identical")  # compare fix...head: the fix commit is an ancestor of the head


class Reader:
    """What the job reads from GitHub, each thing once."""

    def __init__(self, gh, repo: str) -> None:
        self.gh, self.repo = gh, repo
        self.owner, self.name = repo.split("/", 1)
        self._files: dict[tuple[str, str], str | None] = {}

    def text(self, sha: str, path: str) -> str | None:
        if (sha, path) not in self._files:
            self._files[(sha, path)] = call(read_text, self.gh, self.repo, path, sha)
        return self._files[(sha, path)]

    def in_history(self, fix_sha: str, head: str) -> bool:
        try:
            data = call(self.gh.rest.repos.compare_commits, self.owner, self.name, f"{fix_sha}...{head}")
        except Exception as exc:
            if status_code(exc) == 404:  # no common ancestor: the branch was replaced wholesale
                return False
            raise
        return data.raw_response.json().get("status") in IN_HISTORY

    def head_of(self, number: int) -> str | None:
        data = call(self.gh.rest.pulls.get, self.owner, self.name, number).raw_response.json()
        return (data.get("head") or {}).get("sha")

    def ci_runs(self, sha: str) -> list[dict]:
        data = call(self.gh.rest.actions.list_workflow_runs_for_repo, self.owner, self.name, head_sha=sha)
        return [r for r in data.raw_response.json().get("workflow_runs") or [] if r.get("status") == "completed"]


def follow_fixes(ctx: JobContext) -> Outcome:
    job, seen = ctx.job, ctx.job.params
    gh = call(github_app(ctx.settings).installation_client, job.installation_id, job.repo, audit_writes(ctx.trail))
    ctx.resources.enter_context(gh)
    reader = Reader(gh, job.repo)
    notes = []
    with session_scope(ctx.settings.database_url) as session:
        for row in outcomes.unsettled(session, job.repo, pr_number=seen.get("pr_number"), branch=seen.get("branch")):
            before = (row.verdict, row.ci_sha, [b["state"] for b in row.blocks])
            if row.how in ("suggest", "comment"):
                applied_at = _suggestions(row, seen, reader)
                if applied_at and row.ci_sha is None:  # the commit that applied them is the one CI judges
                    row.ci_sha = applied_at
                    for run in reader.ci_runs(applied_at):
                        outcomes.record_ci(session, row.repo, applied_at, run.get("conclusion"),
                                           f"{run.get('name') or 'workflow'} run {run.get('id')}")
            elif row.how == "commit":
                _commit(row, seen, reader)
            elif row.how == "pull_request":
                _fix_pull_request(row, seen)
            if (row.verdict, row.ci_sha, [b["state"] for b in row.blocks]) != before:
                notes.append(f"job {row.job_id}'s fix: {row.verdict}" + (f" ({row.verdict_reason})" if row.verdict_reason else ""))
    return Outcome("succeeded", "; ".join(notes) or "no change to any fix's outcome", {"result": {"notes": notes}})


def _suggestions(row: FixOutcome, seen: dict, reader: Reader) -> str | None:
    """Mark applied and dismissed blocks; returns the head that applied one, if any did now."""
    kind = seen.get("observation")
    closed = kind == "closed" and seen.get("pr_number") == row.pr_number
    head = seen.get("sha") if kind in ("push", "closed") else reader.head_of(row.pr_number)
    blocks = [dict(b) for b in row.blocks]
    applied_at = None
    if head and head != row.base_sha:
        for block in blocks:
            if block["state"] != outcomes.APPLIED and present(block, reader.text(head, block["path"])):
                block.update(state=outcomes.APPLIED, sha=head)
                applied_at = head
    if kind == "thread":
        for comment in seen.get("comments") or []:
            for block in blocks:
                if (comment.get("review_id") == row.review_id and comment.get("path") == block["path"]
                        and comment.get("line") == block.get("line")):
                    if seen.get("resolved") and block["state"] == outcomes.PENDING:
                        block["state"] = outcomes.DISMISSED
                    elif not seen.get("resolved") and block["state"] == outcomes.DISMISSED:
                        block["state"] = outcomes.PENDING
    row.blocks = blocks
    verdict = outcomes.suggestions_verdict([b["state"] for b in blocks], closed, bool(seen.get("merged")))
    if verdict:
        outcomes.settle(row, *verdict)
    return applied_at


def _commit(row: FixOutcome, seen: dict, reader: Reader) -> None:
    kind, head = seen.get("observation"), seen.get("sha")
    if kind not in ("push", "closed") or not head or not row.delivered_sha:
        return
    closed = kind == "closed" and seen.get("pr_number") == row.pr_number
    if head == row.delivered_sha and not closed:
        return
    merged = closed and bool(seen.get("merged"))
    kept = reader.in_history(row.delivered_sha, head)
    still_there = kept and merged and all(present(b, reader.text(head, b["path"])) for b in row.blocks)
    verdict = outcomes.commit_verdict(kept, still_there, closed, merged, head)
    if verdict:
        outcomes.settle(row, *verdict)


def _fix_pull_request(row: FixOutcome, seen: dict) -> None:
    if seen.get("observation") == "closed" and seen.get("pr_number") == row.fix_pr_number:
        outcomes.settle(row, *outcomes.pull_request_verdict(bool(seen.get("merged")), row.fix_pr_number))


HANDLERS = {
    "follow_up": follow_fixes,
}
