"""The workflow's setup steps as one script, run here by `sh` as the setup sandbox runs it."""

from __future__ import annotations

import subprocess

from workers.engine.environment import STEPS_ENV
from workers.engine.workflow_setup import setup_script
from workers.failure.ci_job import read_failing_job
from workers.failure.workflow import locate_step, parse_workflow


def test_steps_pass_settings_to_later_steps_through_the_runners_files(tmp_path):
    workflow = parse_workflow("""
on: pull_request
jobs:
  t:
    steps:
      - name: Set PYTHON_GIL
        run: echo "PYTHON_GIL=0" >> "$GITHUB_ENV"
      - run: |
          echo "SOURCE_DATE_EPOCH=$(echo 1700000000)" >> $GITHUB_ENV
          {
            echo 'NOTES<<EOF'
            echo 'a=1'
            echo 'b'
            echo 'EOF'
          } >> "$GITHUB_ENV"
          mkdir -p tools && echo "$PWD/tools" >> $GITHUB_PATH
          echo "version=1.2" >> "$GITHUB_OUTPUT"
          echo "GREETING=it's \$HOME; \`x\`" >> "$GITHUB_ENV"
      - run: printf '%s|%s|%s|%s' "$PYTHON_GIL" "$SOURCE_DATE_EPOCH" "$NOTES" "${PATH%%:*}" > seen
      - run: pytest
""")
    job = read_failing_job(workflow, "t", locate_step(workflow, "t", "Run pytest", None).step)
    kept = tmp_path / "env" / "github-env.sh"
    kept.parent.mkdir()
    script = setup_script(job).replace("/workspace", str(tmp_path)).replace(STEPS_ENV, str(kept))
    done = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "seen").read_text() == f"0|1700000000|a=1\nb|{tmp_path}/tools"
    # kept for the job's later commands (the failing step's): what the prelude of each one reads
    later = subprocess.run(["sh", "-c", f'. {kept}; printf "%s|%s|%s|%s" "$PYTHON_GIL" "$NOTES" "$GREETING" '
                                        '"${PATH%%:*}"'], capture_output=True, text=True, timeout=30)
    assert later.stdout == f"0|a=1\nb|it's $HOME; `x`|{tmp_path}/tools", later.stderr


def test_a_setup_without_the_runners_files_stays_as_it_was():
    workflow = parse_workflow("""
on: pull_request
jobs:
  t:
    steps:
      - run: pip install -e .
      - run: pytest
""")
    job = read_failing_job(workflow, "t", locate_step(workflow, "t", "Run pytest", None).step)
    assert setup_script(job).splitlines() == ["set -e", "echo '--- Run pip install -e .'",
                                              "( cd /workspace && pip install -e . )"]
