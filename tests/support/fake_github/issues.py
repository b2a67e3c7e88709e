"""Issue (and pull request) conversation comments, and reactions on issue and review comments."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from tests.support.fake_github.auth import repo_for
from tests.support.fake_github.rest import paginate, read_json
from tests.support.fake_github.shapes import bot_json, user_json
from tests.support.fake_github.state import GitHubError, State, node_id, now_iso

if TYPE_CHECKING:
    from tests.support.fake_github.fake import FakeGitHub

REACTIONS = {"+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes"}


def issue_comment_json(fake: State, repo: str, number: int, cid: int, body: str, login: str,
                       user_type: str = "User") -> dict[str, Any]:
    stamp = now_iso()
    return {
        "id": cid, "node_id": node_id("IssueComment", cid),
        "url": fake.api(f"/repos/{repo}/issues/comments/{cid}"),
        "html_url": fake.html(f"/{repo}/pull/{number}#issuecomment-{cid}"),
        "body": body, "user": user_json(fake, login, user_type),
        "created_at": stamp, "updated_at": stamp,
        "issue_url": fake.api(f"/repos/{repo}/issues/{number}"),
        "author_association": "NONE" if user_type == "Bot" else "MEMBER",
    }


def require_issue(fake: State, repo: str, number: int) -> None:
    """404 unless ``number`` is a pull request or a plain issue of ``repo``."""
    if (repo, number) not in fake.pulls_by_key and (repo, number) not in fake.issues:
        raise GitHubError(404, "Not Found")


def router(fake: FakeGitHub) -> APIRouter:
    api = APIRouter()

    def comment_or_404(request: Request, owner: str, name: str, cid: int) -> dict[str, Any]:
        r, _ = repo_for(fake, request, owner, name)
        c = fake.issue_comments.get(cid)
        if c is None or c["repo"] != r.full_name:
            raise GitHubError(404, "Not Found")
        return c

    # ------------------------------------------------------------ comments

    @api.get("/repos/{owner}/{name}/issues/comments/{cid}")
    async def get_comment(owner: str, name: str, cid: int, request: Request):
        return comment_or_404(request, owner, name, cid)["json"]

    @api.patch("/repos/{owner}/{name}/issues/comments/{cid}")
    async def update_comment(owner: str, name: str, cid: int, request: Request):
        c = comment_or_404(request, owner, name, cid)
        if c["json"]["user"]["login"] != fake.bot_login:
            raise GitHubError(403, "Resource not accessible by integration")
        body = await read_json(request) or {}
        if "body" not in body:
            raise GitHubError(422, "Validation Failed")
        with fake.lock:
            c["json"]["body"] = body["body"]
            c["json"]["updated_at"] = now_iso()
        return c["json"]

    @api.get("/repos/{owner}/{name}/issues/{number}/comments")
    async def list_comments(owner: str, name: str, number: int, request: Request):
        r, _ = repo_for(fake, request, owner, name)
        require_issue(fake, r.full_name, number)
        return paginate(fake, request, fake.comments(r.full_name, number))

    @api.post("/repos/{owner}/{name}/issues/{number}/comments", status_code=201)
    async def create_comment(owner: str, name: str, number: int, request: Request):
        r, _ = repo_for(fake, request, owner, name)
        require_issue(fake, r.full_name, number)
        body = await read_json(request) or {}
        if not isinstance(body.get("body"), str) or not body["body"]:
            raise GitHubError(422, "Validation Failed", [{"resource": "IssueComment",
                                                          "field": "body",
                                                          "code": "missing_field"}])
        if len(body["body"]) > 65536:
            raise GitHubError(422, "Validation Failed", [{
                "resource": "IssueComment", "code": "custom", "field": "body",
                "message": "body is too long (maximum is 65536 characters)"}])
        cid = fake.add_comment(r.full_name, number, body["body"], fake.bot_login, "Bot")
        return JSONResponse(fake.issue_comments[cid]["json"], status_code=201)

    # ------------------------------------------------------------ reactions

    async def react(request: Request, owner: str, name: str, cid: int, subject: str):
        """The bot's reaction on a comment: 201 when new, 200 with the same one when repeated."""
        r, _ = repo_for(fake, request, owner, name)
        store = fake.issue_comments if subject == "issue_comment" else fake.review_comments
        c = store.get(cid)
        if c is None or c["repo"] != r.full_name:
            raise GitHubError(404, "Not Found")
        body = await read_json(request) or {}
        content = body.get("content")
        if content not in REACTIONS:
            raise GitHubError(422, "Validation Failed", [{"resource": "Reaction",
                                                          "field": "content",
                                                          "code": "invalid"}])
        with fake.lock:
            for rec in fake.reaction_records:
                if (rec["repo"], rec["subject"], rec["comment_id"], rec["content"],
                        rec["user"]) == (r.full_name, subject, cid, content, fake.bot_login):
                    return JSONResponse(rec["json"], status_code=200)
            rid = fake.next_id()
            js = {"id": rid, "node_id": node_id("Reaction", rid), "user": bot_json(fake),
                  "content": content, "created_at": now_iso()}
            fake.reaction_records.append({"repo": r.full_name, "subject": subject,
                                          "comment_id": cid, "content": content,
                                          "user": fake.bot_login, "id": rid, "json": js})
        return JSONResponse(js, status_code=201)

    @api.post("/repos/{owner}/{name}/issues/comments/{cid}/reactions")
    async def react_issue_comment(owner: str, name: str, cid: int, request: Request):
        return await react(request, owner, name, cid, "issue_comment")

    @api.post("/repos/{owner}/{name}/pulls/comments/{cid}/reactions")
    async def react_review_comment(owner: str, name: str, cid: int, request: Request):
        return await react(request, owner, name, cid, "pull_request_review_comment")

    return api
