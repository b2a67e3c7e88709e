"""GitHub Actions: workflow runs, their jobs (each also a check run), job logs (a 302 to a signed
download URL, like GitHub's blob storage) and re-running the failed jobs of a run."""

from __future__ import annotations

import hashlib
import secrets
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response

from tests.support.fake_github.auth import repo_for
from tests.support.fake_github.rest import paged_object
from tests.support.fake_github.shapes import repo_json, user_json
from tests.support.fake_github.state import CREATED_AT, GitHubError, State, node_id, stable_id

if TYPE_CHECKING:
    from tests.support.fake_github.fake import FakeGitHub


def workflow_run_json(fake: State, run: dict[str, Any]) -> dict[str, Any]:
    repo, rid = run["repo"], run["id"]
    base = fake.api(f"/repos/{repo}/actions/runs/{rid}")
    wid = stable_id(f"workflow:{repo}:{run['path']}")
    prs = []
    for n in run["pull_numbers"]:
        p = fake.pulls_by_key.get((repo, n))
        if p is None:
            continue
        prs.append({
            "id": p.id, "number": n, "url": fake.api(f"/repos/{repo}/pulls/{n}"),
            "head": {"ref": p.head_ref, "sha": p.head_sha,
                     "repo": {"id": stable_id("repo:" + p.head_repo),
                              "url": fake.api(f"/repos/{p.head_repo}"),
                              "name": p.head_repo.split("/")[1]}},
            "base": {"ref": p.base_ref, "sha": fake.ref(repo, f"refs/heads/{p.base_ref}"),
                     "repo": {"id": fake.repos[repo].id, "url": fake.api(f"/repos/{repo}"),
                              "name": repo.split("/")[1]}},
        })
    head_branch = run["head_branch"]
    if head_branch is None and run["pull_numbers"]:
        p = fake.pulls_by_key.get((repo, run["pull_numbers"][0]))
        head_branch = p.head_ref if p else None
    author = {"name": "Test Author", "email": "author@example.com"}
    return {
        "id": rid, "name": run["name"], "node_id": node_id("WorkflowRun", rid),
        "head_branch": head_branch, "head_sha": run["head_sha"], "path": run["path"],
        "display_title": run["name"], "run_number": rid % 1000, "run_attempt": run["run_attempt"],
        "event": run["event"], "status": run["status"], "conclusion": run["conclusion"],
        "workflow_id": wid, "check_suite_id": run["check_suite_id"],
        "check_suite_node_id": node_id("CheckSuite", run["check_suite_id"]),
        "url": base, "html_url": fake.html(f"/{repo}/actions/runs/{rid}"),
        "pull_requests": prs, "created_at": CREATED_AT, "updated_at": CREATED_AT,
        "run_started_at": CREATED_AT, "actor": _actor(fake, run.get("actor", "contributor")),
        "triggering_actor": _actor(fake, run.get("actor", "contributor")),
        "jobs_url": base + "/jobs", "logs_url": base + "/logs",
        "check_suite_url": fake.api(f"/repos/{repo}/check-suites/{run['check_suite_id']}"),
        "artifacts_url": base + "/artifacts", "cancel_url": base + "/cancel",
        "rerun_url": base + "/rerun",
        "workflow_url": fake.api(f"/repos/{repo}/actions/workflows/{wid}"),
        "head_commit": {"id": run["head_sha"], "tree_id": "0" * 40, "message": "Update",
                        "timestamp": CREATED_AT, "author": author, "committer": author},
        "repository": repo_json(fake, repo),
        "head_repository": repo_json(fake, run.get("head_repository") or repo),
    }


def _actor(fake: State, login: str) -> dict[str, Any]:
    return user_json(fake, login, "Bot" if login.endswith("[bot]") else "User")


def job_json(fake: State, job: dict[str, Any]) -> dict[str, Any]:
    repo, jid = job["repo"], job["id"]
    run = fake.workflow_runs[job["run_id"]]
    steps = []
    for i, s in enumerate(job["steps"], start=1):
        steps.append({"name": s["name"], "number": s.get("number", i),
                      "status": s.get("status", "completed"),
                      "conclusion": s.get("conclusion", "success"),
                      "started_at": CREATED_AT, "completed_at": CREATED_AT})
    return {
        "id": jid, "run_id": job["run_id"],
        "run_url": fake.api(f"/repos/{repo}/actions/runs/{job['run_id']}"),
        "run_attempt": run["run_attempt"], "node_id": node_id("Job", jid),
        "head_sha": job["head_sha"], "url": fake.api(f"/repos/{repo}/actions/jobs/{jid}"),
        "html_url": fake.html(f"/{repo}/actions/runs/{job['run_id']}/job/{jid}"),
        "status": job["status"], "conclusion": job["conclusion"],
        "created_at": CREATED_AT, "started_at": CREATED_AT,
        "completed_at": CREATED_AT if job["status"] == "completed" else None,
        "name": job["name"], "steps": steps,
        "check_run_url": fake.api(f"/repos/{repo}/check-runs/{jid}"),
        "labels": ["ubuntu-latest"], "runner_id": 1, "runner_name": "GitHub Actions 1",
        "runner_group_id": 1, "runner_group_name": "GitHub Actions",
        "workflow_name": run["name"], "head_branch": run["head_branch"],
    }


def download_sig(fake: State, job_id: int) -> str:
    """Signature of a job's log download URL (what makes it usable without a token)."""
    return hashlib.sha256(f"{fake.download_secret}:{job_id}".encode()).hexdigest()[:32]


def router(fake: FakeGitHub) -> APIRouter:
    api = APIRouter()

    def run_or_404(request: Request, owner: str, name: str, run_id: int) -> dict[str, Any]:
        r, _ = repo_for(fake, request, owner, name)
        run = fake.workflow_runs.get(run_id)
        if run is None or run["repo"] != r.full_name:
            raise GitHubError(404, "Not Found")
        return run

    def job_or_404(request: Request, owner: str, name: str, job_id: int) -> dict[str, Any]:
        r, _ = repo_for(fake, request, owner, name)
        job = fake.jobs.get(job_id)
        if job is None or job["repo"] != r.full_name:
            raise GitHubError(404, "Not Found")
        return job

    @api.get("/repos/{owner}/{name}/actions/runs")
    async def list_runs(owner: str, name: str, request: Request, head_sha: str | None = None):
        r, _ = repo_for(fake, request, owner, name)
        runs = [run for run in fake.workflow_runs.values() if run["repo"] == r.full_name
                and (head_sha is None or run["head_sha"] == head_sha)]
        items = [workflow_run_json(fake, run) for run in sorted(runs, key=lambda x: -x["id"])]
        return paged_object(fake, request, "workflow_runs", items)

    @api.get("/repos/{owner}/{name}/actions/runs/{run_id}")
    async def get_run(owner: str, name: str, run_id: int, request: Request):
        return workflow_run_json(fake, run_or_404(request, owner, name, run_id))

    @api.get("/repos/{owner}/{name}/actions/runs/{run_id}/jobs")
    async def list_jobs(owner: str, name: str, run_id: int, request: Request):
        run = run_or_404(request, owner, name, run_id)
        items = [job_json(fake, fake.jobs[j]) for j in run["job_ids"]]
        return paged_object(fake, request, "jobs", items)

    @api.get("/repos/{owner}/{name}/actions/jobs/{job_id}")
    async def get_job(owner: str, name: str, job_id: int, request: Request):
        return job_json(fake, job_or_404(request, owner, name, job_id))

    @api.get("/repos/{owner}/{name}/actions/jobs/{job_id}/logs")
    async def job_logs(owner: str, name: str, job_id: int, request: Request):
        job_or_404(request, owner, name, job_id)
        sig = download_sig(fake, job_id)
        return RedirectResponse(f"{fake.server_url}/_downloads/jobs/{job_id}/logs?sig={sig}",
                                status_code=302)

    @api.get("/_downloads/jobs/{job_id}/logs")
    async def download_logs(job_id: int, sig: str = ""):
        job = fake.jobs.get(job_id)
        if job is None or not secrets.compare_digest(sig, download_sig(fake, job_id)):
            return PlainTextResponse("<Error><Code>AuthenticationFailed</Code></Error>",
                                     status_code=403)
        return Response(job["log"].encode(), media_type="text/plain; charset=utf-8")

    @api.post("/repos/{owner}/{name}/actions/runs/{run_id}/rerun-failed-jobs",
              status_code=201)
    async def rerun_failed(owner: str, name: str, run_id: int, request: Request):
        run = run_or_404(request, owner, name, run_id)
        with fake.lock:
            fake.reruns.append((run["repo"], run_id))
        return JSONResponse({}, status_code=201)

    return api
