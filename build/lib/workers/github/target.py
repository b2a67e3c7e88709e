"""What a job works on — repository, pull request, head and base — read through the API at job start.

Responses are read as plain JSON, field by field, so older GitHub Enterprise servers that omit
fields still work.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from githubkit.exception import RequestFailed

from workers.github.provenance import branch_tip, find_pull_request, untied_reason


@dataclass(frozen=True)
class Target:
    repo: str  # owner/name
    clone_url: str
    default_branch: str
    head_sha: str  # the commit the job was triggered for (frozen at trigger time)
    head_ref: str | None
    head_repo: str | None  # where the head commit lives (a fork for fork PRs); None: unknown (fork deleted)
    head_clone_url: str | None
    base_ref: str  # configuration, prompts and context are read here, never from the head
    current_head_sha: str | None = None  # the PR's head now, to notice pushes made since
    pr_number: int | None = None
    maintainer_can_modify: bool = False
    pr_title: str | None = None
    pr_body: str | None = None
    untied: str | None = None  # why the head is neither an open pull request's nor a base branch's
    base_sha: str | None = None  # the base branch's tip, for the merge base of a pull request


    @property
    def owner(self) -> str:
        return self.repo.split("/", 1)[0]

    @property
    def name(self) -> str:
        return self.repo.split("/", 1)[1]

    @property
    def fork(self) -> bool:
        """The head commit lives outside the base repository (or nobody can tell where): its code
        is never pushed to any ref of the base repository."""
        return self.head_repo != self.repo

    @property
    def on_default_branch(self) -> bool:
        return self.pr_number is None and not self.fork and self.head_ref == self.default_branch

    @property
    def fetch_refs(self) -> list[str]:
        """Refs that make the head commit reachable in the base repository (a fork's included)."""
        return [f"refs/pull/{self.pr_number}/head"] if self.pr_number else []

    @property
    def can_push_to_head(self) -> bool:
        """The app may push to the PR branch: same repository, or a fork that allows maintainer edits
        (and still exists)."""
        if self.pr_number is None or not self.head_ref:
            return False
        return not self.fork or (self.maintainer_can_modify and bool(self.head_repo and self.head_clone_url))


def _json(response) -> dict:
    data = response.raw_response.json()
    return data if isinstance(data, dict) else {}


def resolve_target(gh, repo: str, pr_number: int | None, head_sha: str | None, head_branch: str | None,
                   head_repo: str | None = None) -> Target:
    """The job's target. Without a pull request number (a red build GitHub tied to none) the head's
    pull request is looked for; failing that the head must be ``head_branch`` of ``repo`` itself,
    else the target says why it is ``untied``. ``head_repo``: where the event says the head lives."""
    owner, name = repo.split("/", 1)
    info = _json(gh.rest.repos.get(owner, name))
    default_branch = info.get("default_branch") or "main"
    clone_url = info.get("clone_url") or ""
    if pr_number is None and head_sha:
        pr_number = find_pull_request(gh, repo, head_sha, head_branch, head_repo)
    if pr_number is None:
        tip = None
        if head_branch and (head_repo or repo) == repo:
            tip = branch_tip(gh, repo, head_branch)
        return Target(
            repo=repo, clone_url=clone_url, default_branch=default_branch, head_sha=head_sha or "",
            head_ref=head_branch, head_repo=head_repo or repo, head_clone_url=clone_url if (head_repo or repo) == repo else None,
            base_ref=default_branch, current_head_sha=tip or head_sha,
            untied=untied_reason(repo, head_sha or "", head_branch, head_repo, tip),
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
        base_sha=base.get("sha"),
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
