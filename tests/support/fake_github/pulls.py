"""Pull requests: listing, creating and reading them, their changed files (computed by
``git diff base...head``), and reviews whose inline comments must sit on lines of the diff."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from tests.support.fake_github.auth import repo_for
from tests.support.fake_github.rest import paginate, read_json
from tests.support.fake_github.shapes import bot_json, repo_json, user_json
from tests.support.fake_github.state import GitHubError, Pull, State, node_id, now_iso
from tests.support.git_http import _git, set_ref

if TYPE_CHECKING:
    from tests.support.fake_github.fake import FakeGitHub

_REVIEW_STATE = {"COMMENT": "COMMENTED", "APPROVE": "APPROVED",
                 "REQUEST_CHANGES": "CHANGES_REQUESTED"}


# --------------------------------------------------------------------------------------------
# state helpers
# --------------------------------------------------------------------------------------------


def set_pull_ref(fake: State, repo: str, number: int, source: str, head_ref: str,
                 sha: str) -> None:
    """Point ``refs/pull/N/head`` of ``repo`` at the head: ``sha`` when the head branch lives in
    ``repo`` itself, else the branch fetched from the fork ``source``."""
    if source != repo:
        _git("--git-dir", str(fake.repos[repo].git_dir), "fetch", "--quiet",
             str(fake.repos[source].git_dir), f"+refs/heads/{head_ref}:refs/pull/{number}/head")
    else:
        set_ref(fake.repos_root, repo, f"refs/pull/{number}/head", sha)


def current_head_sha(fake: State, p: Pull) -> str:
    """The PR's head sha; a push to the head branch moves an open PR, like on GitHub."""
    source = p.head_repo if p.head_repo in fake.repos else p.repo
    sha = fake.ref(source, f"refs/heads/{p.head_ref}")
    if sha and sha != p.head_sha and p.state == "open":
        p.head_sha = sha
        set_pull_ref(fake, p.repo, p.number, source, p.head_ref, sha)
    return p.head_sha


def next_number(fake: State, repo: str) -> int:
    """The number a new pull request (or issue) of ``repo`` gets."""
    used = [n for (r, n) in fake.pulls_by_key if r == repo]
    used += [n for (r, n) in fake.issues if r == repo]
    return max(used, default=0) + 1


# --------------------------------------------------------------------------------------------
# JSON shapes
# --------------------------------------------------------------------------------------------


def pull_json(fake: State, p: Pull, simple: bool = False) -> dict[str, Any]:
    head_sha = current_head_sha(fake, p)
    base_sha = fake.ref(p.repo, f"refs/heads/{p.base_ref}") or ""
    base = fake.api(f"/repos/{p.repo}/pulls/{p.number}")
    issue = fake.api(f"/repos/{p.repo}/issues/{p.number}")
    html = fake.html(f"/{p.repo}/pull/{p.number}")
    head_owner = p.head_repo.split("/", 1)[0]
    base_owner = p.repo.split("/", 1)[0]
    out: dict[str, Any] = {
        "url": base, "id": p.id, "node_id": node_id("PullRequest", p.id), "html_url": html,
        "diff_url": html + ".diff", "patch_url": html + ".patch", "issue_url": issue,
        "commits_url": base + "/commits", "review_comments_url": base + "/comments",
        "review_comment_url": fake.api(f"/repos/{p.repo}/pulls/comments{{/number}}"),
        "comments_url": issue + "/comments",
        "statuses_url": fake.api(f"/repos/{p.repo}/statuses/{head_sha}"),
        "number": p.number, "state": p.state, "locked": False, "title": p.title,
        "user": user_json(fake, p.user), "body": p.body, "labels": [], "milestone": None,
        "active_lock_reason": None, "created_at": p.created_at, "updated_at": p.closed_at or p.created_at,
        "closed_at": p.closed_at, "merged_at": p.merged_at, "merge_commit_sha": p.merge_commit_sha, "assignee": None,
        "assignees": [], "requested_reviewers": [], "requested_teams": [],
        "head": {"label": f"{head_owner}:{p.head_ref}", "ref": p.head_ref, "sha": head_sha,
                 "user": user_json(fake, head_owner),
                 "repo": None if p.head_repo_deleted else repo_json(fake, p.head_repo)},
        "base": {"label": f"{base_owner}:{p.base_ref}", "ref": p.base_ref, "sha": base_sha,
                 "user": user_json(fake, base_owner, "Organization"),
                 "repo": repo_json(fake, p.repo)},
        "_links": {k: {"href": v} for k, v in {
            "self": base, "html": html, "issue": issue, "comments": issue + "/comments",
            "review_comments": base + "/comments",
            "review_comment": fake.api(f"/repos/{p.repo}/pulls/comments{{/number}}"),
            "commits": base + "/commits",
            "statuses": fake.api(f"/repos/{p.repo}/statuses/{head_sha}")}.items()},
        "author_association": "CONTRIBUTOR", "auto_merge": None, "draft": p.draft,
    }
    if out["head"]["repo"] is not None:
        out["head"]["repo"]["fork"] = p.head_repo != p.repo
    if not simple:
        files = pull_files(fake, p)
        out.update({
            "merged": p.merged, "mergeable": None if p.state == "closed" else True, "rebaseable": True,
            "mergeable_state": "unknown" if p.state == "closed" else "clean",
            "merged_by": user_json(fake, p.merged_by) if p.merged_by else None, "comments": 0,
            "review_comments": 0, "maintainer_can_modify": p.maintainer_can_modify,
            "commits": 1, "additions": sum(f["additions"] for f in files),
            "deletions": sum(f["deletions"] for f in files), "changed_files": len(files),
        })
    return out


def pull_files(fake: State, p: Pull) -> list[dict[str, Any]]:
    """GitHub's DiffEntry list for a PR: `git diff base...head`, patch = the hunks."""
    from unidiff import PatchSet

    head_sha = current_head_sha(fake, p)
    git_dir = str(fake.repos[p.repo].git_dir)
    base_sha = fake.ref(p.repo, f"refs/heads/{p.base_ref}")
    diff = _git("--git-dir", git_dir, "diff", "--no-color", "--no-ext-diff", "-M",
                "--full-index", f"{base_sha}...{head_sha}")
    out = []
    for pf in PatchSet(diff + "\n" if diff else ""):
        path = pf.path
        if pf.is_removed_file:
            status, sha = "removed", _blob_sha(git_dir, base_sha, pf.source_file[2:])
        else:
            status = "added" if pf.is_added_file else (
                "renamed" if pf.is_rename else "modified")
            sha = _blob_sha(git_dir, head_sha, path)
        entry: dict[str, Any] = {
            "sha": sha, "filename": path, "status": status, "additions": pf.added,
            "deletions": pf.removed, "changes": pf.added + pf.removed,
            "blob_url": fake.html(f"/{p.repo}/blob/{head_sha}/{path}"),
            "raw_url": fake.html(f"/{p.repo}/raw/{head_sha}/{path}"),
            "contents_url": fake.api(f"/repos/{p.repo}/contents/{path}?ref={head_sha}"),
        }
        if pf.is_rename:
            entry["previous_filename"] = pf.source_file[2:] if pf.source_file.startswith(
                "a/") else pf.source_file
        if not pf.is_binary_file and len(pf):
            text = str(pf)
            at = text.find("\n@@")
            entry["patch"] = text[at + 1:].rstrip("\n") if at >= 0 else ""
        out.append(entry)
    return out


def _contains(fake: State, p: Pull, sha: str) -> bool:
    """``sha`` is one of the pull request's commits: reachable from its head, not from its base."""
    git_dir = str(fake.repos[p.repo].git_dir)

    def ancestor(tip: str | None) -> bool:
        if not tip:
            return False
        try:
            _git("--git-dir", git_dir, "merge-base", "--is-ancestor", sha, tip)
        except RuntimeError:
            return False
        return True

    return ancestor(current_head_sha(fake, p)) and not ancestor(
        fake.ref(p.repo, f"refs/heads/{p.base_ref}"))


def _blob_sha(git_dir: str, ref: str | None, path: str) -> str:
    try:
        return _git("--git-dir", git_dir, "rev-parse", f"{ref}:{path}")
    except RuntimeError:
        return "0" * 40


def review_comment_json(fake: State, repo: str, number: int, cid: int, review_id: int | None,
                        c: Mapping[str, Any], login: str,
                        user_type: str = "User") -> dict[str, Any]:
    stamp = now_iso()
    pr_url = fake.api(f"/repos/{repo}/pulls/{number}")
    url = fake.api(f"/repos/{repo}/pulls/comments/{cid}")
    html = fake.html(f"/{repo}/pull/{number}#discussion_r{cid}")
    p = fake.pulls_by_key.get((repo, number))
    sha = p.head_sha if p else "0" * 40
    return {
        "url": url, "pull_request_review_id": review_id, "id": cid,
        "node_id": node_id("PullRequestReviewComment", cid), "diff_hunk": "@@",
        "path": c.get("path", ""), "position": None, "original_position": None,
        "commit_id": sha, "original_commit_id": sha, "user": user_json(fake, login, user_type),
        "body": c.get("body", ""), "created_at": stamp, "updated_at": stamp,
        "html_url": html, "pull_request_url": pr_url, "author_association": "MEMBER",
        "_links": {"self": {"href": url}, "html": {"href": html},
                   "pull_request": {"href": pr_url}},
        "line": c.get("line"), "start_line": c.get("start_line"), "side": c.get("side"),
        "start_side": c.get("start_side"),
    }


def review_json(fake: State, rec: dict[str, Any]) -> dict[str, Any]:
    repo, number, rid = rec["repo"], rec["number"], rec["id"]
    html = fake.html(f"/{repo}/pull/{number}#pullrequestreview-{rid}")
    pr_url = fake.api(f"/repos/{repo}/pulls/{number}")
    author = rec.get("user")  # someone else's review (``FakeGitHub.add_review``), else the app's
    return {
        "id": rid, "node_id": node_id("PullRequestReview", rid),
        "user": user_json(fake, *author) if author else bot_json(fake),
        "body": rec["body"], "state": rec["state"],
        "html_url": html, "pull_request_url": pr_url,
        "_links": {"html": {"href": html}, "pull_request": {"href": pr_url}},
        "submitted_at": rec["submitted_at"], "commit_id": rec["commit_id"],
        "author_association": "NONE",
    }


def validate_review_comments(fake: State, p: Pull, comments: list[Mapping[str, Any]]) -> None:
    """Like GitHub: each comment's lines must lie in one hunk of the PR diff on that side."""
    from unidiff import PatchSet

    files = {f["filename"]: f for f in pull_files(fake, p)}
    for c in comments:
        f = files.get(c.get("path", ""))
        if f is None or "patch" not in f:
            raise GitHubError(422, "Unprocessable Entity", [
                "Path could not be resolved"])
        line = c.get("line")
        if line is None:
            raise GitHubError(422, "Unprocessable Entity", ["line is required"])
        start = c.get("start_line", line)
        side = c.get("side", "RIGHT")
        if c.get("start_line") is not None and start >= line:
            raise GitHubError(422, "Unprocessable Entity",
                              ["start_line must precede the end line."])
        ok = False
        text = f"--- a/{f['filename']}\n+++ b/{f['filename']}\n{f['patch']}\n"
        for hunk in PatchSet(text)[0]:
            if side == "RIGHT":
                lines = {ln.target_line_no for ln in hunk if ln.target_line_no is not None}
            else:
                lines = {ln.source_line_no for ln in hunk if ln.source_line_no is not None}
            if all(n in lines for n in range(start, line + 1)):
                ok = True
                break
        if not ok:
            raise GitHubError(422, "Unprocessable Entity", [
                "Line could not be resolved" if c.get("start_line") is None else
                "Start line must be part of the same hunk as the line."])


# --------------------------------------------------------------------------------------------
# routes
# --------------------------------------------------------------------------------------------


def router(fake: FakeGitHub) -> APIRouter:
    api = APIRouter()

    def pull_or_404(request: Request, owner: str, name: str, number: int) -> Pull:
        r, _ = repo_for(fake, request, owner, name)
        p = fake.pulls_by_key.get((r.full_name, number))
        if p is None:
            raise GitHubError(404, "Not Found")
        return p

    @api.get("/repos/{owner}/{name}/pulls")
    async def list_pulls(owner: str, name: str, request: Request):
        r, _ = repo_for(fake, request, owner, name)
        state = request.query_params.get("state", "open")
        head = request.query_params.get("head")
        base = request.query_params.get("base")
        items = []
        for (repo, _n), p in sorted(fake.pulls_by_key.items()):
            if repo != r.full_name or (state != "all" and p.state != state):
                continue
            if head:
                h_owner, _, h_ref = head.partition(":")
                if not h_ref:
                    h_owner, h_ref = r.owner, head
                if p.head_ref != h_ref or p.head_repo.split("/")[0] != h_owner:
                    continue
            if base and p.base_ref != base:
                continue
            items.append(pull_json(fake, p, simple=True))
        return paginate(fake, request, items)

    @api.get("/repos/{owner}/{name}/commits/{sha}/pulls")
    async def pulls_for_commit(owner: str, name: str, sha: str, request: Request):
        """Open pull requests that contain the commit — like GitHub, only those whose head
        branch lives in this repository: a fork's commit lists nothing here."""
        r, _ = repo_for(fake, request, owner, name)
        if fake.ref(r.full_name, sha) is None:
            raise GitHubError(422, f"No commit found for SHA: {sha}")
        items = []
        for (repo, _n), p in sorted(fake.pulls_by_key.items()):
            if repo != r.full_name or p.state != "open" or p.head_repo != r.full_name:
                continue
            if _contains(fake, p, sha):
                items.append(pull_json(fake, p, simple=True))
        return paginate(fake, request, items)

    @api.post("/repos/{owner}/{name}/pulls", status_code=201)
    async def create_pull(owner: str, name: str, request: Request):
        r, _ = repo_for(fake, request, owner, name)
        body = await read_json(request) or {}
        head, base = body.get("head", ""), body.get("base", "")
        if not body.get("title") or not head or not base:
            raise GitHubError(422, "Validation Failed", [{"resource": "PullRequest",
                                                          "code": "missing_field"}])
        h_owner, _, h_ref = head.partition(":")
        if not h_ref:
            h_owner, h_ref = r.owner, head
        head_repo = r.full_name if h_owner == r.owner else f"{h_owner}/{r.name}"
        source = head_repo if head_repo in fake.repos else r.full_name
        if fake.ref(source, f"refs/heads/{h_ref}") is None:
            raise GitHubError(422, "Validation Failed", [{"resource": "PullRequest",
                                                          "field": "head", "code": "invalid"}])
        if fake.ref(r.full_name, f"refs/heads/{base}") is None:
            raise GitHubError(422, "Validation Failed", [{"resource": "PullRequest",
                                                          "field": "base", "code": "invalid"}])
        with fake.lock:
            for p in fake.pulls_by_key.values():
                if (p.repo == r.full_name and p.state == "open" and p.head_ref == h_ref
                        and p.head_repo == head_repo and p.base_ref == base):
                    raise GitHubError(422, "Validation Failed", [{
                        "resource": "PullRequest", "code": "custom",
                        "message": f"A pull request already exists for {h_owner}:{h_ref}."}])
            number = next_number(fake, r.full_name)
        fake.add_pull(r.full_name, number, head_ref=h_ref, base_ref=base, head_repo=head_repo,
                      user=fake.bot_login, title=body["title"], body=body.get("body"),
                      draft=bool(body.get("draft", False)),
                      maintainer_can_modify=bool(body.get("maintainer_can_modify", False)))
        with fake.lock:
            fake.pulls_by_key[(r.full_name, number)].user = fake.bot_login
        return JSONResponse(pull_json(fake, fake.pulls_by_key[(r.full_name, number)]),
                            status_code=201)

    @api.get("/repos/{owner}/{name}/pulls/{number}")
    async def get_pull(owner: str, name: str, number: int, request: Request):
        return pull_json(fake, pull_or_404(request, owner, name, number))

    @api.get("/repos/{owner}/{name}/pulls/{number}/files")
    async def list_files(owner: str, name: str, number: int, request: Request):
        return paginate(fake, request, pull_files(fake, pull_or_404(request, owner, name, number)))

    @api.get("/repos/{owner}/{name}/pulls/{number}/reviews")
    async def list_reviews(owner: str, name: str, number: int, request: Request):
        r, _ = repo_for(fake, request, owner, name)
        if (r.full_name, number) not in fake.pulls_by_key:
            raise GitHubError(404, "Not Found")
        items = [review_json(fake, rec) for _, rec in sorted(fake.review_records.items())
                 if rec["repo"] == r.full_name and rec["number"] == number]
        return paginate(fake, request, items)

    @api.post("/repos/{owner}/{name}/pulls/{number}/reviews")
    async def create_review(owner: str, name: str, number: int, request: Request):
        p = pull_or_404(request, owner, name, number)
        body = await read_json(request) or {}
        event = body.get("event")
        commit_id = body.get("commit_id") or current_head_sha(fake, p)
        comments = list(body.get("comments") or [])
        validate_review_comments(fake, p, comments)
        state = _REVIEW_STATE.get(event or "", "PENDING")
        with fake.lock:
            rid = fake.next_id()
            posted = []
            for c in comments:
                cid = fake.next_id()
                fake.review_comments[cid] = {
                    "repo": p.repo, "number": number, "review_id": rid,
                    "json": review_comment_json(fake, p.repo, number, cid, rid, c,
                                                fake.bot_login, "Bot"),
                }
                posted.append(dict(c, id=cid))
            rec = {"repo": p.repo, "number": number, "id": rid,
                   "body": body.get("body") or "", "state": state, "event": event,
                   "commit_id": commit_id, "comments": posted,
                   "submitted_at": now_iso() if state != "PENDING" else None}
            fake.review_records[rid] = rec
        return review_json(fake, rec)

    return api
