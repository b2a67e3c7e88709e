"""Where a red build's head commit lives: the open pull request it is the head of, or a branch of
the base repository — or neither, and then nothing may be delivered for it.

GitHub names no pull request for a fork's red build (`workflow_run.pull_requests` and
`check_suite.pull_requests` are empty), and `GET /commits/{sha}/pulls` lists only pull requests
whose head branch lives in the base repository, so a fork's pull request is found by its head
(`head=owner:branch`), or among the open pull requests when the payload names no head repository
(check suites). Responses are read as plain JSON so older GitHub Enterprise servers work too.
"""

from __future__ import annotations

from urllib.parse import quote

from core.github import split_repo, status_code

MAX_PULLS_SCANNED = 300  # open pull requests looked through when only the head commit is known


def _items(response) -> list[dict]:
    data = response.raw_response.json()
    return [item for item in data if isinstance(item, dict)] if isinstance(data, list) else []


def _head_of(pr: dict, sha: str) -> bool:
    head = pr.get("head") or {}
    return pr.get("state", "open") == "open" and head.get("sha") == sha


def find_pull_request(gh, repo: str, sha: str, branch: str | None, head_repo: str | None) -> int | None:
    """The number of the open pull request into ``repo`` whose head is ``sha``, or None."""
    owner, name = split_repo(repo)
    try:
        for pr in _items(gh.rest.repos.list_pull_requests_associated_with_commit(owner, name, sha)):
            if _head_of(pr, sha):
                return pr.get("number")
    except Exception as exc:
        if status_code(exc) not in (404, 409, 422):  # unknown commit, empty repository
            raise
    if head_repo and head_repo != repo and branch:
        head = f"{split_repo(head_repo)[0]}:{branch}"
        for pr in _items(gh.rest.pulls.list(owner, name, state="open", head=head, per_page=100)):
            if _head_of(pr, sha):
                return pr.get("number")
        return None
    if head_repo is None:  # a check suite: the head could be any fork's
        for page in range(1, MAX_PULLS_SCANNED // 100 + 1):
            pulls = _items(gh.rest.pulls.list(owner, name, state="open", sort="updated", direction="desc",
                                              per_page=100, page=page))
            for pr in pulls:
                if _head_of(pr, sha):
                    return pr.get("number")
            if len(pulls) < 100:
                break
    return None


def branch_tip(gh, repo: str, branch: str) -> str | None:
    """The commit ``branch`` of ``repo`` points to now, or None when there is no such branch."""
    owner, name = split_repo(repo)
    try:
        data = gh.rest.repos.get_branch(owner, name, quote(branch, safe="/")).raw_response.json()
    except Exception as exc:
        if status_code(exc) == 404:
            return None
        raise
    commit = data.get("commit") if isinstance(data, dict) else None
    return commit.get("sha") if isinstance(commit, dict) else None


def untied_reason(repo: str, sha: str, branch: str | None, head_repo: str | None, tip: str | None) -> str | None:
    """Why a head that is no open pull request's may not get a patch (None: it is ``branch`` of
    ``repo``, at ``tip`` now). A fork's commit never goes to a branch of the base repository."""
    short = sha[:7]
    if head_repo and head_repo != repo:
        return (f"its head commit {short} comes from {head_repo}, a fork, and is not the head of an open "
                f"pull request into {repo}")
    if not branch:
        return f"its head commit {short} is on no branch that the event names"
    if tip is None:
        return f"its head commit {short} is not the head of an open pull request, and {repo} has no branch `{branch}`"
    return None
