"""Small webhook payloads built inline, with only what GitHub always sends."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid

REPO = "octo/widgets"


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def headers(secret: str, body: bytes, event: str, delivery: str | None = None) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "X-Hub-Signature-256": sign(secret, body),
    }


def encode(payload: dict) -> bytes:
    return json.dumps(payload).encode()


def base(installation: int = 7, repo: str = REPO, sender: str = "alice", sender_type: str = "User") -> dict:
    return {
        "installation": {"id": installation},
        "repository": {"full_name": repo, "name": repo.split("/")[1], "owner": {"login": repo.split("/")[0]}},
        "sender": {"login": sender, "type": sender_type},
    }


def workflow_run(conclusion: str = "failure", sha: str = "a" * 40, run_id: int = 101, prs=(1,), workflow_id=55, **kw) -> dict:
    return {
        **base(**kw),
        "action": "completed",
        "workflow_run": {
            "id": run_id,
            "name": "CI",
            "path": ".github/workflows/ci.yml",
            "workflow_id": workflow_id,
            "head_sha": sha,
            "head_branch": "feature",
            "conclusion": conclusion,
            "event": "pull_request",
            "run_attempt": 1,
            "pull_requests": [{"number": n} for n in prs],
        },
    }


def pull_request(action: str = "opened", number: int = 1, sha: str = "b" * 40, **kw) -> dict:
    return {
        **base(**kw),
        "action": action,
        "number": number,
        "pull_request": {
            "number": number,
            "draft": False,
            "head": {"sha": sha, "ref": "feature", "repo": {"full_name": kw.get("repo", REPO)}},
            "base": {"ref": "main", "sha": "c" * 40},
        },
    }


def issue_comment(body: str, number: int = 1, comment_id: int = 900, action: str = "created", on_pr: bool = True, **kw) -> dict:
    issue = {"number": number}
    if on_pr:
        issue["pull_request"] = {"url": f"https://api.github.com/repos/{REPO}/pulls/{number}"}
    return {
        **base(**kw),
        "action": action,
        "issue": issue,
        "comment": {"id": comment_id, "body": body, "created_at": "2026-11-23T10:00:00Z"},
    }
