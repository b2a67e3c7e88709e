"""Everything the app says about a job — progress comment, check-run summary, refusals — in one place,
so wording changes in one edit."""

from __future__ import annotations

from workers.deliver import fence_for, marker


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


def fixed(how: str, summary: str, fixer: str | None) -> tuple[str, str]:
    source = f"the `{fixer}` fixer (no model calls)" if fixer else "the coding agent"
    return f"verified fix delivered as {how}", f"Made by {source} and verified by re-running the failing command.\n\n{summary}"


def skipped(reason: str) -> tuple[str, str]:
    return "nothing to do", reason


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
