"""Webhook payloads built from the fake's own state, shaped as GitHub's webhook docs show them:
``pull_request`` (synchronize, closed with ``merged``), ``push``, ``pull_request_review_thread``
(resolved / unresolved) and ``workflow_run``. A test changes the state (a push, a merge), then
delivers the payload GitHub would send about it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tests.support.fake_github.actions import workflow_run_json
from tests.support.fake_github.pulls import pull_json
from tests.support.fake_github.shapes import repo_json, user_json
from tests.support.fake_github.state import node_id
from tests.support.git_http import _git

if TYPE_CHECKING:
    from tests.support.fake_github.fake import FakeGitHub


def _envelope(fake: FakeGitHub, repo: str, sender: str, sender_type: str) -> dict[str, Any]:
    installation = fake.repos[repo].installation_id
    return {"repository": repo_json(fake, repo), "sender": user_json(fake, sender, sender_type),
            "installation": {"id": installation, "node_id": node_id("Installation", installation)}}


def pull_request(fake: FakeGitHub, repo: str, number: int, action: str, sender: str, before: str | None,
                 sender_type: str) -> dict[str, Any]:
    pr = pull_json(fake, fake.pulls_by_key[(repo, number)])
    payload = {"action": action, "number": number, "pull_request": pr,
               **_envelope(fake, repo, sender, sender_type)}
    if action == "synchronize":
        payload.update(before=before or "0" * 40, after=pr["head"]["sha"])
    return payload


def _commit(fake: FakeGitHub, repo: str, sha: str) -> dict[str, Any]:
    git_dir = str(fake.repos[repo].git_dir)
    fields = _git("--git-dir", git_dir, "show", "-s", "--format=%T%x00%an%x00%ae%x00%aI%x00%cn%x00%ce%x00%B", sha)
    tree, author, email, stamp, committer, committer_email, message = fields.split("\x00", 6)
    changes = _git("--git-dir", git_dir, "diff-tree", "--no-commit-id", "--name-status", "-r", "--root", sha)
    status = [line.split("\t", 1) for line in changes.splitlines() if "\t" in line]
    return {
        "id": sha, "tree_id": tree, "distinct": True, "message": message.strip(), "timestamp": stamp,
        "url": fake.html(f"/{repo}/commit/{sha}"),
        "author": {"name": author, "email": email, "username": None},
        "committer": {"name": committer, "email": committer_email, "username": None},
        "added": [p for s, p in status if s == "A"], "removed": [p for s, p in status if s == "D"],
        "modified": [p for s, p in status if s not in ("A", "D")],
    }


def push(fake: FakeGitHub, repo: str, branch: str, before: str, after: str, sender: str, sender_type: str,
         forced: bool) -> dict[str, Any]:
    git_dir = str(fake.repos[repo].git_dir)
    shas = _git("--git-dir", git_dir, "rev-list", "--reverse", after, f"^{before}").split() if not forced else [after]
    commits = [_commit(fake, repo, sha) for sha in shas]
    payload = {
        "ref": f"refs/heads/{branch}", "before": before, "after": after, "created": False, "deleted": False,
        "forced": forced, "base_ref": None, "compare": fake.html(f"/{repo}/compare/{before[:12]}...{after[:12]}"),
        "commits": commits, "head_commit": commits[-1] if commits else None,
        "pusher": {"name": sender, "email": f"{sender}@users.noreply.github.com"},
        **_envelope(fake, repo, sender, sender_type),
    }
    payload["repository"]["pushed_at"] = 1_700_000_000  # push payloads carry epoch seconds here
    return payload


def review_thread(fake: FakeGitHub, repo: str, number: int, comment_ids: list[int], action: str,
                  sender: str) -> dict[str, Any]:
    comments = [fake.review_comments[cid]["json"] for cid in comment_ids]
    return {
        "action": action,
        "thread": {"node_id": node_id("PullRequestReviewThread", comment_ids[0]), "comments": comments},
        "pull_request": pull_json(fake, fake.pulls_by_key[(repo, number)], simple=True),
        **_envelope(fake, repo, sender, "User"),
    }


def workflow_run(fake: FakeGitHub, run_id: int, sender: str, sender_type: str) -> dict[str, Any]:
    run = fake.workflow_runs[run_id]
    data = workflow_run_json(fake, run)
    workflow = {"id": data["workflow_id"], "node_id": node_id("Workflow", data["workflow_id"]), "name": run["name"],
                "path": run["path"], "state": "active", "created_at": data["created_at"],
                "updated_at": data["updated_at"], "url": data["workflow_url"]}
    return {"action": "completed" if run["status"] == "completed" else "requested", "workflow_run": data,
            "workflow": workflow, **_envelope(fake, run["repo"], sender, sender_type)}
