"""The job page: failure excerpt, stage timeline, the delivered diff as a diff, candidates with why
each was rejected, and the trajectory step by step with its observations folded."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from fastapi.testclient import TestClient

from app.dashboard.views import diff_lines, diff_stat, timeline, trajectory_steps
from app.main import create_app
from core.db.models import Job
from core.db.session import session_scope
from tests.support.people import api_token

PATCH = """diff --git a/calc.py b/calc.py
--- a/calc.py
+++ b/calc.py
@@ -1,2 +1,2 @@
 def add(a, b):
-    return a - b
+    return a + b
"""


def test_diff_lines_are_tagged_for_colour():
    kinds = [line.kind for line in diff_lines(PATCH)]
    assert kinds == ["file", "file", "file", "hunk", "context", "del", "add"]
    assert diff_stat(PATCH) == (1, 1, 1)


def test_timeline_has_the_queue_the_stages_in_order_and_the_rest():
    created = datetime(2026, 1, 1, tzinfo=timezone.utc)
    stages = timeline(created, created + timedelta(seconds=2), {"reproduce": 3.0, "agent": 10.0, "total": 15.0})
    assert [(s.name, s.seconds) for s in stages] == [("queued", 2.0), ("reproduce", 3.0),
                                                    ("agent + validation", 10.0), ("GitHub + delivery", 2.0)]
    assert abs(sum(s.share for s in stages) - 1.0) < 0.01


def test_trajectory_steps_say_what_each_did():
    steps = trajectory_steps([
        {"candidate": 1, "tool": "run", "arguments": {"command": "pytest -q\nmore"}, "observation": "1 failed",
         "response": "", "prompt_tokens": 100, "completion_tokens": 20},
        {"candidate": 1, "tool": None, "arguments": None, "observation": "use a tool", "response": "hmm"},
    ])
    assert [(s.number, s.summary, s.tokens) for s in steps] == [(1, "run pytest -q", 120),
                                                              (2, "no tool call (corrected)", 0)]


def test_job_page_shows_failure_timeline_diff_candidates_and_folded_observations(make_settings, database_url):
    settings = make_settings(database_url=database_url, broker_url="redis://127.0.0.1:1/0", admins="root")
    created = datetime.now(timezone.utc) - timedelta(minutes=5)
    with session_scope(database_url) as session:
        job = Job(kind="repair", repo="octo/calc", pr_number=7, head_sha="a" * 40, trigger="workflow:1",
                  idempotency_key="k", state="succeeded", outcome="verified fix delivered as a commit",
                  created_at=created, started_at=created + timedelta(seconds=1),
                  timings={"reproduce": 2.5, "agent": 8.0, "total": 12.0},
                  usage={"prompt_tokens": 900, "completion_tokens": 80},
                  result={"patch": PATCH, "failure": "Job: test\nCommand:\n    pytest -q\nE   assert 1 == 3",
                          "delivery": {"how": "commit", "commit_sha": "b" * 40},
                          "candidates": [{"index": 1, "source": "agent", "outcome": "finished", "verified": False,
                                          "reasons": ["`pytest -q` still fails (exit 1)"], "diff_lines": 4},
                                         {"index": 2, "source": "agent", "outcome": "finished", "verified": True,
                                          "reasons": [], "diff_lines": 2, "summary": "add, not subtract"}]},
                  trajectory=[{"candidate": 2, "tool": "read_file", "arguments": {"path": "calc.py"},
                               "observation": "1  def add(a, b):\n2      return a - b", "response": "",
                               "prompt_tokens": 400, "completion_tokens": 30}])
        session.add(job)
    with TestClient(create_app(settings, sweep=False)) as client:
        page = client.get("/jobs/1", headers=api_token(settings, "root")).text
    assert "E   assert 1 == 3" in page
    assert '<div class="del">-    return a - b</div>' in page and '<div class="add">+    return a + b</div>' in page
    assert "<strong>queued</strong><br>1.0 s" in page and "<strong>reproduce</strong><br>2.5 s" in page
    assert "`pytest -q` still fails (exit 1)" in page and "add, not subtract" in page
    assert "<code>read_file calc.py</code>" in page
    assert '<details><summary class="muted">observation (' in page  # folded until opened
