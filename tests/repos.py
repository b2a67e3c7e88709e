"""Small repositories and CI runs for end-to-end tests, as GitHub would show them."""

from __future__ import annotations

import textwrap

REPO = "octo/calc"
WORKFLOW = textwrap.dedent("""\
    name: CI
    on: [push, pull_request]
    jobs:
      test:
        runs-on: ubuntu-latest
        steps:
          - uses: actions/checkout@v4
          - name: Run tests
            run: python3 -m pytest -q
""")
LINT_WORKFLOW = textwrap.dedent("""\
    name: Lint
    on: [pull_request]
    jobs:
      lint:
        runs-on: ubuntu-latest
        steps:
          - uses: actions/checkout@v4
          - name: Check formatting
            run: ruff format --check .
""")
BASE_FILES = {
    "calc.py": "def add(a, b):\n    return a + b\n",
    "tests/test_calc.py": "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n",
    ".github/workflows/ci.yml": WORKFLOW,
    "README.md": "# calc\n\nAdds numbers.\n",
}
BROKEN_CALC = "def add(a, b):\n    return a - b\n"
FIXED_CALC = "def add(a, b):\n    return a + b\n"


def actions_log(command: str, output: str, exit_code: int = 1) -> str:
    stamp = "2026-11-23T10:00:0{}.1234567Z "
    lines = [
        "##[group]Run actions/checkout@v4", "Syncing repository: octo/calc", "##[endgroup]",
        f"##[group]Run {command}", command, "shell: /usr/bin/bash -e {0}", "##[endgroup]",
        *output.splitlines(), f"##[error]Process completed with exit code {exit_code}.",
    ]
    return "\n".join(stamp.format(i % 10) + line for i, line in enumerate(lines)) + "\n"


PYTEST_FAILURE = textwrap.dedent("""\
    F                                                                        [100%]
    =================================== FAILURES ===================================
    ___________________________________ test_add ___________________________________

        def test_add():
    >       assert add(2, 3) == 5
    E       assert -1 == 5
    E        +  where -1 = add(2, 3)

    tests/test_calc.py:5: AssertionError
    =========================== short test summary info ============================
    FAILED tests/test_calc.py::test_add - assert -1 == 5
    1 failed in 0.02s
""")


def failing_job(job_id: int, step: str = "Run tests", command: str = "python3 -m pytest -q", output: str = PYTEST_FAILURE, name: str = "test") -> dict:
    return {
        "id": job_id, "name": name, "conclusion": "failure",
        "steps": [{"name": "Set up job", "number": 1, "conclusion": "success"},
                  {"name": "Run actions/checkout@v4", "number": 2, "conclusion": "success"},
                  {"name": step, "number": 3, "conclusion": "failure"}],
        "log": actions_log(command, output),
    }


def repository(full_name: str, fork: bool = False) -> dict:
    """A repository as webhook payloads embed it (the fields GitHub always sends that matter here)."""
    owner, name = full_name.split("/")
    return {"id": sum(map(ord, full_name)), "name": name, "full_name": full_name, "private": False,
            "owner": {"login": owner, "type": "User" if fork else "Organization"}, "fork": fork,
            "html_url": f"https://github.com/{full_name}", "clone_url": f"https://github.com/{full_name}.git"}


def workflow_run_event(repo: str, run: dict, pr_numbers=(), head_branch: str = "feature", installation: int = 1,
                       path: str = ".github/workflows/ci.yml", workflow_id: int = 77, actor: str = "contributor",
                       head_repo: str | None = None) -> dict:
    """``head_repo``: where the head commit lives; for a fork's pull request GitHub sends the fork
    there and ``pull_requests: []``."""
    return {
        "action": "completed",
        "installation": {"id": installation},
        "repository": {"full_name": repo, "name": repo.split("/")[1], "owner": {"login": repo.split("/")[0]}},
        "sender": {"login": actor, "type": "User"},
        "workflow_run": {
            "id": run["id"], "name": run.get("name", "CI"), "path": path, "workflow_id": workflow_id,
            "head_sha": run["head_sha"], "head_branch": head_branch, "conclusion": "failure", "event": "pull_request",
            "run_attempt": 1, "actor": {"login": actor}, "pull_requests": [{"number": n} for n in pr_numbers],
            "repository": repository(repo),
            "head_repository": repository(head_repo or repo, fork=bool(head_repo and head_repo != repo)),
        },
    }


def comment_event(repo: str, number: int, comment_id: int, body: str, user: str = "maintainer",
                  user_type: str = "User", installation: int = 1) -> dict:
    return {
        "action": "created",
        "installation": {"id": installation},
        "repository": {"full_name": repo, "name": repo.split("/")[1], "owner": {"login": repo.split("/")[0]}},
        "sender": {"login": user, "type": user_type},
        "issue": {"number": number, "pull_request": {"url": f"https://api.github.com/repos/{repo}/pulls/{number}"}},
        "comment": {"id": comment_id, "body": body, "created_at": "2026-11-23T10:00:00Z", "user": {"login": user}},
    }


def local_origin(root, files: dict[str, str]) -> str:
    """A one-commit git repository at ``root`` (a plain directory, no server); returns its head sha."""
    import subprocess

    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@e"]
    subprocess.run(git + ["init", "-q", "-b", "main"], cwd=root, check=True)
    subprocess.run(git + ["add", "-A"], cwd=root, check=True)
    subprocess.run(git + ["commit", "-qm", "init"], cwd=root, check=True)
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                          check=True).stdout.strip()
