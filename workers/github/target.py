"""What a job works on — repository, pull request, head and base — read through the API at job start.

Responses are read as plain JSON, field by field, so older GitHub Enterprise servers that omit
fields still work.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from githubkit.exception import RequestFailed


@dataclass(frozen=True)
class Target:
    repo: str  # owner/name
    clone_url: str
    default_branch: str
    head_sha: str  # the commit the job was triggered for (frozen at trigger time)
    head_ref: str | None
    head_repo: str | None  # where the head branch lives (a fork for fork PRs)
    head_clone_url: str | None
    base_ref: str  # configuration, prompts and context are read here, never from the head
    current_head_sha: str | None = None  # the PR's head now, to notice pushes made since
    pr_number: int | None = None
    maintainer_can_modify: bool = False
    pr_title: str | None = None
    pr_body: str | None = None

    @property
    def owner(self) -> str:
        return self.repo.split("/", 1)[0]

    @property
    def name(self) -> str:
        return self.repo.split("/", 1)[1]

    @property
    def fork(self) -> bool:
        return bool(self.head_repo) and self.head_repo != self.repo

    @property
    def on_default_branch(self) -> bool:
        return self.pr_number is None and self.head_ref == self.default_branch

    @property
    def fetch_refs(self) -> list[str]:
        """Refs that make the head commit reachable in the base repository (a fork's included)."""
        return [f"refs/pull/{self.pr_number}/head"] if self.pr_number else []

    @property
    def can_push_to_head(self) -> bool:
        """The app may push to the PR branch: same repository, or a fork that allows maintainer edits."""
        return self.pr_number is not None and bool(self.head_ref) and (not self.fork or self.maintainer_can_modify)


def _json(response) -> dict:
    data = response.raw_response.json()
    return data if isinstance(data, dict) else {}


def resolve_target(gh, repo: str, pr_number: int | None, head_sha: str | None, head_branch: str | None) -> Target:
    owner, name = repo.split("/", 1)
    info = _json(gh.rest.repos.get(owner, name))
    default_branch = info.get("default_branch") or "main"
    clone_url = info.get("clone_url") or ""
    if pr_number is None:
        return Target(
            repo=repo, clone_url=clone_url, default_branch=default_branch, head_sha=head_sha or "",
            head_ref=head_branch, head_repo=repo, head_clone_url=clone_url,
            base_ref=default_branch, current_head_sha=head_sha,
        )
    pr = _json(gh.rest.pulls.get(owner, name, pr_number))
    head, base = pr.get("head") or {}, pr.get("base") or {}
    head_repo = head.get("repo") or {}
    return Target(
        repo=repo,
        clone_url=clone_url,
        default_branch=default_branch,
        head_sha=head_sha or head.get("sha") or "",
        head_ref=head.get("ref"),
        head_repo=head_repo.get("full_name"),
        head_clone_url=head_repo.get("clone_url"),
        base_ref=base.get("ref") or default_branch,
        current_head_sha=head.get("sha"),
        pr_number=pr_number,
        maintainer_can_modify=bool(pr.get("maintainer_can_modify")),
        pr_title=pr.get("title"),
        pr_body=pr.get("body"),
    )


def read_text(gh, repo: str, path: str, ref: str | None) -> str | None:
    """A file's text at a ref (None: the default branch) through the contents API; None when absent."""
    owner, name = repo.split("/", 1)
    try:
        data = _json(gh.rest.repos.get_content(owner, name, path, **({"ref": ref} if ref else {})))
    except RequestFailed as exc:
        if exc.response.status_code == 404:
            return None
        raise
    if data.get("type") != "file" or data.get("content") is None:
        return None
    return base64.b64decode(data["content"]).decode("utf-8", errors="replace")


def file_names(gh, repo: str, ref: str) -> set[str]:
    """Names of the files at the repository's root at a ref (one request), empty when none."""
    owner, name = repo.split("/", 1)
    try:
        listing = gh.rest.repos.get_content(owner, name, "", ref=ref).raw_response.json()
    except RequestFailed as exc:
        if exc.response.status_code == 404:
            return set()
        raise
    if not isinstance(listing, list):
        return set()
    return {item.get("name") for item in listing if isinstance(item, dict) and item.get("type") == "file"}
