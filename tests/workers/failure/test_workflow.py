"""Workflow files come from the pull request: reading them must take time linear in their size,
whatever the job names, expressions and run commands say."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from tests.support.db import ROOT
from workers.failure.workflow import NameTemplate, locate_step, parse_workflow, test_command_guess

# A generous bound, not a timing: in linear time all of it takes well under a second, even on a
# loaded machine. The backtracking matcher on main took 1.1 s for 7 expressions and a 40-value name,
# about ten times more for each further one, so 14 and 28 expressions would never finish.
BOUND_S = 30


def _expressions(count: int) -> str:
    return ", ".join(f"${{{{ matrix.k{i} }}}}" for i in range(count))


def _workflow(count: int) -> str:
    """A matrix job whose name shows `count` matrix values, as popular projects write them."""
    return yaml.safe_dump({
        "name": "CI", "on": ["pull_request"],
        "jobs": {"test": {
            "name": f"test ({_expressions(count)})", "runs-on": "ubuntu-latest",
            "strategy": {"matrix": {f"k{i}": ["py"] for i in range(count)}},
            "steps": [{"uses": "actions/checkout@v4"}, {"name": "Run tests", "run": "python -m pytest -q"}],
        }},
    }, sort_keys=False)


# Runs in a child process: a regex runs in C and cannot be interrupted in this one.
HOSTILE = """
import json, sys
from workers.failure.workflow import NameTemplate, locate_step, parse_workflow, test_command_guess
cases = json.load(sys.stdin)
for text, job_name, step_name in cases:
    workflow = parse_workflow(text)
    locate_step(workflow, job_name, step_name, None)
    test_command_guess(workflow, job_name)
print("done")
"""


def test_names_with_many_expressions_are_matched_in_linear_time():
    """Fails on main: its regex of lazy wildcards (one per expression) does not finish in the bound
    for 14 and 28 expressions; nor do its expression, secret and test-runner patterns on the rest."""
    no_match = "test (" + ", ".join(["py"] * 40)  # no closing parenthesis: matches no job
    cases = [(_workflow(count), no_match, "Run tests") for count in (7, 14, 28)]
    never_closed = "${{" * 20000 + " " * 20000  # expressions that never close, in env and run
    cases.append((yaml.safe_dump({"jobs": {"t": {"steps": [
        {"name": "s", "env": {"A": never_closed}, "run": f"echo {never_closed}"},
        {"run": "make " * 20000}]}}}), "t (" + "a (" * 20000, "s"))
    done = subprocess.run([sys.executable, "-c", HOSTILE], cwd=ROOT, input=json.dumps(cases),
                          capture_output=True, text=True, timeout=BOUND_S)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "done"


@pytest.mark.parametrize("count", [7, 14, 28])
def test_a_name_with_many_expressions_still_finds_its_job(count):
    workflow = parse_workflow(_workflow(count))
    name = "test (" + ", ".join(f"v{i}" for i in range(count)) + ")"
    found = locate_step(workflow, name, "Run tests", None)
    assert found.command is not None and found.job.key == "test"


@pytest.mark.parametrize(("template", "name", "values"), [
    ("Test py${{ matrix.python }}", "Test py3.12", {"python": "3.12"}),
    ("Test py${{ matrix.python }}", "Test py", None),  # a matrix value is never empty
    ("${{ matrix.os }}-${{ matrix.node-version }}", "ubuntu-latest-20", {"os": "ubuntu", "node-version": "latest-20"}),
    ("${{ matrix.a }}${{ matrix.b }}", "xyz", {"a": "x", "b": "yz"}),
    ("build ${{ github.ref }} ${{ matrix.os }}", "build refs/heads/main linux", {"os": "linux"}),
    ("build ${{ github.ref }}", "build ", {}),
    ("same ${{ matrix.os }} ${{ matrix.os }}", "same a b", {"os": "a"}),
    ("plain", "plain", {}),
    ("plain", "other", None),
    ("${{ matrix.os }}!", "linux", None),
])
def test_name_templates_match_like_the_actions_ui_shows_them(template, name, values):
    assert NameTemplate.parse(template).match(name) == values


def test_the_test_command_is_still_found_behind_make_and_mvn_options():
    workflow = parse_workflow("jobs:\n  t:\n    steps:\n      - run: make -C src -j4 test\n")
    assert test_command_guess(workflow, "t") == "make -C src -j4 test"
    workflow = parse_workflow("jobs:\n  t:\n    steps:\n      - run: mvn -B -q -Pci test\n")
    assert test_command_guess(workflow, "t") == "mvn -B -q -Pci test"
