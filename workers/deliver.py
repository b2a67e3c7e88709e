"""Deliver a job's result through the GitHub API: comment, check run, suggestion review, PR.

Every function takes a ready githubkit client (``app.github.client.GitHubApp
.installation_client``) and plain values, and is idempotent per job: what it posts carries the
hidden marker ``<!-- qwenfix:job:{job_id} -->`` (check runs: ``external_id``), and it looks for
its own earlier object before creating one, so a job that runs twice posts one comment, one
review, one check run and one pull request.

The user-facing wording of what this module posts lives in the "messages" section below.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from unidiff import PatchSet
from unidiff.errors import UnidiffParseError

from app.github.client import status_code

if TYPE_CHECKING:
    from app.github.client import GitHub

CHECK_NAME = "qwenfix"
MAX_BODY_CHARS = 65_536  # GitHub's limit for comment, review and PR bodies
MAX_CHECK_TEXT_CHARS = 65_535  # check run output summary / text
MAX_ANNOTATIONS_PER_REQUEST = 50
MAX_PATCH_IN_COMMENT_CHARS = 50_000
WRITE_PERMISSIONS = frozenset({"admin", "write"})


# ---------------------------------------------------------------------- messages

TRUNCATED_NOTE = "\n\n…(truncated)"


def fallback_comment(summary: str, patch: str, job_url: str) -> str:
    stats = _patch_stats(patch)
    lead = f"{summary.strip()}\n\n" if summary.strip() else ""
    if len(patch) > MAX_PATCH_IN_COMMENT_CHARS:
        return (
            f"{lead}"
            f"The proposed patch ({stats}) is too large to show here; "
            f"[download it from the job page]({job_url})."
        )
    fence = fence_for(patch)
    return (
        f"{lead}"
        f"<details>\n<summary>Proposed patch ({stats})</summary>\n\n"
        f"{fence}diff\n{patch.rstrip(chr(10))}\n{fence}\n\n"
        "To apply it, save the patch as `qwenfix.patch` at the root of your checkout and run:\n\n"
        "```sh\ngit apply --3way qwenfix.patch\n```\n\n"
        "</details>\n\n"
        f"[Job details]({job_url})"
    )


# ---------------------------------------------------------------------- markers, helpers


def marker(job_id: int | str) -> str:
    """The hidden tag that identifies what job ``job_id`` posted."""
    return f"<!-- qwenfix:job:{job_id} -->"


def with_marker(body: str, job_id: int | str) -> str:
    tag = marker(job_id)
    if tag in body:
        return body
    room = MAX_BODY_CHARS - len(tag) - 2
    if len(body) > room:
        body = body[: room - len(TRUNCATED_NOTE)] + TRUNCATED_NOTE
    return f"{body.rstrip()}\n\n{tag}"


def fence_for(text: str, minimum: int = 3) -> str:
    """A backtick fence longer than any backtick run inside ``text``."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    return "`" * max(minimum, longest + 1)


def _split(repo: str) -> tuple[str, str]:
    owner, sep, name = repo.partition("/")
    if not sep or not owner or not name:
        raise ValueError(f"expected 'owner/name', got {repo!r}")
    return owner, name


def _truncate(text: str | None, limit: int) -> str | None:
    if text is None or len(text) <= limit:
        return text
    return text[: limit - len(TRUNCATED_NOTE)] + TRUNCATED_NOTE


def _is_own(user: Any) -> bool:
    """Posted by an app (our bot); a person quoting the marker cannot make us edit their text."""
    return user is not None and getattr(user, "type", None) == "Bot"


def _patch_stats(patch: str) -> str:
    try:
        ps = PatchSet(patch)
        files, added, removed = len(ps), ps.added, ps.removed
    except (UnidiffParseError, ValueError):
        lines = patch.splitlines()
        files = sum(1 for ln in lines if ln.startswith("+++ "))
        added = sum(1 for ln in lines if ln.startswith("+") and not ln.startswith("+++"))
        removed = sum(1 for ln in lines if ln.startswith("-") and not ln.startswith("---"))
    noun = "file" if files == 1 else "files"
    return f"{files} {noun}, +{added} −{removed}"


# ---------------------------------------------------------------------- comments


def upsert_comment(gh: GitHub, repo: str, issue_number: int, job_id: int | str, body: str,
                   known_id: int | None = None) -> int:
    """Post ``body`` on the issue / pull request, or edit this job's earlier comment. Returns the
    comment id. ``known_id`` (the id this job got before) saves looking it up again."""
    owner, name = _split(repo)
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
        if tag in (comment.body or "") and _is_own(comment.user):
            if comment.body != text:
                gh.rest.issues.update_comment(owner, name, comment.id, body=text)
            return comment.id
    return gh.rest.issues.create_comment(owner, name, issue_number, body=text).parsed_data.id


def comment_with_patch_body(patch: str, summary: str, job_url: str) -> str:
    """The fallback comment when suggestions cannot be placed: the summary, the patch folded in
    ``<details>`` (fenced safely even when it contains backticks) and how to apply it."""
    return fallback_comment(summary, patch, job_url)


def react(gh: GitHub, repo: str, comment_id: int, content: str = "eyes",
          review_comment: bool = False) -> int:
    """Add a reaction to an issue comment (or a PR review comment). GitHub answers 200 with the
    existing reaction when it is already there, so this is idempotent. Returns its id."""
    owner, name = _split(repo)
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
    owner, name = _split(repo)
    try:
        resp = gh.rest.repos.get_collaborator_permission_level(owner, name, user)
    except Exception as exc:
        if status_code(exc) == 404:
            return "none"
        raise
    return resp.parsed_data.permission


def can_write(gh: GitHub, repo: str, user: str) -> bool:
    return permission(gh, repo, user) in WRITE_PERMISSIONS


# ---------------------------------------------------------------------- check runs


@dataclass(frozen=True)
class Annotation:
    path: str
    start_line: int
    end_line: int | None = None
    message: str = ""
    level: str = "failure"  # notice | warning | failure
    title: str | None = None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "path": self.path,
            "start_line": self.start_line,
            "end_line": self.end_line if self.end_line is not None else self.start_line,
            "annotation_level": self.level,
            "message": self.message[:64_000] or "(no message)",
        }
        if self.title:
            out["title"] = self.title[:255]
        return out


def _annotation_json(a: Annotation | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(a, Annotation):
        return a.as_json()
    return Annotation(
        path=a["path"], start_line=int(a["start_line"]),
        end_line=a.get("end_line"), message=a.get("message", ""),
        level=a.get("annotation_level", a.get("level", "failure")), title=a.get("title"),
    ).as_json()


def upsert_check_run(
    gh: GitHub,
    repo: str,
    head_sha: str,
    job_id: int | str,
    status: str,
    conclusion: str | None = None,
    *,
    title: str,
    summary: str,
    details_url: str,
    text: str | None = None,
    annotations: Iterable[Annotation | Mapping[str, Any]] = (),
    known_id: int | None = None,
) -> int:
    """Create this job's "qwenfix" check run on ``head_sha`` (``external_id`` = job id), or update
    it. ``status``: queued | in_progress | completed; a ``conclusion`` implies completed.
    Annotations go 50 per request; an existing run that already has annotations gets no more,
    so running twice does not duplicate them. ``known_id`` (this job's run, without annotations
    to add) is updated directly. Returns the check run id."""
    owner, name = _split(repo)
    if conclusion is not None:
        status = "completed"
    output: dict[str, Any] = {
        "title": _truncate(title, 255) or CHECK_NAME,
        "summary": _truncate(summary, MAX_CHECK_TEXT_CHARS) or "",
    }
    if text is not None:
        output["text"] = _truncate(text, MAX_CHECK_TEXT_CHARS)
    items = [_annotation_json(a) for a in annotations]
    body: dict[str, Any] = {
        "name": CHECK_NAME,
        "external_id": str(job_id),
        "status": status,
        "details_url": details_url,
    }
    if conclusion is not None:
        body["conclusion"] = conclusion

    if known_id is not None and not items:
        gh.rest.checks.update(owner, name, known_id, output=output, **body)
        return known_id
    existing = _find_check_run(gh, owner, name, head_sha, job_id)
    if existing is None or not existing.output.annotations_count:
        first, rest = items[:MAX_ANNOTATIONS_PER_REQUEST], items[MAX_ANNOTATIONS_PER_REQUEST:]
    else:
        first, rest = [], []
    if first:
        output["annotations"] = first
    if existing is None:
        run_id = gh.rest.checks.create(
            owner, name, head_sha=head_sha, output=output, **body
        ).parsed_data.id
    else:
        run_id = existing.id
        gh.rest.checks.update(owner, name, run_id, output=output, **body)
    for start in range(0, len(rest), MAX_ANNOTATIONS_PER_REQUEST):
        chunk = rest[start : start + MAX_ANNOTATIONS_PER_REQUEST]
        gh.rest.checks.update(
            owner, name, run_id,
            output={"title": output["title"], "summary": output["summary"], "annotations": chunk},
        )
    return run_id


def _find_check_run(gh: GitHub, owner: str, name: str, head_sha: str, job_id: int | str) -> Any:
    for run in gh.rest.paginate(
        gh.rest.checks.list_for_ref,
        map_func=lambda r: r.parsed_data.check_runs,
        owner=owner, repo=name, ref=head_sha, check_name=CHECK_NAME, filter_="all",
        per_page=100,
    ):
        if run.external_id == str(job_id):
            return run
    return None


# ---------------------------------------------------------------------- suggestion review


@dataclass(frozen=True)
class PullFile:
    """One file of a pull request's diff, as GitHub reports it (pulls/{n}/files)."""

    filename: str
    status: str
    patch: str | None


def pull_files(gh: GitHub, repo: str, pr_number: int) -> list[PullFile]:
    """The pull request's changed files with their diffs (GitHub omits the diff of huge or binary files)."""
    owner, name = _split(repo)
    return [
        PullFile(f.filename, f.status, f.patch or None)
        for f in gh.rest.paginate(
            gh.rest.pulls.list_files, owner=owner, repo=name, pull_number=pr_number, per_page=100
        )
    ]


def own_review(gh: GitHub, repo: str, pr_number: int, job_id: int | str, head_sha: str | None = None,
               heading: str | None = None) -> int | None:
    """The id of the review this job already posted (so a job run twice posts once), or with
    ``head_sha`` and ``heading`` of any review of ours on that commit whose body starts so."""
    owner, name = _split(repo)
    tag = marker(job_id)
    for review in gh.rest.paginate(
        gh.rest.pulls.list_reviews, owner=owner, repo=name, pull_number=pr_number, per_page=100
    ):
        if not _is_own(review.user):
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
            placed = _suggestion_for_hunk(list(hunk))
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


def _suggestion_for_hunk(lines: list[Any]) -> tuple[int, int, str] | None:
    """(first head line replaced, last head line replaced, replacement text) for one hunk of the
    candidate patch, trimmed to the span between its first and last change."""
    lines = [ln for ln in lines if ln.is_added or ln.is_removed or ln.is_context]
    changed = [i for i, ln in enumerate(lines) if ln.is_added or ln.is_removed]
    if not changed:
        return None
    first, last = changed[0], changed[-1]
    segment = lines[first : last + 1]
    old = [ln.source_line_no for ln in segment if ln.is_removed or ln.is_context]
    new = [ln.value for ln in segment if ln.is_added or ln.is_context]
    if not old:  # a pure insertion: anchor on a neighbouring unchanged line
        if first > 0 and lines[first - 1].is_context:
            anchor = lines[first - 1]
            old, new = [anchor.source_line_no], [anchor.value, *new]
        elif last + 1 < len(lines) and lines[last + 1].is_context:
            anchor = lines[last + 1]
            old, new = [anchor.source_line_no], [*new, anchor.value]
        else:
            return None
    text = "".join(v if v.endswith("\n") else v + "\n" for v in new)
    return old[0], old[-1], text


def suggestion_review(
    gh: GitHub,
    repo: str,
    pr_number: int,
    head_sha: str,
    patch: str,
    body: str,
    job_id: int | str,
) -> int | None:
    """Post ``patch`` as one review (event COMMENT) of ```suggestion comments on the pull
    request, or post nothing and return None when any hunk cannot be placed on the PR's diff
    (or the PR moved past ``head_sha``), so the caller can fall back to a comment. Returns the
    review id; this job's earlier review, when there is one."""
    owner, name = _split(repo)
    earlier = own_review(gh, repo, pr_number, job_id)
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
    owner, name = _split(repo)
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


# ---------------------------------------------------------------------- pull requests


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
    owner, name = _split(repo)

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
