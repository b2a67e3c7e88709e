"""What a candidate patch may touch: CI configuration and the rest of .github/, test deletion, ignored paths."""

from __future__ import annotations

import subprocess

import pytest

from workers.engine.repair import drop_junk
from workers.engine.validate import check_paths
from workers.workspace.patches import export_patch


@pytest.fixture
def repo(tmp_path):
    root = tmp_path / "repo"
    for path, content in {"calc.py": "x = 1\n", "tests/test_calc.py": "def test(): pass\n",
                          "pkg/sub_test.py": "def test(): pass\n", ".github/workflows/ci.yml": "on: push\n",
                          "web/app.test.js": "test()\n", "docs/index.md": "# docs\n"}.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(content)
    git = ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git[:3], "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "base"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    return root, head


def patch(repo, change) -> str:
    root, head = repo
    change(root)
    return export_patch(root, head)


def test_a_code_change_is_allowed_and_an_empty_patch_is_not(repo):
    assert check_paths(patch(repo, lambda r: (r / "calc.py").write_text("x = 2\n"))).ok
    assert check_paths("").reasons == ["the patch is empty"]


def test_modifying_a_test_is_allowed(repo):
    assert check_paths(patch(repo, lambda r: (r / "tests/test_calc.py").write_text("def test(): assert 1\n"))).ok


def test_ci_configuration_changes_are_refused_unless_allowed(repo):
    p = patch(repo, lambda r: (r / ".github/workflows/ci.yml").write_text("on: []\n"))
    assert check_paths(p).reasons == ["changes CI configuration (.github/workflows/ci.yml)"]
    assert check_paths(p, allow_ci_changes=True).ok
    (repo[0] / ".gitlab-ci.yml").write_text("test: {script: [true]}\n")
    assert "changes CI configuration (.gitlab-ci.yml)" in check_paths(export_patch(*repo)).reasons


@pytest.mark.parametrize("path", ["tests/test_calc.py", "pkg/sub_test.py", "web/app.test.js"])
def test_deleting_a_test_file_is_refused_unless_allowed(repo, path):
    p = patch(repo, lambda r: (r / path).unlink())
    assert check_paths(p).reasons == [f"deletes a test file ({path})"]
    assert check_paths(p, allow_test_deletion=True).ok


def test_renaming_a_test_away_counts_as_deleting_it(repo):
    p = patch(repo, lambda r: (r / "tests/test_calc.py").rename(r / "calc_check.py"))
    assert check_paths(p).reasons == ["deletes a test file (tests/test_calc.py)"]


def test_renaming_a_test_so_it_is_not_collected_counts_as_deleting_it(repo):
    p = patch(repo, lambda r: (r / "tests/test_calc.py").rename(r / "tests/test_calc.py.off"))
    assert check_paths(p).reasons == ["deletes a test file (tests/test_calc.py)"]
    assert check_paths(p, allow_test_deletion=True).ok
    kept = patch(repo, lambda r: (r / "tests/test_calc.py.off").rename(r / "tests/test_calc_more.py"))
    assert check_paths(kept).ok


@pytest.mark.parametrize("path", [".github/CODEOWNERS", ".github/dependabot.yml", ".github/ISSUE_TEMPLATE/bug.md"])
def test_everything_under_github_is_protected_like_ci_configuration(repo, path):
    def change(root):
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text("* @contributor\n")
    p = patch(repo, change)
    assert check_paths(p).reasons == [f"changes repository configuration under .github/ ({path})"]
    assert check_paths(p, allow_ci_changes=True).ok


def test_ignored_paths_are_refused(repo):
    p = patch(repo, lambda r: (r / "docs/index.md").write_text("# changed\n"))
    assert check_paths(p, ignore_paths=("docs/*",)).reasons == ["touches an ignored path (docs/index.md)"]


def test_caches_left_by_test_runs_are_dropped_from_patches(repo):
    def change(root):
        (root / "calc.py").write_text("x = 3\n")
        (root / "__pycache__").mkdir()
        (root / "__pycache__" / "calc.cpython-311.pyc").write_bytes(b"\0bytecode")
        (root / ".pytest_cache").mkdir()
        (root / ".pytest_cache" / "README.md").write_text("cache\n")
    p = drop_junk(patch(repo, change))
    assert "calc.py" in p and "__pycache__" not in p and ".pytest_cache" not in p
