"""Check runs: created and updated only by the app that owns them (output, annotations, GitHub's
validation limits), listed per commit or per check suite, and their annotations."""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from tests.support.fake_github.auth import repo_for
from tests.support.fake_github.rest import paged_object, paginate, read_json
from tests.support.fake_github.shapes import app_json
from tests.support.fake_github.state import APP_SLUG, GitHubError, State, node_id, now_iso

if TYPE_CHECKING:
    from tests.support.fake_github.fake import FakeGitHub


def check_run_json(fake: State, rec: dict[str, Any]) -> dict[str, Any]:
    repo, rid = rec["repo"], rec["id"]
    out = rec["output"]
    return {
        "id": rid, "head_sha": rec["head_sha"], "node_id": node_id("CheckRun", rid),
        "external_id": rec["external_id"], "url": fake.api(f"/repos/{repo}/check-runs/{rid}"),
        "html_url": fake.html(f"/{repo}/runs/{rid}"), "details_url": rec["details_url"],
        "status": rec["status"], "conclusion": rec["conclusion"],
        "started_at": rec["started_at"], "completed_at": rec["completed_at"],
        "output": {
            "title": out.get("title"), "summary": out.get("summary"),
            "text": out.get("text"), "annotations_count": len(rec["annotations"]),
            "annotations_url": fake.api(f"/repos/{repo}/check-runs/{rid}/annotations"),
        },
        "name": rec["name"], "check_suite": {"id": rec["check_suite_id"]},
        "app": app_json(fake, rec["app"]), "pull_requests": [],
    }


def annotation(fake: State, repo: str, sha: str, a: Mapping[str, Any]) -> dict[str, Any]:
    """An annotation as stored and listed, from what was posted (defaults filled in)."""
    return {
        "path": a["path"], "start_line": a.get("start_line", 1),
        "end_line": a.get("end_line", a.get("start_line", 1)),
        "start_column": a.get("start_column"), "end_column": a.get("end_column"),
        "annotation_level": a.get("annotation_level", "failure"),
        "title": a.get("title"), "message": a.get("message", ""),
        "raw_details": a.get("raw_details"),
        "blob_href": fake.html(f"/{repo}/blob/{sha}/{a['path']}"),
    }


def validate_check_body(body: Mapping[str, Any]) -> None:
    """GitHub's 422s for a check run body: output needs title and summary, at most 50
    annotations per request, summary/text up to 65535 characters, completed needs a conclusion."""
    output = body.get("output") or {}
    if output and ("title" not in output or "summary" not in output):
        raise GitHubError(422, "Invalid request.\n\n\"title\", \"summary\" weren't supplied.")
    if len(output.get("annotations") or []) > 50:
        raise GitHubError(422, "Only 50 annotations are allowed per request")
    for key in ("summary", "text"):
        if len(output.get(key) or "") > 65535:
            raise GitHubError(422, f"Invalid request.\n\n{key} is too long")
    if body.get("status") == "completed" and not body.get("conclusion"):
        raise GitHubError(422, "Invalid request.\n\nconclusion is required when status is "
                               "completed")


def router(fake: FakeGitHub) -> APIRouter:
    api = APIRouter()

    def run_or_404(request: Request, owner: str, name: str, rid: int):
        r, _ = repo_for(fake, request, owner, name)
        rec = fake.check_run_records.get(rid)
        if rec is None or rec["repo"] != r.full_name:
            raise GitHubError(404, "Not Found")
        return r, rec

    def matches(rec: dict[str, Any], q: Mapping[str, str]) -> bool:
        return ((not q.get("check_name") or rec["name"] == q["check_name"])
                and (not q.get("status") or rec["status"] == q["status"]))

    @api.post("/repos/{owner}/{name}/check-runs", status_code=201)
    async def create_check_run(owner: str, name: str, request: Request):
        r, _ = repo_for(fake, request, owner, name)
        body = await read_json(request) or {}
        if not body.get("name") or not body.get("head_sha"):
            raise GitHubError(422, "Validation Failed")
        output = body.get("output") or {}
        validate_check_body(body)
        status = body.get("status", "queued")
        if body.get("conclusion"):
            status = "completed"
        with fake.lock:
            rid = fake.add_check_run(
                r.full_name, body["head_sha"], body["name"], status=status,
                conclusion=body.get("conclusion"), app_slug=APP_SLUG,
                external_id=body.get("external_id") or "", title=output.get("title"),
                summary=output.get("summary"), text=output.get("text"),
                annotations=output.get("annotations") or (),
                details_url=body.get("details_url"))
            rec = fake.check_run_records[rid]
            rec["history"].append(body)
            if status == "completed":
                rec["completed_at"] = body.get("completed_at") or now_iso()
        return JSONResponse(check_run_json(fake, rec), status_code=201)

    @api.patch("/repos/{owner}/{name}/check-runs/{rid}")
    async def update_check_run(owner: str, name: str, rid: int, request: Request):
        r, rec = run_or_404(request, owner, name, rid)
        if rec["app"] != APP_SLUG:
            raise GitHubError(403, f"Invalid app_id `{fake.app_id}` - check run can only be "
                                   "modified by the GitHub App that created it.")
        body = await read_json(request) or {}
        validate_check_body(body)
        with fake.lock:
            for key in ("name", "details_url", "external_id", "status", "conclusion"):
                if key in body:
                    rec[key] = body[key]
            if body.get("conclusion"):
                rec["status"] = "completed"
            if rec["status"] == "completed" and not rec["completed_at"]:
                rec["completed_at"] = body.get("completed_at") or now_iso()
            output = body.get("output")
            if output:
                for key in ("title", "summary", "text"):
                    if key in output:
                        rec["output"][key] = output[key]
                rec["annotations"].extend(
                    annotation(fake, r.full_name, rec["head_sha"], a)
                    for a in output.get("annotations") or ())
            rec["history"].append(body)
        return check_run_json(fake, rec)

    @api.get("/repos/{owner}/{name}/commits/{ref}/check-runs")
    async def list_check_runs(owner: str, name: str, ref: str, request: Request):
        r, _ = repo_for(fake, request, owner, name)
        sha = ref if re.fullmatch(r"[0-9a-f]{40}", ref) else fake.ref(r.full_name, ref)
        q = request.query_params
        items = [check_run_json(fake, rec) for _, rec in
                 sorted(fake.check_run_records.items(), reverse=True)
                 if rec["repo"] == r.full_name and rec["head_sha"] == sha and matches(rec, q)
                 and (not q.get("app_id") or
                      str(app_json(fake, rec["app"])["id"]) == q["app_id"])]
        return paged_object(fake, request, "check_runs", items)

    @api.get("/repos/{owner}/{name}/check-suites/{sid}/check-runs")
    async def list_suite_runs(owner: str, name: str, sid: int, request: Request):
        r, _ = repo_for(fake, request, owner, name)
        suite = fake.check_suites.get(sid)
        if suite is None or suite["repo"] != r.full_name:
            raise GitHubError(404, "Not Found")
        items = [check_run_json(fake, rec) for _, rec in sorted(fake.check_run_records.items())
                 if rec["check_suite_id"] == sid and matches(rec, request.query_params)]
        return paged_object(fake, request, "check_runs", items)

    @api.get("/repos/{owner}/{name}/check-runs/{rid}")
    async def get_check_run(owner: str, name: str, rid: int, request: Request):
        _, rec = run_or_404(request, owner, name, rid)
        return check_run_json(fake, rec)

    @api.get("/repos/{owner}/{name}/check-runs/{rid}/annotations")
    async def list_annotations(owner: str, name: str, rid: int, request: Request):
        _, rec = run_or_404(request, owner, name, rid)
        return paginate(fake, request, copy.deepcopy(rec["annotations"]))

    return api
