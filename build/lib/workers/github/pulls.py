"""Pull requests: their diff (files), reviews with inline comments or ```suggestion blocks placed
only on lines GitHub accepts, and fix pull requests. Idempotent per job (hidden marker)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from unidiff import PatchSet
from unidiff.errors import UnidiffParseError

from core.github import split_repo, status_code
from workers.github.comments import is_own
from workers.github.fix_blocks import hunk_replacement
from workers.github.messages import fence_for, marker, with_marker

if TYPE_CHECKING:
    from core.github import GitHub


@dataclass(frozen=True)
class PullFile:
    """One file of a pull request's diff, as GitHub reports it (pulls/{n}/files)."""

    filename: str
    status: str
    patch: str | None


def pull_files(gh: GitHub, repo: str, pr_number: int) -> list[PullFile]:
    """The pull request's changed files with their diffs (GitHub omits the diff of huge or binary files)."""
    owner, name = split_repo(repo)
    return [
        PullFile(f.filename, f.status, f.patch or None)
        for f in gh.rest.paginate(
            gh.rest.pulls.list_files, owner=owner, repo=name, pull_number=pr_number, per_page=100
        )
    ]


def participants(gh: GitHub, repo: str, pr_number: int) -> set[str]:
    """Logins of the people on a pull request: its author, requested reviewers, reviewers and
    commenters (inline comments belong to reviews)."""
    owner, name = split_repo(repo)
    pr = gh.rest.pulls.get(owner, name, pr_number).raw_response.json()
    people = {(pr.get("user") or {}).get("login")}
    people |= {(u or {}).get("login") for u in pr.get("requested_reviewers") or []}
    for review in gh.rest.paginate(gh.rest.pulls.list_reviews, owner=owner, repo=name, pull_number=pr_number,
                                   per_page=100):
        people.add(review.user.login if review.user else None)
    for comment in gh.rest.paginate(gh.rest.issues.list_comments, owner=owner, repo=name, issue_number=pr_number,
                                    per_page=100):
        people.add(comment.user.login if comment.user else None)
    return {p for p in people if p}


def own_review(gh: GitHub, repo: str, pr_number: int, job_id: int | str, *, bot: str,
               head_sha: str | None = None, heading: str | None = None) -> int | None:
    """The id of the review this job already posted (so a job run twice posts once), or with
    ``head_sha`` and ``heading`` of any review of ours (by ``bot``) on that commit whose body
    starts so."""
    owner, name = split_repo(repo)
    tag = marker(job_id)
    for review in gh.rest.paginate(
        gh.rest.pulls.list_reviews, owner=owner, repo=name, pull_number=pr_number, per_page=100
    ):
        if not is_own(review.user, bot):
            continue
        body = review.body or ""
        if tag in body or (heading and review.commit_id == head_sha and body.startswith(heading)):
            return review.id
    return None


def plan_suggestions(patch: str, pull_files: Sequence[PullFile]) -> list[dict[str, Any]] | None:
    """Review comments with ```suggestion blocks, one per hunk of ``patch`` (a diff against the
    pull request's head), or None when any hunk cannot be placed: its file is added, removed,
    renamed or binary, or the lines it replaces are not all RIGHT-side lines of one hunk of the
    pull request's diff (GitHub only accepts comments there)."""
    try:
        candidate = PatchSet(patch)
    except (UnidiffParseError, ValueError):
        return None
    if not len(candidate):
        return None
    by_name = {f.filename: f for f in pull_files}
    comments: list[dict[str, Any]] = []
    for pf in candidate:
        if pf.is_added_file or pf.is_removed_file or pf.is_rename or pf.is_binary_file:
            return None
        path = pf.path
        pr_file = by_name.get(path)
        if pr_file is None or not pr_file.patch or pr_file.status == "removed":
            return None
        right_hunks = right_side_lines(path, pr_file.patch)
        if right_hunks is None:
            return None
        for hunk in pf:
            placed = hunk_replacement(list(hunk))
            if placed is None:
                return None
            start, end, new_text = placed
            wanted = set(range(start, end + 1))
            if not any(wanted <= lines for lines in right_hunks):
                return None
            fence = fence_for(new_text)
            suggestion = f"{fence}suggestion\n{new_text}{fence}"
            comment: dict[str, Any] = {"path": path, "line": end, "side": "RIGHT",
                                       "body": suggestion}
            if start != end:
                comment["start_line"] = start
                comment["start_side"] = "RIGHT"
            comments.append(comment)
    return comments or None


def right_side_lines(path: str, pr_patch: str) -> list[set[int]] | None:
    """For each hunk of a PR file's diff, the head-side line numbers it shows (context and
    added lines)."""
    text = f"--- a/{path}\n+++ b/{path}\n{pr_patch.rstrip(chr(10))}\n"
    try:
        parsed = PatchSet(text)
    except (UnidiffParseError, ValueError):
        return None
    if not len(parsed):
        return None
    return [
        {ln.target_line_no for ln in hunk if ln.target_line_no is not None
         and (ln.is_context or ln.is_added)}
        for hunk in parsed[0]
    ]


def suggestion_review(
    gh: GitHub,
    repo: str,
    pr_number: int,
    head_sha: str,
    patch: str,
    body: str,
    job_id: int | str,
    *,
    bot: str,
) -> int | None:
    """Post ``patch`` as one review (event COMMENT) of ```suggestion comments on the pull
    request, or post nothing and return None when any hunk cannot be placed on the PR's diff
    (or the PR moved past ``head_sha``), so the caller can fall back to a comment. Returns the
    review id; this job's earlier review (by ``bot``), when there is one."""
    owner, name = split_repo(repo)
    earlier = own_review(gh, repo, pr_number, job_id, bot=bot)
    if earlier is not None:
        return earlier

    pr = gh.rest.pulls.get(owner, name, pr_number).parsed_data
    if pr.head.sha != head_sha:
        return None
    comments = plan_suggestions(patch, pull_files(gh, repo, pr_number))
    if comments is None:
        return None
    try:
        resp = gh.rest.pulls.create_review(
            owner, name, pr_number,
            commit_id=head_sha, body=with_marker(body, job_id), event="COMMENT",
            comments=comments,
        )
    except Exception as exc:
        if status_code(exc) == 422:  # GitHub could not place a line: nothing was created
            return None
        raise
    return resp.parsed_data.id


def post_review(gh: GitHub, repo: str, pr_number: int, head_sha: str, body: str,
                comments: list[dict[str, Any]], job_id: int | str) -> int:
    """One review (event COMMENT) with inline comments; if GitHub refuses to place one (422), the
    same review with every comment moved into its body. Returns the review id."""
    owner, name = split_repo(repo)
    try:
        resp = gh.rest.pulls.create_review(owner, name, pr_number, commit_id=head_sha,
                                           body=with_marker(body, job_id), event="COMMENT", comments=comments)
    except Exception as exc:
        if status_code(exc) != 422 or not comments:
            raise
        folded = "\n".join(f"- `{c['path']}` line {c['line']}: {c['body']}" for c in comments)
        resp = gh.rest.pulls.create_review(owner, name, pr_number, commit_id=head_sha, event="COMMENT",
                                           body=with_marker(f"{body}\n\n{folded}", job_id))
    return resp.parsed_data.id


def open_fix_pull_request(
    gh: GitHub,
    repo: str,
    base_branch: str,
    branch: str,
    title: str,
    body: str,
    job_id: int | str,
) -> tuple[int, str]:
    """Open a pull request from ``branch`` (already pushed to ``repo``) into ``base_branch``, or
    return the open one from that branch. Returns (number, html_url)."""
    owner, name = split_repo(repo)

    def existing() -> tuple[int, str] | None:
        for pr in gh.rest.paginate(
            gh.rest.pulls.list, owner=owner, repo=name, head=f"{owner}:{branch}", state="open",
            per_page=100,
        ):
            return pr.number, pr.html_url
        return None

    found = existing()
    if found is not None:
        return found
    try:
        pr = gh.rest.pulls.create(
            owner, name, title=title[:256], head=branch, base=base_branch,
            body=with_marker(body, job_id),
        ).parsed_data
    except Exception as exc:
        if status_code(exc) == 422:  # opened meanwhile by a concurrent run of the job
            found = existing()
            if found is not None:
                return found
        raise
    return pr.number, pr.html_url
