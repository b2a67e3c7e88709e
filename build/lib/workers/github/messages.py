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


def setup_failed(source: str, setup: str | None, output: str, reason: str, hint: str | None = None) -> tuple[str, str]:
    """The setup phase failed: nothing was reproduced and no model was asked."""
    headline = "the setup failed"
    parts = [f"{reason[:1].upper()}{reason[1:]}, so the failure was not reproduced and no fix was tried."]
    if hint:
        parts.append(f"Missing: {hint}.")
    if setup:
        parts.append("<details><summary>Setup</summary>\n\n" + fence(setup, "sh") + "\n\n</details>")
    parts.append("Setup output:\n\n" + fence(output[-3000:] or "(no output)"))
    return headline, "\n\n".join(parts)


def not_reproduced(problem: str, command: str | None, output: str) -> tuple[str, str]:
    """The reproduction failed differently from CI because the sandbox lacks something."""
    headline = "not reproduced: environment"
    parts = [f"The failure was not reproduced: the sandbox lacks {problem}. No model was asked to fix it."]
    if command:
        parts.append(f"Command: `{command}`" if "`" not in command else "Command:\n" + fence(command))
    if output:
        parts.append("<details><summary>Output in the sandbox</summary>\n\n" + fence(output[-3000:])
                     + "\n\n</details>")
    return headline, "\n\n".join(parts)


def reproduction_notes(notes: list[str]) -> str:
    """How CI was reproduced: image, toolchain versions, what could not be (secrets, actions)."""
    if not notes:
        return ""
    return "<details><summary>How CI was reproduced</summary>\n\n" + "\n".join(f"- {n}" for n in notes) \
        + "\n\n</details>"


def flaky(command: str | None, rerun: bool) -> tuple[str, str]:
    headline = "the failure did not reproduce"
    body = (
        f"`{command}` passes in a clean sandbox at this commit, so this looks flaky or caused by the CI "
        "infrastructure. No patch was made."
        + (" The failed jobs were re-run." if rerun else "")
    )
    return headline, body


def time_limit(limit_s: float) -> tuple[str, str]:
    """The job ran into the operator's time limit for one job."""
    headline = "stopped at the time limit"
    body = (f"This job ran for {limit_s:g} s, the most one job may take on this installation "
            "(`QWENFIX_JOB_TIME_LIMIT_S`), and was stopped: its sandboxes were removed and nothing was "
            "delivered. A maintainer can try again with `/qwen retry`.")
    return headline, body


def fails_on_base(branch: str, base_sha: str, command: str | None, excerpt: str, fix: str | None) -> tuple[str, str]:
    """A failure that the base branch has too: not the pull request's fault. `fix` says what was
    done about the base (a fix pull request, or why none), None when `repair.fix_base` is off."""
    headline = f"fails on `{branch}` too — not caused by this pull request"
    body = (f"The failing command fails the same way on `{branch}` (at `{base_sha[:7]}`, where this pull request "
            "starts), so this pull request did not cause it. No patch was pushed to this pull request.")
    if fix:
        body += f"\n\n{fix}"
    else:
        body += (f" To have qwenfix propose a fix to `{branch}` in such cases, set `repair.fix_base: true` in "
                 "`.github/qwen.yml`.")
    section = failure_section(command, excerpt)
    return headline, f"{body}\n\n{section}" if section else body


def security_notes(notes: list[str]) -> str:
    """Findings a delivered fix adds below high severity (high ones reject it), for the post."""
    if not notes:
        return ""
    return ("\n\nThe security scan found in this change (below high severity; please review):\n"
            + "\n".join(f"- {note}" for note in notes))


def base_fix(branch: str, how: str | None = None, passes_at: str | None = None) -> str:
    """What `repair.fix_base` did about the base branch."""
    if how:
        return f"A verified fix for `{branch}` is proposed as {how}."
    if passes_at:
        return (f"`{branch}` passes again at its tip (`{passes_at[:7]}`): bring this pull request up to date "
                f"with `{branch}`.")
    return f"qwenfix found no verified fix for `{branch}`."


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


def failed(reason: str) -> tuple[str, str]:
    """A job that ended without a result: why, in one line a person can act on."""
    return "the job failed", f"{reason}\n\nNothing was changed on this pull request. `/qwen retry` runs it again."


def gave_up_retrying(retries: int, reason: str) -> str:
    return f"Gave up after {retries} retries; the last one was for: {reason}."


def gave_up_takeovers(takeovers: int) -> str:
    return (f"The worker running this job was lost {takeovers} times (killed or cut off mid-job), "
            "so it was not started again.")


def untied(sha: str, why: str) -> tuple[str, str]:
    """A red build whose head is neither an open pull request's nor a branch of the repository."""
    return ("no patch for this build", (
        f"This build failed, but {why}. qwenfix delivers fixes only to pull requests and to branches "
        f"of this repository, so no patch is made for `{sha[:7]}`. If it belongs to a pull request, "
        "a maintainer can ask there with `/qwen fix`."))


def fork_not_repaired(head_repo: str | None) -> str:
    where = head_repo or "a deleted fork"
    return (f"red build of a pull request from {where}: automatic repair of forks is off "
            "(repair.forks in .github/qwen.yml); a maintainer can ask with `/qwen fix`")


def image_refused(image: str, allowed: list[str]) -> tuple[str, str]:
    listed = ", ".join(f"`{pattern}`" for pattern in allowed) or "(none)"
    return ("sandbox image not allowed", (
        f"`.github/qwen.yml` asks for the sandbox image `{image}`, which the operator does not allow: "
        f"`QWENFIX_SANDBOX_IMAGES` lists the images repositories may name ({listed}). Nothing was run. "
        "Remove `sandbox.image` to use the default image, or ask the operator to add it."))


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
