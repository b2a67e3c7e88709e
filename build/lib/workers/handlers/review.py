"""The `review` job: a pull request opened or pushed to → one review with inline comments.

Optional per repository (`review.enabled`), drafts only when `review.drafts` says so. The diff is
read through the API (the files endpoint), never checked out or run; the model sees it as untrusted
data. A job run twice posts one review."""

from __future__ import annotations

from dataclasses import replace

from workers.agent.llm import ModelError, ModelUnavailable
from workers.context import JobContext, Outcome
from workers.github import messages, pulls
from workers.github.job import GitHubJob, call, open_job
from workers.review.diff import place, review_diff
from workers.review.findings import Review, UnreadableReview, ask_for_review
from workers.spending import JobSpending


def review_pull_request(ctx: JobContext) -> Outcome:
    job = ctx.job
    gj = open_job(ctx, head_sha=job.head_sha)
    target, config = gj.target, gj.config.review
    if not config.enabled:
        return Outcome("skipped", "reviews are off for this repository (review.enabled in .github/qwen.yml)")
    if job.params.get("draft") and not config.drafts:
        return Outcome("skipped", "draft pull request (review.drafts in .github/qwen.yml)")
    if target.current_head_sha and target.current_head_sha != job.head_sha:
        return Outcome("skipped", f"the pull request moved on to {target.current_head_sha[:7]}; "
                                  f"this review was for {job.head_sha[:7]}")
    earlier = call(pulls.own_review, gj.gh, target.repo, target.pr_number, gj.job_id, bot=gj.bot,
                   head_sha=target.head_sha, heading=messages.REVIEW_HEADING)
    if earlier is not None:  # this job ran before, or a draft's review already covers this commit
        return Outcome("skipped", f"{target.head_sha[:7]} is already reviewed (review {earlier})",
                       {"result": {"review_id": earlier}})
    spending = JobSpending(gj)
    refused = spending.refuse_start(repair=False)
    if refused is not None:
        return refused
    client = spending.client()
    if client is None:
        return _failed(gj, "no model endpoint is configured (QWENFIX_LLM_BASE_URL)")

    diff = review_diff(call(pulls.pull_files, gj.gh, target.repo, target.pr_number), gj.config.paths.ignore)
    if not diff.commentable:
        return Outcome("skipped", "nothing to review: no text changes outside paths.ignore")
    ctx.progress(f"reviewing {len(diff.commentable)} file(s)")
    try:
        review = ask_for_review(client, target.pr_title or "", target.pr_body or "", diff.text, gj.secrets,
                                temperature=gj.config.model.temperature or 0.0)
    except (ModelUnavailable, ModelError, UnreadableReview) as exc:
        if spending.refusal is not None:
            return spending.stopped()
        return _failed(gj, f"the model could not review it: {exc}")
    # the model read untrusted text: no mentions of strangers, no links elsewhere in what it wrote
    review = Review(gj.neutralize(review.summary),
                    [replace(f, message=gj.neutralize(f.message)) for f in review.findings])
    inline, elsewhere = place(review.findings, diff.commentable, config.max_comments)
    body = messages.review(gj.job_id, gj.url, target.head_sha, review.summary, len(inline), elsewhere, diff.left_out)
    comments = [{"path": f.path, "line": f.line, "side": "RIGHT", "body": messages.review_comment(f.severity, f.message)}
                for f in inline]
    review_id = call(pulls.post_review, gj.gh, target.repo, target.pr_number, target.head_sha, body,
                     comments, gj.job_id)
    return Outcome("succeeded", f"reviewed: {len(inline)} inline comment(s), {len(elsewhere)} in the summary",
                   {"result": {"review_id": review_id, "inline": len(inline), "elsewhere": len(elsewhere),
                               "findings": [f.__dict__ for f in review.findings]}})


def _failed(gj: GitHubJob, reason: str) -> Outcome:
    gj.say("review failed", reason)
    return Outcome("failed", reason)


HANDLERS = {
    "review": review_pull_request,
}
