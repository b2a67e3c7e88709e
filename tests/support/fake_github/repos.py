"""Repository endpoints: the repository itself, file and directory contents at a ref (read from
the bare git repository), and a collaborator's permission."""

from __future__ import annotations

import base64
import subprocess
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request

from tests.support.fake_github.auth import repo_for
from tests.support.fake_github.shapes import repo_json, user_json
from tests.support.fake_github.state import GitHubError, State, node_id
from tests.support.git_http import _git

if TYPE_CHECKING:
    from tests.support.fake_github.fake import FakeGitHub

ROLE_OF = {"admin": "admin", "maintain": "maintain", "write": "write", "triage": "triage",
           "read": "read", "none": "none"}
# the legacy `permission` field GitHub returns next to role_name
LEGACY_PERMISSION = {"admin": "admin", "maintain": "write", "write": "write", "triage": "read",
                     "read": "read", "none": "none"}


def content_item(fake: State, repo: str, ref: str, path: str, sha: str, kind: str,
                 size: int) -> dict[str, Any]:
    url = fake.api(f"/repos/{repo}/contents/{path}?ref={ref}")
    html = fake.html(f"/{repo}/blob/{ref}/{path}")
    git_url = fake.api(f"/repos/{repo}/git/{'trees' if kind == 'dir' else 'blobs'}/{sha}")
    return {
        "type": kind, "size": size, "name": path.rsplit("/", 1)[-1], "path": path,
        "sha": sha, "url": url, "git_url": git_url, "html_url": html,
        "download_url": fake.html(f"/{repo}/raw/{ref}/{path}") if kind == "file" else None,
        "_links": {"self": url, "git": git_url, "html": html},
    }


def commit_json(fake: State, repo: str, sha: str) -> dict[str, Any]:
    """A commit as the commits and compare APIs show it."""
    git_dir = str(fake.repos[repo].git_dir)
    fields = _git("--git-dir", git_dir, "show", "-s", "--format=%T%x00%P%x00%an%x00%ae%x00%aI%x00%B", sha)
    tree, parents, author, email, stamp, message = fields.split("\x00", 5)
    person = {"name": author, "email": email, "date": stamp}
    url = fake.api(f"/repos/{repo}/commits/{sha}")
    return {
        "sha": sha, "node_id": node_id("Commit", sha), "url": url,
        "html_url": fake.html(f"/{repo}/commit/{sha}"), "comments_url": url + "/comments",
        "commit": {"url": fake.api(f"/repos/{repo}/git/commits/{sha}"), "author": person, "committer": person,
                   "message": message.strip(), "tree": {"sha": tree, "url": fake.api(f"/repos/{repo}/git/trees/{tree}")},
                   "comment_count": 0},
        "author": None, "committer": None,
        "parents": [{"sha": p, "url": fake.api(f"/repos/{repo}/commits/{p}")} for p in parents.split()],
    }


def branch_json(fake: State, repo: str, branch: str, sha: str) -> dict[str, Any]:
    """GitHub's branch-with-protection (``GET /repos/{owner}/{repo}/branches/{branch}``)."""
    git_dir = str(fake.repos[repo].git_dir)
    parents = _git("--git-dir", git_dir, "rev-list", "--parents", "-n1", sha).split()[1:]
    message = _git("--git-dir", git_dir, "log", "-1", "--format=%B", sha)
    commit_url = fake.api(f"/repos/{repo}/commits/{sha}")
    person = {"name": "Test Author", "email": "author@example.com", "date": "2024-01-01T00:00:00Z"}
    url = fake.api(f"/repos/{repo}/branches/{branch}")
    return {
        "name": branch,
        "commit": {
            "sha": sha, "node_id": f"C_{sha[:12]}", "url": commit_url,
            "html_url": fake.html(f"/{repo}/commit/{sha}"), "comments_url": commit_url + "/comments",
            "commit": {"author": person, "committer": person, "message": message,
                       "tree": {"sha": _git("--git-dir", git_dir, "rev-parse", f"{sha}^{{tree}}"),
                                "url": fake.api(f"/repos/{repo}/git/trees/{sha}")},
                       "url": fake.api(f"/repos/{repo}/git/commits/{sha}"), "comment_count": 0,
                       "verification": {"verified": False, "reason": "unsigned", "signature": None,
                                        "payload": None, "verified_at": None}},
            "author": None, "committer": None,
            "parents": [{"sha": p, "url": fake.api(f"/repos/{repo}/commits/{p}"),
                         "html_url": fake.html(f"/{repo}/commit/{p}")} for p in parents],
        },
        "_links": {"self": url, "html": fake.html(f"/{repo}/tree/{branch}")},
        "protected": False,
        "protection": {"enabled": False, "required_status_checks": {
            "enforcement_level": "off", "contexts": [], "checks": []}},
        "protection_url": url + "/protection",
    }


def _git_bytes(git_dir: str, *args: str) -> bytes:
    proc = subprocess.run(["git", "--git-dir", git_dir, *args], capture_output=True, timeout=60)
    if proc.returncode != 0:
        raise GitHubError(404, "Not Found")
    return proc.stdout


def router(fake: FakeGitHub) -> APIRouter:
    api = APIRouter()

    @api.get("/repos/{owner}/{name}")
    async def get_repo(owner: str, name: str, request: Request):
        r, _ = repo_for(fake, request, owner, name)
        return repo_json(fake, r.full_name)

    @api.get("/repos/{owner}/{name}/contents/{path:path}")
    async def get_contents(owner: str, name: str, path: str, request: Request):
        r, _ = repo_for(fake, request, owner, name)
        ref = request.query_params.get("ref") or r.default_branch
        git_dir = str(r.git_dir)
        path = path.strip("/")
        try:
            kind = _git("--git-dir", git_dir, "cat-file", "-t", f"{ref}:{path}")
        except RuntimeError:
            raise GitHubError(404, "Not Found") from None
        sha = _git("--git-dir", git_dir, "rev-parse", f"{ref}:{path}")
        if kind == "tree":
            listing = _git("--git-dir", git_dir, "ls-tree", "-l", f"{ref}:{path}" if path
                           else ref)
            items = []
            for line in listing.splitlines():
                meta, _, entry = line.partition("\t")
                _mode, otype, osha, size = meta.split()
                item_path = f"{path}/{entry}" if path else entry
                items.append(content_item(fake, r.full_name, ref, item_path, osha,
                                          "dir" if otype == "tree" else "file",
                                          0 if size == "-" else int(size)))
            return items
        blob = _git_bytes(git_dir, "cat-file", "blob", sha)
        item = content_item(fake, r.full_name, ref, path, sha, "file", len(blob))
        item["encoding"] = "base64"
        item["content"] = base64.encodebytes(blob).decode()
        return item

    @api.get("/repos/{owner}/{name}/compare/{basehead}")
    async def compare(owner: str, name: str, basehead: str, request: Request):
        """How ``head`` relates to ``base`` (``base...head``): ahead, behind, identical or diverged."""
        r, _ = repo_for(fake, request, owner, name)
        base_ref, sep, head_ref = basehead.partition("...")
        git_dir = str(r.git_dir)
        base, head = fake.ref(r.full_name, base_ref), fake.ref(r.full_name, head_ref)
        if not sep or base is None or head is None:
            raise GitHubError(404, "Not Found")
        try:
            merge_base = _git("--git-dir", git_dir, "merge-base", base, head)
        except RuntimeError:
            raise GitHubError(404, f"No common ancestor between {base_ref} and {head_ref}.") from None
        ahead = _git("--git-dir", git_dir, "rev-list", f"{base}..{head}").split()
        behind = _git("--git-dir", git_dir, "rev-list", f"{head}..{base}").split()
        status = ("identical" if not ahead and not behind else "ahead" if not behind
                  else "behind" if not ahead else "diverged")
        html = fake.html(f"/{r.full_name}/compare/{basehead}")
        return {
            "url": fake.api(f"/repos/{r.full_name}/compare/{basehead}"), "html_url": html,
            "permalink_url": html, "diff_url": html + ".diff", "patch_url": html + ".patch",
            "base_commit": commit_json(fake, r.full_name, base),
            "merge_base_commit": commit_json(fake, r.full_name, merge_base),
            "status": status, "ahead_by": len(ahead), "behind_by": len(behind), "total_commits": len(ahead),
            "commits": [commit_json(fake, r.full_name, sha) for sha in reversed(ahead)], "files": [],
        }

    @api.get("/repos/{owner}/{name}/branches/{branch:path}")
    async def get_branch(owner: str, name: str, branch: str, request: Request):
        r, _ = repo_for(fake, request, owner, name)
        sha = fake.ref(r.full_name, f"refs/heads/{branch}")
        if sha is None:
            raise GitHubError(404, "Branch not found")
        return branch_json(fake, r.full_name, branch, sha)

    @api.get("/repos/{owner}/{name}/collaborators/{user}/permission")
    async def get_permission(owner: str, name: str, user: str, request: Request):
        r, _ = repo_for(fake, request, owner, name)
        role = fake.permissions.get((r.full_name, user), "none" if r.private else "read")
        collab = user_json(fake, user)
        collab["role_name"] = role
        collab["permissions"] = {
            "pull": role != "none", "triage": role in ("triage", "write", "maintain", "admin"),
            "push": role in ("write", "maintain", "admin"),
            "maintain": role in ("maintain", "admin"), "admin": role == "admin",
        }
        return {"permission": LEGACY_PERMISSION[role], "role_name": role, "user": collab}

    return api
