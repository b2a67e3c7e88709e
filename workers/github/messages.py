"""Everything the app says about a job — progress comment, check-run summary, refusals, the folded
patch — in one place, so wording changes in one edit. Also the hidden marker that ties a post to its job."""

from __future__ import annotations

import re

from unidiff import PatchSet
from unidiff.errors import UnidiffParseError

MAX_BODY_CHARS = 65_536  # GitHub's limit for comment, review and PR bodies
MAX_PATCH_IN_COMMENT_CHARS = 50_000
TRUNCATED_NOTE = "\n\n…(truncated)"


def marker(job_id: int | str) -> str:
    """The hidden tag that identifies what job ``job_id`` posted."""
    return f"<!-- qwenfix:job:{job_id} -->"


def with_marker(body: str, job_id: int | str) -> str:
    tag = marker(job_id)
    if tag in body:
        return body
    room = MAX_BODY_CHARS - len(tag) - 2
    if len(body) > room:
        body = body[: room - len(TRUNCATED_NOTE)] + TRUNCATED_NOTE
    return f"{body.rstrip()}\n\n{tag}"


def fence_for(text: str, minimum: int = 3) -> str:
    """A backtick fence longer than any backtick run inside ``text``."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    return "`" * max(minimum, longest + 1)


def truncate(text: str | None, limit: int) -> str | None:
    if text is None or len(text) <= limit:
        return text
    return text[: limit - len(TRUNCATED_NOTE)] + TRUNCATED_NOTE


def patch_stats(patch: str) -> str:
    try:
        ps = PatchSet(patch)
        files, added, removed = len(ps), ps.added, ps.removed
    except (UnidiffParseError, ValueError):
        lines = patch.splitlines()
        files = sum(1 for ln in lines if ln.startswith("+++ "))
        added = sum(1 for ln in lines if ln.startswith("+") and not ln.startswith("+++"))
        removed = sum(1 for ln in lines if ln.startswith("-") and not ln.startswith("---"))
    noun = "file" if files == 1 else "files"
    return f"{files} {noun}, +{added} −{removed}"


def job_url(public_url: str, job_id: int) -> str:
    return f"{public_url.rstrip('/')}/jobs/{job_id}"


def fence(text: str, lang: str = "") -> str:
    """Fenced so that logs cannot break out of the block."""
    ticks = fence_for(text)
    return f"{ticks}{lang}\n{text.rstrip()}\n{ticks}"


STAGES = {
    "queued": "Queued",
    "reproducing": "Reproducing the failure in a sandbox",
    "fixing": "Running deterministic fixers",
    "validating": "Validating candidate patches",
    "delivering": "Delivering the fix",
}


def progress(job_id: int, url: str, stage: str, detail: str = "") -> str:
    label = STAGES.get(stage, stage)
    line = f"⏳ **qwenfix** — {label}{(': ' + detail) if detail else ''}…"
    return f"{line}\n\n[Job {job_id}]({url})\n\n{marker(job_id)}"


def outcome(job_id: int, url: str, headline: str, body: str = "") -> str:
    parts = [f"**qwenfix** — {headline}"]
    if body:
        parts.append(body)
    parts.append(f"[Job {job_id}]({url})")
    parts.append(marker(job_id))
    return "\n\n".join(parts)


def failure_section(command: str | None, excerpt: str) -> str:
    lines = []
    if command:
        lines.append(f"Failing command: `{command}`" if "`" not in command else "Failing command:\n" + fence(command))
    if excerpt:
        lines.append("<details><summary>Error</summary>\n\n" + fence(excerpt[-3000:]) + "\n\n</details>")
    return "\n\n".join(lines)


def attempts_section(candidates: list[dict]) -> str:
    if not candidates:
        return ""
    rows = ["| attempt | verified | why |", "| --- | --- | --- |"]
    for index, candidate in enumerate(candidates, 1):
        why = "; ".join(candidate.get("reasons") or []) or candidate.get("outcome") or ""
        rows.append(f"| {index} | {'yes' if candidate.get('verified') else 'no'} | {why.replace('|', '/')} |")
    return "What was tried:\n\n" + "\n".join(rows)


def no_fix(command: str | None, excerpt: str, candidates: list[dict], reason: str) -> tuple[str, str]:
    headline = "could not find a verified fix"
    body = "\n\n".join(p for p in (reason, failure_section(command, excerpt), attempts_section(candidates)) if p)
    return headline, body


def flaky(command: str | None, rerun: bool) -> tuple[str, str]:
    headline = "the failure did not reproduce"
    body = (
        f"`{command}` passes in a clean sandbox at this commit, so this looks flaky or caused by the CI "
        "infrastructure. No patch was made."
        + (" The failed jobs were re-run." if rerun else "")
    )
    return headline, body


def fixed(how: str, summary: str, fixer: str | None, evidence: str) -> tuple[str, str]:
    source = f"the `{fixer}` fixer (no model calls)" if fixer else "the coding agent"
    return f"verified fix delivered as {how}", f"Made by {source}.\n\n{summary}\n\n{evidence}"


def code_span(text: str, limit: int = 200, in_table: bool = False) -> str:
    """Inline code that nothing inside can break out of (backticks, new lines, a table's pipes)."""
    text = " ".join(text.split())
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    ticks = fence_for(text, minimum=1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    span = f"{ticks}{pad}{text}{pad}{ticks}"
    return span.replace("|", "\\|") if in_table else span


def run_cell(exit_code: int | None, counts: str, ok: bool | None = None) -> str:
    if exit_code is None:
        return "not run"
    mark = "✅" if (exit_code == 0 if ok is None else ok) else "❌"
    return f"{mark} exit {exit_code}" + (f" · {counts}" if counts else "")


def cost_line(calls: int, tokens: int, prompt: int, completion: int, cost: float | None, seconds: float) -> str:
    spent = "no model calls" if not calls else (
        f"{calls} model call{'s' if calls != 1 else ''}, {tokens:,} tokens ({prompt:,} in, {completion:,} out)"
        + (f", cost {cost:.4f}" if cost is not None else ""))
    return f"Cost: {spent}; {seconds:.0f} s."


def evidence(command: str, before: str, after: str, regression_command: str | None, regression: str,
             now_passing: list[str], cost: str) -> str:
    """Why the fix can be trusted without opening the dashboard: the failing command before and after,
    the tests it turned green, the regression command, and what it cost."""
    rows = ["| | command | result |", "| --- | --- | --- |",
            f"| before the fix | {code_span(command, in_table=True)} | {before} |",
            f"| with the fix | {code_span(command, in_table=True)} | {after} |"]
    if regression_command:
        rows.append(f"| regression check | {code_span(regression_command, in_table=True)} | {regression} |")
    else:
        rows.append("| regression check | — | none separate from the command above |")
    parts = ["**Evidence** (each run in a clean sandbox at this commit)", "\n".join(rows)]
    if now_passing:
        shown = ", ".join(code_span(name) for name in now_passing[:20])
        more = f" and {len(now_passing) - 20} more" if len(now_passing) > 20 else ""
        parts.append(f"Now passing ({len(now_passing)}): {shown}{more}")
    parts.append(cost)
    return "\n\n".join(parts)



def over_budget(what: str, resets: str | None, stopped: bool) -> tuple[str, str]:
    """A budget stopped the job: which one, its limit (in ``what``) and when it resets."""
    done = ("so this job stopped before its next model request" if stopped
            else "so this job did not start; no model request was made")
    when = f"It resets at {resets}." if resets else "A job waits for one of the running jobs to end."
    body = (f"{what[0].upper()}{what[1:]} is used up, {done}. {when}\n\n"
            "Budgets are set by the operator of this qwenfix installation; an organization admin may lower "
            "them in `qwen.yml` of the organization's `.github` repository. This notice appears once a day "
            "on a pull request.")
    return "over budget", body


def refusal(user: str) -> str:
    return (
        f"Sorry @{user}, `/qwen` commands can only be used by people with write access to this repository. "
        "A maintainer can run the command for you."
    )


def config_error(error: str) -> str:
    return f"`.github/qwen.yml` on the base branch is invalid, so the defaults apply: {error}"


REVIEW_HEADING = "**qwenfix review** of"
SEVERITY_LABELS = {"bug": "🐛 Bug", "risk": "⚠️ Risk", "nit": "💬 Nit"}


def review_comment(severity: str, message: str) -> str:
    return f"**{SEVERITY_LABELS.get(severity, severity)}** — {message}"


def review(job_id: int, url: str, head_sha: str, summary: str, inline: int, elsewhere: list, left_out: list[str]) -> str:
    """The review's body: the summary, findings that could not sit on a diff line, what was not read."""
    parts = [f"{REVIEW_HEADING} `{head_sha[:7]}`", summary or "No summary."]
    parts.append(f"{inline} comment{'s' if inline != 1 else ''} inline." if inline else "No inline comments.")
    if elsewhere:
        lines = [f"- `{f.path}` line {f.line}: {review_comment(f.severity, f.message)}" for f in elsewhere]
        parts.append("Also noted (not on a line of this diff):\n" + "\n".join(lines))
    if left_out:
        parts.append("Not reviewed: " + ", ".join(f"`{item}`" for item in left_out))
    parts.append(f"[Job {job_id}]({url})")
    return "\n\n".join(parts)


def patch_comment(summary: str, patch: str, url: str) -> str:
    """The summary, the patch folded in <details> (fenced safely even when it contains backticks) and
    how to apply it; a link instead when it is too large for a comment."""
    stats = patch_stats(patch)
    lead = f"{summary.strip()}\n\n" if summary.strip() else ""
    if len(patch) > MAX_PATCH_IN_COMMENT_CHARS:
        return (
            f"{lead}"
            f"The proposed patch ({stats}) is too large to show here; "
            f"[download it from the job page]({url})."
        )
    fence = fence_for(patch)
    return (
        f"{lead}"
        f"<details>\n<summary>Proposed patch ({stats})</summary>\n\n"
        f"{fence}diff\n{patch.rstrip(chr(10))}\n{fence}\n\n"
        "To apply it, save the patch as `qwenfix.patch` at the root of your checkout and run:\n\n"
        "```sh\ngit apply --3way qwenfix.patch\n```\n\n"
        "</details>\n\n"
        f"[Job details]({url})"
    )
