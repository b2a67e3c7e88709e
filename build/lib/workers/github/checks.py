"""The job's "qwenfix" check run on the head commit (external_id = job id), with annotations."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from core.github import split_repo
from workers.github.messages import truncate

if TYPE_CHECKING:
    from core.github import GitHub

CHECK_NAME = "qwenfix"
MAX_CHECK_TEXT_CHARS = 65_535  # check run output summary / text
MAX_ANNOTATIONS_PER_REQUEST = 50


@dataclass(frozen=True)
class Annotation:
    path: str
    start_line: int
    end_line: int | None = None
    message: str = ""
    level: str = "failure"  # notice | warning | failure
    title: str | None = None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "path": self.path,
            "start_line": self.start_line,
            "end_line": self.end_line if self.end_line is not None else self.start_line,
            "annotation_level": self.level,
            "message": self.message[:64_000] or "(no message)",
        }
        if self.title:
            out["title"] = self.title[:255]
        return out


def _annotation_json(a: Annotation | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(a, Annotation):
        return a.as_json()
    return Annotation(
        path=a["path"], start_line=int(a["start_line"]),
        end_line=a.get("end_line"), message=a.get("message", ""),
        level=a.get("annotation_level", a.get("level", "failure")), title=a.get("title"),
    ).as_json()


def upsert_check_run(
    gh: GitHub,
    repo: str,
    head_sha: str,
    job_id: int | str,
    status: str,
    conclusion: str | None = None,
    *,
    title: str,
    summary: str,
    details_url: str,
    text: str | None = None,
    annotations: Iterable[Annotation | Mapping[str, Any]] = (),
    known_id: int | None = None,
) -> int:
    """Create this job's "qwenfix" check run on ``head_sha`` (``external_id`` = job id), or update
    it. ``status``: queued | in_progress | completed; a ``conclusion`` implies completed.
    Annotations go 50 per request; an existing run that already has annotations gets no more,
    so running twice does not duplicate them. ``known_id`` (this job's run, without annotations
    to add) is updated directly. Returns the check run id."""
    owner, name = split_repo(repo)
    if conclusion is not None:
        status = "completed"
    output: dict[str, Any] = {
        "title": truncate(title, 255) or CHECK_NAME,
        "summary": truncate(summary, MAX_CHECK_TEXT_CHARS) or "",
    }
    if text is not None:
        output["text"] = truncate(text, MAX_CHECK_TEXT_CHARS)
    items = [_annotation_json(a) for a in annotations]
    body: dict[str, Any] = {
        "name": CHECK_NAME,
        "external_id": str(job_id),
        "status": status,
        "details_url": details_url,
    }
    if conclusion is not None:
        body["conclusion"] = conclusion

    if known_id is not None and not items:
        gh.rest.checks.update(owner, name, known_id, output=output, **body)
        return known_id
    existing = _find_check_run(gh, owner, name, head_sha, job_id)
    if existing is None or not existing.output.annotations_count:
        first, rest = items[:MAX_ANNOTATIONS_PER_REQUEST], items[MAX_ANNOTATIONS_PER_REQUEST:]
    else:
        first, rest = [], []
    if first:
        output["annotations"] = first
    if existing is None:
        run_id = gh.rest.checks.create(
            owner, name, head_sha=head_sha, output=output, **body
        ).parsed_data.id
    else:
        run_id = existing.id
        gh.rest.checks.update(owner, name, run_id, output=output, **body)
    for start in range(0, len(rest), MAX_ANNOTATIONS_PER_REQUEST):
        chunk = rest[start : start + MAX_ANNOTATIONS_PER_REQUEST]
        gh.rest.checks.update(
            owner, name, run_id,
            output={"title": output["title"], "summary": output["summary"], "annotations": chunk},
        )
    return run_id


def _find_check_run(gh: GitHub, owner: str, name: str, head_sha: str, job_id: int | str) -> Any:
    for run in gh.rest.paginate(
        gh.rest.checks.list_for_ref,
        map_func=lambda r: r.parsed_data.check_runs,
        owner=owner, repo=name, ref=head_sha, check_name=CHECK_NAME, filter_="all",
        per_page=100,
    ):
        if run.external_id == str(job_id):
            return run
    return None
