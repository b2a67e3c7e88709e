"""What the app posts (workers/github: comments, checks, pulls) against the fake GitHub server, through the real githubkit client."""

from __future__ import annotations

import difflib
import re

import pytest

from core.config import Settings
from core.github import GitHubApp
from tests.support.fake_github import BOT_LOGIN
from workers.github.checks import Annotation, upsert_check_run
from workers.github.comments import permission, react, upsert_comment
from workers.github.messages import marker, patch_comment
from workers.github.pulls import (
    PullFile,
    open_fix_pull_request,
    plan_suggestions,
    suggestion_review,
)

REPO = "octo/app"
BASE = "".join(f"line {i}\n" for i in range(1, 31))


def edit(text: str, changes: dict[int, str | None], inserts: dict[int, str] | None = None) -> str:
    """Replace (or delete, with None) 1-based lines; insert lines after a line number."""
    out = []
    for i, line in enumerate(text.splitlines(keepends=True), start=1):
        if i in changes:
            if changes[i] is not None:
                out.append(changes[i])
        else:
            out.append(line)
        if inserts and i in inserts:
            out.append(inserts[i])
    return "".join(out)


def diff(path: str, old: str, new: str) -> str:
    return "".join(difflib.unified_diff(old.splitlines(keepends=True),
                                        new.splitlines(keepends=True),
                                        fromfile=f"a/{path}", tofile=f"b/{path}"))


# the PR changes lines 6 and 20 of app.py -> its diff shows head lines 3-9 and 17-23
HEAD = edit(BASE, {6: "line six (pr)\n", 20: "line twenty (pr)\n"})


@pytest.fixture
def world(fake_github):
    fake_github.add_installation(3, "octo")
    fake_github.add_repo(REPO, {"app.py": BASE, "other.py": "x = 1\n"}, installation_id=3)
    head = fake_github.push(REPO, "feature", {"app.py": HEAD}, parent_branch="main")
    fake_github.add_pull(REPO, 12, head_ref="feature")
    settings = Settings(_env_file=None, app_id=str(fake_github.app_id),
                        private_key=fake_github.private_key_pem, github_api_url=fake_github.url)
    gh = GitHubApp(settings).installation_client(3, REPO)
    return fake_github, gh, head


def posts(fake) -> list[str]:
    return [r.path for r in fake.requests if r.method in ("POST", "PATCH", "PUT", "DELETE")
            and not r.path.endswith("/access_tokens")]


# ---------------------------------------------------------------------- suggestion review


def test_suggestions_land_on_the_right_lines(world):
    fake, gh, head = world
    fixed = edit(HEAD, {6: "line six (fixed)\n", 19: "line 19 fixed\n", 21: "line 21 fixed\n"})
    patch = diff("app.py", HEAD, fixed)

    review_id = suggestion_review(gh, REPO, 12, head, patch, "Two fixes for the build.", job_id=41, bot=BOT_LOGIN)

    assert review_id is not None
    (call,) = fake.calls("POST", "/repos/octo/app/pulls/12/reviews")
    assert call.json == {
        "commit_id": head,
        "body": "Two fixes for the build.\n\n<!-- qwenfix:job:41 -->",
        "event": "COMMENT",
        "comments": [
            {"path": "app.py", "line": 6, "side": "RIGHT",
             "body": "```suggestion\nline six (fixed)\n```"},
            {"path": "app.py", "start_line": 19, "start_side": "RIGHT", "line": 21,
             "side": "RIGHT",
             "body": "```suggestion\nline 19 fixed\nline twenty (pr)\nline 21 fixed\n```"},
        ],
    }
    (review,) = fake.reviews(REPO, 12)
    assert review["id"] == review_id and review["state"] == "COMMENTED"


def test_a_hunk_outside_the_pr_diff_posts_nothing(world):
    fake, gh, head = world
    fixed = edit(HEAD, {6: "line six (fixed)\n", 14: "line 14 is not in the PR diff\n"})
    patch = diff("app.py", HEAD, fixed)
    assert suggestion_review(gh, REPO, 12, head, patch, "body", job_id=42, bot=BOT_LOGIN) is None
    assert posts(fake) == []
    assert fake.reviews(REPO, 12) == []


def test_a_file_outside_the_pr_posts_nothing(world):
    fake, gh, head = world
    patch = diff("other.py", "x = 1\n", "x = 2\n")
    assert suggestion_review(gh, REPO, 12, head, patch, "body", job_id=43, bot=BOT_LOGIN) is None
    assert posts(fake) == []


def test_a_moved_head_posts_nothing(world):
    fake, gh, head = world
    fake.push(REPO, "feature", {"app.py": HEAD + "more\n"})
    patch = diff("app.py", HEAD, edit(HEAD, {6: "fixed\n"}))
    assert suggestion_review(gh, REPO, 12, head, patch, "body", job_id=44, bot=BOT_LOGIN) is None
    assert posts(fake) == []


def test_review_posted_once_when_the_job_runs_twice(world):
    fake, gh, head = world
    patch = diff("app.py", HEAD, edit(HEAD, {20: "line twenty (fixed)\n"}))
    first = suggestion_review(gh, REPO, 12, head, patch, "Fix", job_id=45, bot=BOT_LOGIN)
    second = suggestion_review(gh, REPO, 12, head, patch, "Fix", job_id=45, bot=BOT_LOGIN)
    assert first == second is not None
    assert len(fake.calls("POST", "/repos/octo/app/pulls/12/reviews")) == 1
    assert len(fake.reviews(REPO, 12)) == 1


def test_plan_insertions_deletions_and_backticks():
    files = [PullFile("app.py", "modified", _pr_patch())]
    # pure insertion after line 6: anchored on line 6
    patch = diff("app.py", HEAD, edit(HEAD, {}, inserts={6: "inserted\n"}))
    (c,) = plan_suggestions(patch, files)
    assert (c["line"], "start_line" in c) == (6, False)
    assert c["body"] == "```suggestion\nline six (pr)\ninserted\n```"
    # deletion of lines 20-21: an empty suggestion over them
    patch = diff("app.py", HEAD, edit(HEAD, {20: None, 21: None}))
    (c,) = plan_suggestions(patch, files)
    assert (c["start_line"], c["line"], c["body"]) == (20, 21, "```suggestion\n```")
    # replacement text containing a fence gets a longer fence
    patch = diff("app.py", HEAD, edit(HEAD, {5: "```python\n"}))
    (c,) = plan_suggestions(patch, files)
    assert c["body"] == "````suggestion\n```python\n````"
    # new files, garbage
    assert plan_suggestions(diff("new.py", "", "x\n").replace("--- a/new.py", "--- /dev/null"),
                            files) is None
    assert plan_suggestions("not a diff", files) is None


def _pr_patch() -> str:
    text = diff("app.py", BASE, HEAD)
    return text[text.index("@@"):]


# ---------------------------------------------------------------------- comments


def test_comment_posted_once_and_edited_in_place(world):
    fake, gh, _ = world
    first = upsert_comment(gh, REPO, 12, 50, "Working on it…", bot=BOT_LOGIN)
    second = upsert_comment(gh, REPO, 12, 50, "Done: pushed a fix.", bot=BOT_LOGIN)
    third = upsert_comment(gh, REPO, 12, 50, "Done: pushed a fix.", bot=BOT_LOGIN)
    assert first == second == third
    (comment,) = fake.comments(REPO, 12)
    assert comment["body"] == "Done: pushed a fix.\n\n<!-- qwenfix:job:50 -->"
    assert len(fake.calls("POST", "/repos/octo/app/issues/12/comments")) == 1
    patches = fake.calls("PATCH", f"/repos/octo/app/issues/comments/{first}")
    assert [p.json for p in patches] == [{"body": comment["body"]}]  # the third was a no-op


def test_a_person_quoting_the_marker_is_not_edited(world):
    fake, gh, _ = world
    fake.add_comment(REPO, 12, f"look at this {marker(51)}", user="alice")
    cid = upsert_comment(gh, REPO, 12, 51, "Hello", bot=BOT_LOGIN)
    bodies = [c["body"] for c in fake.comments(REPO, 12)]
    assert bodies == [f"look at this {marker(51)}", "Hello\n\n<!-- qwenfix:job:51 -->"]
    assert fake.comments(REPO, 12)[1]["id"] == cid


def test_another_apps_bot_quoting_the_marker_is_not_taken_for_ours(world):
    """A bot that echoes pull request text (a changelog or coverage bot) carries our marker. Fails
    on main: every bot counted as this app, so the job tried to edit that bot's comment (GitHub
    answers 403) instead of posting its own."""
    fake, gh, _ = world
    fake.add_comment(REPO, 12, f"Changelog entry: {marker(53)}", user="echo-bot[bot]", user_type="Bot")
    cid = upsert_comment(gh, REPO, 12, 53, "Hello", bot=BOT_LOGIN)
    bodies = [(c["user"]["login"], c["body"]) for c in fake.comments(REPO, 12)]
    assert bodies == [("echo-bot[bot]", f"Changelog entry: {marker(53)}"),
                      (BOT_LOGIN, "Hello\n\n<!-- qwenfix:job:53 -->")]
    assert fake.comments(REPO, 12)[1]["id"] == cid
    assert not fake.calls("PATCH", f"re:/repos/{REPO}/issues/comments/\\d+")


def test_other_jobs_comments_are_left_alone(world):
    fake, gh, _ = world
    a = upsert_comment(gh, REPO, 12, 1, "job one", bot=BOT_LOGIN)
    b = upsert_comment(gh, REPO, 12, 2, "job two", bot=BOT_LOGIN)
    assert a != b and len(fake.comments(REPO, 12)) == 2


def test_fallback_body_survives_backticks(world):
    fake, gh, _ = world
    old = "def f():\n    return 1\n"
    new = 'def f():\n    """Example:\n\n    ```\n    f()\n    ````\n    """\n    return 2\n'
    patch = diff("doc.py", old, new)
    body = patch_comment("The build failed in `test_doc`.", patch, "http://q/jobs/9")
    assert body.startswith("The build failed in `test_doc`.")
    fence = "`````"
    assert f"\n{fence}diff\n" in body and body.count(f"\n{fence}\n") == 1
    inner = re.search(rf"\n{fence}diff\n(.*?)\n{fence}\n", body, re.S).group(1)
    assert inner + "\n" == patch
    assert "git apply" in body and "http://q/jobs/9" in body
    assert "<details>" in body and "</details>" in body
    assert "1 file, +7 −1" in body
    cid = upsert_comment(gh, REPO, 12, 52, body, bot=BOT_LOGIN)
    assert fake.comments(REPO, 12)[0]["body"].startswith(body)
    assert fake.comments(REPO, 12)[0]["id"] == cid


def test_fallback_body_without_summary_starts_with_the_patch():
    body = patch_comment("", diff("a.py", "x\n", "y\n"), "http://q/jobs/11")
    assert body.startswith("<details>")


def test_fallback_body_for_a_huge_patch_links_the_job():
    patch = diff("big.txt", "", "".join(f"{i}\n" for i in range(20000)))
    body = patch_comment("Summary", patch, "http://q/jobs/10")
    assert len(body) < 1000 and "http://q/jobs/10" in body


# ---------------------------------------------------------------------- check runs


def test_check_run_created_once_and_updated(world):
    fake, gh, head = world
    first = upsert_check_run(gh, REPO, head, 60, "in_progress", title="Reproducing",
                             summary="Running the failing step", details_url="http://q/jobs/60")
    notes = [Annotation("app.py", i, message=f"m{i}", level="warning") for i in range(1, 121)]
    second = upsert_check_run(gh, REPO, head, 60, "completed", "success", title="Fixed",
                              summary="Pushed a fix", details_url="http://q/jobs/60",
                              text="details", annotations=notes)
    third = upsert_check_run(gh, REPO, head, 60, "completed", "success", title="Fixed",
                             summary="Pushed a fix", details_url="http://q/jobs/60",
                             text="details", annotations=notes)
    assert first == second == third
    (run,) = fake.check_runs(REPO, head)
    assert (run["name"], run["external_id"], run["status"], run["conclusion"]) == (
        "qwenfix", "60", "completed", "success")
    assert run["output"]["title"] == "Fixed" and run["output"]["text"] == "details"
    assert len(run["annotations"]) == 120  # 50 + 50 + 20, not repeated by the third call
    (create,) = fake.calls("POST", "/repos/octo/app/check-runs")
    assert create.json == {
        "name": "qwenfix", "head_sha": head, "external_id": "60", "status": "in_progress",
        "details_url": "http://q/jobs/60",
        "output": {"title": "Reproducing", "summary": "Running the failing step"},
    }
    patches = fake.calls("PATCH", f"/repos/octo/app/check-runs/{first}")
    assert [len(p.json["output"].get("annotations", [])) for p in patches] == [50, 50, 20, 0]
    assert patches[0].json["output"]["annotations"][0] == {
        "path": "app.py", "start_line": 1, "end_line": 1, "annotation_level": "warning",
        "message": "m1"}


def test_check_runs_of_different_jobs_are_separate(world):
    fake, gh, head = world
    a = upsert_check_run(gh, REPO, head, 61, "queued", title="t", summary="s", details_url="u:1")
    b = upsert_check_run(gh, REPO, head, 62, "queued", title="t", summary="s", details_url="u:2")
    assert a != b and len(fake.check_runs(REPO, head)) == 2


# ---------------------------------------------------------------------- pull requests


def test_fix_pull_request_opened_once(world):
    fake, gh, _ = world
    fake.push(REPO, "qwenfix/fix-70", {"app.py": BASE.replace("line 3\n", "line three\n")},
              parent_branch="main")
    n1, url1 = open_fix_pull_request(gh, REPO, "main", "qwenfix/fix-70", "Fix the build",
                                     "This fixes CI.", job_id=70)
    n2, url2 = open_fix_pull_request(gh, REPO, "main", "qwenfix/fix-70", "Fix the build",
                                     "This fixes CI.", job_id=70)
    assert (n1, url1) == (n2, url2) and n1 == 13
    assert url1.endswith("/octo/app/pull/13")
    assert len(fake.calls("POST", "/repos/octo/app/pulls")) == 1
    pr = [p for p in fake.pulls(REPO) if p["number"] == n1][0]
    assert pr["body"] == "This fixes CI.\n\n<!-- qwenfix:job:70 -->"
    assert (pr["head"]["ref"], pr["base"]["ref"]) == ("qwenfix/fix-70", "main")
    listing = fake.calls("GET", "/repos/octo/app/pulls")[0]
    assert listing.query["head"] == "octo:qwenfix/fix-70" and listing.query["state"] == "open"


# ---------------------------------------------------------------------- reactions, permission


def test_react_and_permission(world):
    fake, gh, _ = world
    cid = fake.add_comment(REPO, 12, "/qwen fix", user="alice")
    rc = fake.add_review_comment(REPO, 12, "/qwen fix", path="app.py", line=6, user="alice")
    first = react(gh, REPO, cid)
    assert react(gh, REPO, cid) == first
    react(gh, REPO, rc, "rocket", review_comment=True)
    got = [(r["subject"], r["comment_id"], r["content"]) for r in fake.reactions(REPO)]
    assert got == [("issue_comment", cid, "eyes"), ("pull_request_review_comment", rc, "rocket")]

    fake.set_permission(REPO, "alice", "maintain")
    fake.set_permission(REPO, "bob", "triage")
    assert permission(gh, REPO, "alice") == "write"
    assert permission(gh, REPO, "bob") == "read"
    assert permission(gh, REPO, "stranger") == "read"  # public repository


def test_a_known_comment_or_check_run_id_is_edited_without_a_lookup(world):
    fake, gh, head = world
    comment = upsert_comment(gh, REPO, 12, 51, "Reproducing…", bot=BOT_LOGIN)
    run = upsert_check_run(gh, REPO, head, 51, "in_progress", title="Reproducing", summary="…",
                           details_url="http://q/jobs/51")
    before = len(fake.requests)
    assert upsert_comment(gh, REPO, 12, 51, "Validating…", bot=BOT_LOGIN, known_id=comment) == comment
    assert upsert_check_run(gh, REPO, head, 51, "completed", "success", title="Fixed", summary="ok",
                            details_url="http://q/jobs/51", known_id=run) == run
    calls = [(r.method, r.path) for r in fake.requests[before:] if "access_tokens" not in r.path]
    assert calls == [("PATCH", f"/repos/{REPO}/issues/comments/{comment}"), ("PATCH", f"/repos/{REPO}/check-runs/{run}")]
    assert "Validating…" in fake.comments(REPO, 12)[0]["body"]
    assert fake.check_runs(REPO, head)[0]["conclusion"] == "success"
    # a comment deleted meanwhile is posted again rather than lost
    fake.issue_comments.pop(comment)
    again = upsert_comment(gh, REPO, 12, 51, "Done.", bot=BOT_LOGIN, known_id=comment)
    assert again != comment and "Done." in fake.comments(REPO, 12)[0]["body"]
