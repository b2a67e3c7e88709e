"""The security gate on real bandit: findings a candidate adds, compared with the base."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from workers.engine.security_gate import scan

BASE = "import subprocess\n\n\ndef add(a, b):\n    return a + b\n"
SHELL = BASE + "\n\ndef announce(title):\n    return subprocess.call(f\"echo {title}\", shell=True)\n"
YAML = "import yaml\n\n\ndef load(text):\n    return yaml.load(text)\n"


def test_a_shell_call_on_pull_request_text_is_a_blocking_finding():
    gate = scan({"calc.py": BASE}, {"calc.py": SHELL})
    [finding] = gate.blocking
    assert (finding.rule, finding.severity, finding.path, finding.line) == ("B602", "high", "calc.py", 9)
    assert "B602 subprocess_popen_with_shell_equals_true (high severity) at calc.py:9" in finding.describe()


def test_a_nosec_comment_written_by_the_candidate_does_not_hide_a_finding():
    hidden = SHELL.replace("shell=True)", "shell=True)  # nosec B602")
    assert [f.rule for f in scan({"calc.py": BASE}, {"calc.py": hidden}).blocking] == ["B602"]


def test_yaml_load_without_a_safe_loader_is_a_note_not_a_rejection():
    gate = scan({}, {"pkg/config.py": YAML})  # a new file: everything in it is new
    assert gate.blocking == []
    assert [(f.rule, f.severity) for f in gate.notes] == [("B506", "medium")]


def test_what_the_base_already_has_is_not_the_candidates_doing():
    moved = "import os\n\n" + SHELL  # the same insecure line, two lines lower
    assert scan({"calc.py": SHELL}, {"calc.py": moved}).added == []
    assert scan({"calc.py": SHELL}, {"calc.py": SHELL + "\n\ndef again(t):\n    return subprocess.call(t, shell=True)\n"}
                ).blocking[0].line == 13


def test_paths_that_leave_the_scan_directory_are_not_written(tmp_path):
    outside = tmp_path.parent / "escaped.py"
    gate = scan({}, {"../escaped.py": SHELL, "/tmp/abs.py": SHELL})
    assert gate.added == [] and not outside.exists() and not Path("/tmp/abs.py").exists()


@pytest.mark.skipif(shutil.which("semgrep") is None, reason="semgrep is not installed (it is optional)")
def test_the_operators_semgrep_rules_are_applied(tmp_path):
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "eval.yml").write_text(
        "rules:\n  - id: no-eval\n    pattern: eval(...)\n    message: eval of data\n    languages: [python]\n"
        "    severity: ERROR\n")
    gate = scan({"calc.py": BASE}, {"calc.py": BASE + "\n\ndef run(text):\n    return eval(text)\n"}, rules)
    assert [(f.tool, f.rule, f.severity) for f in gate.blocking] == [("semgrep", "no-eval", "high")]
