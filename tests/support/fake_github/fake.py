"""``FakeGitHub``, the object a test holds: the stores of ``State``, the setup API that fills them
(installations, repositories, pushes, pull requests, comments, check runs, workflow runs), the
readers of what the app did, and ``.app``, the ASGI app serving it all."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from tests.support.fake_github import events, hooks
from tests.support.fake_github.checks import annotation, check_run_json
from tests.support.fake_github.issues import issue_comment_json
from tests.support.fake_github.pulls import (
    current_head_sha,
    pull_json,
    review_comment_json,
    review_json,
    set_pull_ref,
)
from tests.support.fake_github.repos import ROLE_OF
from tests.support.fake_github.server import build_app
from tests.support.fake_github.state import (
    APP_SLUG,
    CREATED_AT,
    Pull,
    Repo,
    State,
    now_iso,
    stable_id,
)
from tests.support.git_http import _git, bare_repo_path, make_bare_repo, push_commit, set_ref


class FakeGitHub(State):
    """A fake GitHub: see the package docstring."""

    def __init__(self, repos_root: Path, app_id: int, private_key_pem: str, public_key_pem: str):
        super().__init__(repos_root, app_id, private_key_pem, public_key_pem)
        self.app = build_app(self)

    # ---------------------------------------------------------------- setup

    def add_installation(self, installation_id: int, account: str,
                         account_type: str = "Organization",
                         repository_selection: str = "selected") -> dict[str, Any]:
        with self.lock:
            self.installations[installation_id] = {
                "id": installation_id,
                "account": account,
                "account_type": account_type,
                "repository_selection": repository_selection,
            }
            return self.installations[installation_id]

    def suspend_installation(self, installation_id: int) -> None:
        """Suspended on GitHub: listed with ``suspended_at``, no tokens for it."""
        with self.lock:
            self.installations[installation_id]["suspended_at"] = "2024-02-01T00:00:00Z"
            for token, t in list(self.tokens.items()):
                if t.installation_id == installation_id:
                    del self.tokens[token]

    def remove_installation(self, installation_id: int) -> None:
        """Uninstalled: gone from ``GET /app/installations``; its repositories unreachable."""
        with self.lock:
            self.installations.pop(installation_id, None)
            for r in self.repos.values():
                if r.installation_id == installation_id:
                    r.installation_id = None

    def add_repo(self, full_name: str, files: Mapping[str, str | bytes] | None = None,
                 default_branch: str = "main", installation_id: int | None = None,
                 private: bool = False, repo_id: int | None = None) -> str:
        """Create a repository backed by a real bare git repo; return the first commit's sha.

        ``installation_id`` defaults to the only installation when there is exactly one.
        """
        if installation_id is None and len(self.installations) == 1:
            installation_id = next(iter(self.installations))
        sha = make_bare_repo(self.repos_root, full_name, dict(files or {"README.md": "# repo\n"}),
                             branch=default_branch)
        with self.lock:
            self.repos[full_name] = Repo(
                id=repo_id or stable_id("repo:" + full_name),
                full_name=full_name,
                installation_id=installation_id,
                default_branch=default_branch,
                private=private,
                git_dir=bare_repo_path(self.repos_root, full_name),
            )
        return sha

    def add_fork(self, source: str, full_name: str) -> None:
        """``full_name`` as a fork of ``source``: a copy of its git history, owned by someone the
        app is not installed for (so its token cannot reach it, as on GitHub)."""
        git_dir = bare_repo_path(self.repos_root, full_name)
        git_dir.parent.mkdir(parents=True, exist_ok=True)
        _git("clone", "--quiet", "--bare", str(self.repos[source].git_dir), str(git_dir))
        with self.lock:
            self.repos[full_name] = Repo(
                id=stable_id("repo:" + full_name), full_name=full_name, installation_id=None,
                default_branch=self.repos[source].default_branch, private=False, git_dir=git_dir,
                parent=source,
            )

    def push(self, full_name: str, branch: str, files: Mapping[str, str | bytes],
             message: str = "Update", parent_branch: str | None = None,
             delete: Iterable[str] = ()) -> str:
        """Commit ``files`` onto ``branch`` (created from ``parent_branch``); return the sha."""
        return push_commit(self.repos_root, full_name, branch, files, message, parent_branch,
                           delete)

    def add_pull(self, repo: str, number: int, head_ref: str, head_sha: str | None = None,
                 base_ref: str | None = None, fork: bool = False,
                 maintainer_can_modify: bool = False, head_repo: str | None = None,
                 user: str = "contributor", title: str | None = None, body: str | None = "",
                 state: str = "open", draft: bool = False,
                 head_repo_deleted: bool = False) -> dict[str, Any]:
        """Register pull request ``number``.

        The head commit is ``head_ref`` of ``head_repo`` (default: the repository itself, or
        ``<user>/<name>`` for ``fork=True``; when that fork is not a known repository, the branch
        is read from the base repository). Like GitHub, ``refs/pull/N/head`` is set in the base
        repository and ``head.sha`` follows later pushes to the head branch.
        ``head_repo_deleted``: the fork was deleted, so GitHub sends ``head.repo: null``.
        """
        r = self.repos[repo]
        if head_repo is None:
            head_repo = f"{user}/{r.name}" if fork else repo
        source = head_repo if head_repo in self.repos else repo
        if head_sha is None:
            head_sha = self.ref(source, f"refs/heads/{head_ref}")
            if head_sha is None:
                raise ValueError(f"{source} has no branch {head_ref!r}")
        set_pull_ref(self, repo, number, source, head_ref, head_sha)
        pull = Pull(repo=repo, number=number, id=stable_id(f"pull:{repo}#{number}"),
                    head_ref=head_ref, head_sha=head_sha, base_ref=base_ref or r.default_branch,
                    head_repo=head_repo, maintainer_can_modify=maintainer_can_modify, user=user,
                    title=title or f"Change {head_ref}", body=body, state=state, draft=draft,
                    head_repo_deleted=head_repo_deleted)
        with self.lock:
            self.pulls_by_key[(repo, number)] = pull
        return pull_json(self, pull)

    def merge_pull(self, repo: str, number: int, user: str = "maintainer") -> str:
        """Merge pull request ``number`` like GitHub's merge button (a merge commit on the base
        branch); it becomes closed and merged. Returns the merge commit's sha."""
        p = self.pulls_by_key[(repo, number)]
        head = current_head_sha(self, p)
        git_dir = str(self.repos[repo].git_dir)
        base = self.ref(repo, f"refs/heads/{p.base_ref}")
        tree = _git("--git-dir", git_dir, "merge-tree", "--write-tree", base, head).splitlines()[0]
        merge = _git("--git-dir", git_dir, "commit-tree", tree, "-p", base, "-p", head, "-m",
                     f"Merge pull request #{number} from {p.head_repo.split('/')[0]}/{p.head_ref}")
        set_ref(self.repos_root, repo, f"refs/heads/{p.base_ref}", merge)
        with self.lock:
            p.state, p.merged, p.merged_by, p.merge_commit_sha = "closed", True, user, merge
            p.closed_at = p.merged_at = now_iso()
        return merge

    def close_pull(self, repo: str, number: int) -> None:
        """Close pull request ``number`` without merging it."""
        p = self.pulls_by_key[(repo, number)]
        current_head_sha(self, p)
        with self.lock:
            p.state, p.closed_at = "closed", now_iso()

    # ---------------------------------------------------------------- webhook payloads (events.py)

    def pull_request_event(self, repo: str, number: int, action: str, sender: str = "contributor",
                           before: str | None = None, sender_type: str = "User") -> dict[str, Any]:
        return events.pull_request(self, repo, number, action, sender, before, sender_type)

    def push_event(self, repo: str, branch: str, before: str, after: str, sender: str = "contributor",
                   sender_type: str = "User", forced: bool = False) -> dict[str, Any]:
        return events.push(self, repo, branch, before, after, sender, sender_type, forced)

    def review_thread_event(self, repo: str, number: int, comment_ids: Iterable[int], action: str = "resolved",
                            sender: str = "maintainer") -> dict[str, Any]:
        return events.review_thread(self, repo, number, list(comment_ids), action, sender)

    def workflow_run_event(self, run_id: int, sender: str = "contributor",
                           sender_type: str = "User") -> dict[str, Any]:
        return events.workflow_run(self, run_id, sender, sender_type)

    def add_issue(self, repo: str, number: int) -> None:
        """A plain issue (so comments can be posted on it)."""
        with self.lock:
            self.issues[(repo, number)] = {"repo": repo, "number": number}

    def set_permission(self, repo: str, user: str, permission: str) -> None:
        """Role of ``user`` on ``repo``: admin | maintain | write | triage | read | none."""
        if permission not in ROLE_OF:
            raise ValueError(permission)
        with self.lock:
            self.permissions[(repo, user)] = permission

    def add_comment(self, repo: str, number: int, body: str, user: str = "maintainer",
                    user_type: str = "User", comment_id: int | None = None) -> int:
        """A comment written by someone (e.g. ``/qwen fix``); return its id."""
        with self.lock:
            cid = comment_id or self.next_id()
            self.issue_comments[cid] = {"repo": repo, "number": number,
                                        "json": issue_comment_json(self, repo, number, cid, body,
                                                                   user, user_type)}
            return cid

    def add_review_comment(self, repo: str, number: int, body: str, path: str, line: int,
                           user: str = "maintainer", comment_id: int | None = None) -> int:
        """An inline pull request review comment written by someone; return its id."""
        with self.lock:
            cid = comment_id or self.next_id()
            self.review_comments[cid] = {
                "repo": repo, "number": number, "review_id": None,
                "json": review_comment_json(self, repo, number, cid, None, {
                    "path": path, "line": line, "side": "RIGHT", "body": body}, user),
            }
            return cid

    def add_review(self, repo: str, number: int, body: str, user: str, user_type: str = "Bot",
                   commit_id: str | None = None, event: str = "COMMENT") -> int:
        """A review posted by someone else (another app's bot by default); return its id."""
        with self.lock:
            rid = self.next_id()
            p = self.pulls_by_key[(repo, number)]
            self.review_records[rid] = {
                "repo": repo, "number": number, "id": rid, "body": body, "event": event,
                "state": {"COMMENT": "COMMENTED", "APPROVE": "APPROVED"}.get(event, "COMMENTED"),
                "commit_id": commit_id or p.head_sha, "comments": [], "submitted_at": CREATED_AT,
                "user": (user, user_type),
            }
            return rid

    def add_check_run(self, repo: str, head_sha: str, name: str, status: str = "completed",
                      conclusion: str | None = "failure", check_run_id: int | None = None,
                      app_slug: str = "github-actions", external_id: str = "",
                      title: str | None = None, summary: str | None = None,
                      text: str | None = None, annotations: Iterable[Mapping[str, Any]] = (),
                      details_url: str | None = None, check_suite_id: int | None = None) -> int:
        """A check run made by another app (default GitHub Actions); return its id."""
        with self.lock:
            rid = check_run_id or self.next_id()
            suite = check_suite_id or self.suite_for(repo, head_sha, app_slug)
            self.check_suites.setdefault(suite, {"id": suite, "repo": repo,
                                                 "head_sha": head_sha, "app": app_slug})
            self.check_run_records[rid] = {
                "repo": repo, "id": rid, "name": name, "head_sha": head_sha, "status": status,
                "conclusion": conclusion, "external_id": external_id, "app": app_slug,
                "details_url": details_url or self.html(f"/{repo}/runs/{rid}"),
                "check_suite_id": suite,
                "output": {"title": title, "summary": summary, "text": text},
                "annotations": [annotation(self, repo, head_sha, a) for a in annotations],
                "started_at": CREATED_AT,
                "completed_at": CREATED_AT if status == "completed" else None,
                "history": [],
            }
            return rid

    def add_workflow_run(self, repo: str, run_id: int, head_sha: str,
                         path: str = ".github/workflows/ci.yml",
                         jobs: Iterable[Mapping[str, Any]] = (), name: str = "CI",
                         head_branch: str | None = None, event: str = "pull_request",
                         status: str = "completed", conclusion: str | None = "failure",
                         pull_numbers: Iterable[int] = (), run_attempt: int = 1,
                         check_suite_id: int | None = None, actor: str = "contributor",
                         head_repository: str | None = None) -> dict[str, Any]:
        """A GitHub Actions workflow run.

        ``head_repository``: where the head commit lives (default ``repo``; a fork for a fork's
        pull request, whose run GitHub reports with ``pull_numbers`` empty).

        ``jobs``: ``[{"id", "name", "conclusion", "steps": [{"name", "number", "conclusion"}],
        "log": str, "annotations": [{"path", "start_line", "end_line", "annotation_level",
        "message", "title"?}]}]``. Each job is also a check run (same id) in the run's check
        suite, like GitHub Actions does.
        """
        with self.lock:
            suite = check_suite_id or self.suite_for(repo, head_sha, "github-actions")
            self.check_suites.setdefault(suite, {"id": suite, "repo": repo,
                                                 "head_sha": head_sha, "app": "github-actions"})
            run = {
                "repo": repo, "id": run_id, "name": name, "path": path, "head_sha": head_sha,
                "head_branch": head_branch, "event": event, "status": status,
                "conclusion": conclusion, "pull_numbers": list(pull_numbers),
                "run_attempt": run_attempt, "check_suite_id": suite, "job_ids": [], "actor": actor,
                "head_repository": head_repository or repo,
            }
            self.workflow_runs[run_id] = run
            for j in jobs:
                jid = int(j["id"])
                steps = [dict(s) for s in j.get("steps", [])]
                job = {
                    "repo": repo, "id": jid, "run_id": run_id, "name": j["name"],
                    "status": j.get("status", "completed"),
                    "conclusion": j.get("conclusion", "failure"),
                    "steps": steps, "log": j.get("log", ""), "head_sha": head_sha,
                }
                self.jobs[jid] = job
                run["job_ids"].append(jid)
                details_url = self.html(f"/{repo}/actions/runs/{run_id}/job/{jid}")
                self.add_check_run(repo, head_sha, j["name"], status=job["status"],
                                   conclusion=job["conclusion"], check_run_id=jid,
                                   annotations=j.get("annotations", ()), details_url=details_url,
                                   check_suite_id=suite,
                                   title=j.get("title"), summary=j.get("summary"))
            return run

    def send_webhook(self, event: str, payload: dict[str, Any], guid: str | None = None) -> dict[str, Any]:
        """GitHub delivers ``event`` to ``webhook_url`` (signed with ``webhook_secret``) and logs the
        attempt, failed or not (see hooks.py). Returns the logged ``hook-delivery-item``."""
        return hooks.send(self, event, payload, guid)

    def webhook_attempts(self, guid: str | None = None) -> list[dict[str, Any]]:
        """The delivery log, oldest first (``hook-delivery-item`` objects)."""
        with self.lock:
            return [hooks.item_json(a) for a in self.hook_deliveries if guid is None or a["guid"] == guid]

    # ---------------------------------------------------------------- readers

    def comments(self, repo: str, number: int) -> list[dict[str, Any]]:
        """Issue/PR conversation comments, oldest first (GitHub's JSON)."""
        with self.lock:
            return [copy.deepcopy(c["json"]) for _, c in sorted(self.issue_comments.items())
                    if c["repo"] == repo and c["number"] == number]

    def bot_comments(self, repo: str, number: int) -> list[dict[str, Any]]:
        return [c for c in self.comments(repo, number) if c["user"]["login"] == self.bot_login]

    def reviews(self, repo: str, number: int) -> list[dict[str, Any]]:
        """Reviews on a PR: GitHub's JSON plus ``event`` and ``comments`` (the inline comments as
        posted, each with the ``id`` it got)."""
        with self.lock:
            out = []
            for _rid, rec in sorted(self.review_records.items()):
                if rec["repo"] == repo and rec["number"] == number:
                    item = review_json(self, rec)
                    item["event"] = rec["event"]
                    item["comments"] = copy.deepcopy(rec["comments"])
                    out.append(item)
            return out

    def check_runs(self, repo: str, sha: str | None = None,
                   app_slug: str | None = APP_SLUG) -> list[dict[str, Any]]:
        """Check runs (GitHub's JSON plus ``annotations``) on ``repo`` (at ``sha``), by default
        only the ones this app created."""
        with self.lock:
            out = []
            for _rid, rec in sorted(self.check_run_records.items()):
                if rec["repo"] != repo or (sha is not None and rec["head_sha"] != sha):
                    continue
                if app_slug is not None and rec["app"] != app_slug:
                    continue
                item = check_run_json(self, rec)
                item["annotations"] = copy.deepcopy(rec["annotations"])
                out.append(item)
            return out

    def pushes(self, repo: str | None = None) -> list[dict[str, str]]:
        """Every ref update a push asked for over git smart HTTP (and was answered 200),
        ``[{"repo", "ref", "old", "new"}]``, oldest first."""
        return [{"repo": r.repo or "", "ref": ref, "old": old, "new": new}
                for r in list(self.git_requests)
                if r.status == 200 and (repo is None or r.repo == repo)
                for old, new, ref in r.ref_updates]

    def refs(self, repo: str) -> dict[str, str]:
        """Every ref of the repository and the sha it points to."""
        out = _git("--git-dir", str(self.repos[repo].git_dir), "for-each-ref",
                   "--format=%(refname) %(objectname)")
        return dict(line.split(" ", 1) for line in out.splitlines() if line)

    def pulls(self, repo: str) -> list[dict[str, Any]]:
        with self.lock:
            return [pull_json(self, p) for (r, _), p in sorted(self.pulls_by_key.items())
                    if r == repo]

    def reactions(self, repo: str | None = None,
                  comment_id: int | None = None) -> list[dict[str, Any]]:
        """``[{"repo", "subject": "issue_comment"|"pull_request_review_comment", "comment_id",
        "content", "user"}]``."""
        with self.lock:
            return [dict(r) for r in self.reaction_records
                    if (repo is None or r["repo"] == repo)
                    and (comment_id is None or r["comment_id"] == comment_id)]
