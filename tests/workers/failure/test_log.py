"""CI logs are written by the code under test: reading one takes time linear in its size."""

from __future__ import annotations

import subprocess
import sys

from tests.support.db import ROOT
from workers.failure.log import clean_log

BOUND_S = 30  # generous: linear reading takes well under a second; main's patterns take minutes

# Runs in a child process: a regex runs in C and cannot be interrupted in this one.
HOSTILE = """
from workers.failure.log import clean_log, error_section
lines = [" " * 4000 + "x", "::error" + " " * 40000 + "x", " " * 40000 + "+", "━" * 5 + " " * 4000 + "x"]
error_section(clean_log("\\n".join(lines * 3)))
print("done")
"""


def test_a_log_with_long_runs_of_spaces_is_read_in_linear_time():
    """Fails on main: its progress-bar, workflow-command and noise patterns backtrack over long
    runs of spaces (the progress-bar pattern alone took 37 s on one line of 2,000 spaces)."""
    done = subprocess.run([sys.executable, "-c", HOSTILE], cwd=ROOT, capture_output=True, text=True,
                          timeout=BOUND_S)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "done"


def test_progress_bars_and_workflow_commands_are_still_recognised():
    log = "\n".join([
        "   ━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━ 1.2/1.2 MB 3.4 MB/s eta 0:00:00",
        "[====>     ] 45%",
        " 45% |████      |",
        "  + requests==2.32.3",
        "::error file=app.py,line=3::name 'x' is not defined",
        "a line that stays",
    ])
    assert clean_log(log).splitlines() == ["Error: name 'x' is not defined", "a line that stays"]
