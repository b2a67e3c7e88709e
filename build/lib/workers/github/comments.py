"""Comments on pull requests: this job's one comment (found again by its hidden marker), reactions
and the commenter's permission. Idempotent per job: a job that runs twice posts one comment."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.github import split_repo, status_code
from workers.github.messages import marker, with_marker

if TYPE_CHECKING:
    from core.github import GitHub

WRITE_PERMISSIONS = frozenset({"admin", "write"})


def is_own(user: Any, bot: str) -> bool:
    """Posted by this app's bot (login ``bot``, ``<slug>[bot]``): neither a person nor another app
    quoting the marker can make us edit their text or take their post for ours."""
    return (user is not None and getattr(user, "type", None) == "Bot"
            and bool(bot) and getattr(user, "login", None) == bot)


def upsert_comment(gh: GitHub, repo: str, issue_number: int, job_id: int | str, body: str, *,
                   bot: str, known_id: int | None = None) -> int:
    """Post ``body`` on the issue / pull request, or edit this job's earlier comment (posted by
    ``bot``, this app). Returns the comment id. ``known_id`` (the id this job got before) saves
    looking it up again."""
    owner, name = split_repo(repo)
    text = with_marker(body, job_id)
    tag = marker(job_id)
    if known_id is not None:
        try:
            gh.rest.issues.update_comment(owner, name, known_id, body=text)
            return known_id
        except Exception as exc:
            if status_code(exc) != 404:  # deleted meanwhile: find or post it again below
                raise
    for comment in gh.rest.paginate(
        gh.rest.issues.list_comments, owner=owner, repo=name, issue_number=issue_number,
        per_page=100,
    ):
        if tag in (comment.body or "") and is_own(comment.user, bot):
            if comment.body != text:
                gh.rest.issues.update_comment(owner, name, comment.id, body=text)
            return comment.id
    return gh.rest.issues.create_comment(owner, name, issue_number, body=text).parsed_data.id


def react(gh: GitHub, repo: str, comment_id: int, content: str = "eyes",
          review_comment: bool = False) -> int:
    """Add a reaction to an issue comment (or a PR review comment). GitHub answers 200 with the
    existing reaction when it is already there, so this is idempotent. Returns its id."""
    owner, name = split_repo(repo)
    if review_comment:
        resp = gh.rest.reactions.create_for_pull_request_review_comment(
            owner, name, comment_id, content=content
        )
    else:
        resp = gh.rest.reactions.create_for_issue_comment(owner, name, comment_id, content=content)
    return resp.parsed_data.id


def permission(gh: GitHub, repo: str, user: str) -> str:
    """``user``'s permission on ``repo``: "admin", "write", "read" or "none" (GitHub's legacy
    field: the maintain role reads "write", triage reads "read")."""
    owner, name = split_repo(repo)
    try:
        resp = gh.rest.repos.get_collaborator_permission_level(owner, name, user)
    except Exception as exc:
        if status_code(exc) == 404:
            return "none"
        raise
    return resp.parsed_data.permission
