"""Tests weakened to go green: each way a patch can make the suite check less is refused by
validation, naming why, against a real sandbox; a real fix in the same repository still passes.

Fails on main: there each of these patches passed validation (checked by running the weakening
variants and the two runtime-only ones against main's validate: all were verified)."""

from __future__ import annotations

import shutil
import subprocess
import textwrap

import pytest

from tests.repos import local_origin
from workers.engine.stations import Stations
from workers.engine.suite_results import checks_less
from workers.engine.task import RepairTask
from workers.engine.validate import Baseline, measured_run, validate
from workers.engine.weakened_tests import added_markers, check_test_changes, test_settings
from workers.workspace.mirrors import MirrorCache
from workers.workspace.patches import apply_patch, export_patch

TESTS = textwrap.dedent("""\
    from calc import add


    def test_add():
        assert add(2, 3) == 5


    def test_zero_sum():
        assert add(0, 0) == 0
""")
PYPROJECT = textwrap.dedent("""\
    [project]
    name = "calc"
    version = "0.1.0"

    [tool.pytest.ini_options]
    testpaths = ["tests"]
""")
FILES = {
    "calc.py": "def add(a, b):\n    return a - b\n",  # broken: test_add fails, test_zero_sum passes
    "tests/test_calc.py": TESTS,
    "tests/test_module.py": "import calc\n\n\ndef test_module_has_add():\n    assert callable(calc.add)\n",
    "pyproject.toml": PYPROJECT,
    "setup.cfg": "[metadata]\nname = calc\n\n[flake8]\nmax-line-length = 100\n",
    ".github/CODEOWNERS": "* @octo/maintainers\n",
    ".github/dependabot.yml": "version: 2\nupdates: []\n",
}
COMMAND = "python3 -m pytest -q -p no:cacheprovider"


def _edit(path: str, old: str, new: str):
    def change(root):
        text = (root / path).read_text()
        assert old in text
        (root / path).write_text(text.replace(old, new, 1))
    return change


def _write(path: str, text: str):
    def change(root):
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    return change


def _rename(old: str, new: str):
    return lambda root: (root / old).rename(root / new)


SKIP = _edit("tests/test_calc.py", "def test_add():", '@pytest.mark.skip(reason="flaky on CI")\ndef test_add():')
IMPORT = _edit("tests/test_calc.py", "from calc import add\n", "import pytest\n\nfrom calc import add\n")
FIX = _edit("calc.py", "a - b", "a + b")  # with a real fix, only the rules below stand in the way

# (name, changes, the reason validation gives, what the tests alone show: (runtime reason) or None)
WEAKENINGS = [
    ("skip marker", [IMPORT, SKIP],
     'adds a skip/xfail marker: tests/test_calc.py::test_add line 6: `@pytest.mark.skip(reason="flaky on CI")`',
     "the patch skips 1 test that ran before: tests/test_calc.py::test_add"),
    ("module-level skip", [_edit("tests/test_calc.py", "from calc import add\n",
                                 'import pytest\n\npytest.skip("flaky on CI", allow_module_level=True)\n\nfrom calc import add\n')],
     "adds a skip/xfail marker: tests/test_calc.py line 3",
     "runs fewer tests: 3 collected before the patch, 2 after; no longer run: "
     "tests/test_calc.py::test_add, tests/test_calc.py::test_zero_sum"),
    ("xfail marker", [IMPORT, _edit("tests/test_calc.py", "def test_add():", "@pytest.mark.xfail\ndef test_add():")],
     "adds a skip/xfail marker: tests/test_calc.py::test_add line 6: `@pytest.mark.xfail`",
     "the patch skips 1 test that ran before: tests/test_calc.py::test_add"),
    ("renamed away", [_rename("tests/test_calc.py", "tests/test_calc.py.off")],
     "deletes a test file (tests/test_calc.py)",
     "runs fewer tests: 3 collected before the patch, 1 after"),
    ("addopts -k in pyproject.toml", [_edit("pyproject.toml", 'testpaths = ["tests"]',
                                            'testpaths = ["tests"]\naddopts = "-k \'not test_add\'"')],
     "changes the test runner's configuration ([tool.pytest…]/[tool.tox] in pyproject.toml)",
     "runs fewer tests: 3 collected before the patch, 2 after; no longer run: tests/test_calc.py::test_add"),
    ("--deselect in pytest.ini", [_write("pytest.ini", "[pytest]\naddopts = --deselect tests/test_calc.py::test_add\n")],
     "changes the test runner's configuration (pytest.ini)",
     "runs fewer tests: 3 collected before the patch, 2 after; no longer run: tests/test_calc.py::test_add"),
    ("conftest.py", [_write("tests/conftest.py", textwrap.dedent("""\
        def pytest_collection_modifyitems(items):
            items[:] = [item for item in items if item.name != "test_add"]
        """))],
     "changes the test runner's configuration (tests/conftest.py)",
     "runs fewer tests: 3 collected before the patch, 2 after; no longer run: tests/test_calc.py::test_add"),
    ("[tool:pytest] in setup.cfg", [FIX, _edit("setup.cfg", "[flake8]", "[tool:pytest]\naddopts = -x\n\n[flake8]")],
     "changes the test runner's configuration ([tool:pytest] in setup.cfg)", None),
    (".github/CODEOWNERS", [FIX, _write(".github/CODEOWNERS", "* @contributor\n")],
     "changes repository configuration under .github/ (.github/CODEOWNERS)", None),
    ("dependabot.yml", [FIX, _write(".github/dependabot.yml", "version: 2\nupdates: []\nregistries: {}\n")],
     "changes repository configuration under .github/ (.github/dependabot.yml)", None),
]


@pytest.fixture
def repo(tmp_path, sandbox_factory):
    """The repository at its red commit, a way to write a patch against it, and validation's parts."""
    origin = tmp_path / "origin"
    head = local_origin(origin, FILES)
    mirrors = MirrorCache(tmp_path / "mirrors", 10**10)

    class Repo:
        def patch(self, changes) -> str:
            scratch = tmp_path / f"scratch-{len(list(tmp_path.glob('scratch-*')))}"
            subprocess.run(["git", "clone", "-q", str(origin), str(scratch)], check=True)
            for change in changes:
                change(scratch)
            patch = export_patch(scratch, head)
            shutil.rmtree(scratch)
            return patch

        def stations(self) -> Stations:
            return Stations(lambda: mirrors.checkout(str(origin), head, None),
                            lambda workspace, network=False: sandbox_factory(workspace))

        def validate(self, patch: str, **options):
            task = RepairTask(command=COMMAND, **options)
            with self.stations() as stations:
                return validate(task, patch, stations, Baseline(task, stations))

        def runtime_reasons(self, patch: str) -> list[str]:
            """The test runs alone, before and after the patch (no rule on the patch's text)."""
            with self.stations() as stations, stations.station() as station:
                sandbox = station.sandbox()
                _, before = measured_run(sandbox, station.path, COMMAND, ".")
                station.worktree.reset()
                apply_patch(station.worktree, patch)
                sandbox.refresh()
                _, after = measured_run(sandbox, station.path, COMMAND, ".")
            return checks_less(before, after, COMMAND)

    return Repo()


pytestmark = pytest.mark.docker


@pytest.mark.parametrize(("name", "changes", "reason", "runtime"), WEAKENINGS, ids=[w[0] for w in WEAKENINGS])
def test_a_patch_that_weakens_the_tests_is_refused_naming_why(repo, name, changes, reason, runtime):
    patch = repo.patch(changes)
    verdict = repo.validate(patch)
    assert not verdict.ok
    assert any(reason in r for r in verdict.reasons), verdict.reasons
    # the comparison of the test runs catches it too, when the patch changes what runs
    shown = repo.runtime_reasons(patch)
    if runtime is None:
        assert shown == []
    else:
        assert any(runtime in r for r in shown), shown


def test_skipping_without_a_marker_is_caught_by_comparing_the_runs(repo):
    patch = repo.patch([IMPORT, _edit("tests/test_calc.py", "def test_add():\n",
                                      'def test_add():\n    raise pytest.skip.Exception("flaky on CI")\n')])
    assert check_test_changes(patch) == []  # no marker the patch rules know
    verdict = repo.validate(patch)
    assert verdict.reasons == ["the patch skips 1 test that ran before: tests/test_calc.py::test_add "
                               "(allow with repair.allow_test_changes)"]


def test_a_test_renamed_out_of_collection_is_caught_by_comparing_the_runs(repo):
    patch = repo.patch([_edit("tests/test_calc.py", "def test_add():", "def _add_case():")])
    verdict = repo.validate(patch)
    assert verdict.reasons == [f"`{COMMAND}` runs fewer tests: 3 collected before the patch, 2 after; no longer "
                               "run: tests/test_calc.py::test_add (allow with repair.allow_test_changes)"]


def test_a_real_fix_passes_even_with_a_new_test_and_a_pyproject_change(repo):
    assert repo.validate(repo.patch([FIX])).ok
    patch = repo.patch([
        FIX,
        _edit("tests/test_calc.py", "def test_zero_sum():", "def test_add_negative():\n    assert add(-1, 1) == 0\n\n\n"
                                                          "def test_zero_sum():"),
        _edit("pyproject.toml", 'version = "0.1.0"', 'version = "0.1.1"'),
    ])
    verdict = repo.validate(patch)
    assert verdict.ok, verdict.reasons


def test_a_repository_may_allow_test_changes(repo):
    verdict = repo.validate(repo.patch([IMPORT, SKIP]), allow_test_changes=True)
    assert verdict.ok, verdict.reasons


def test_moving_a_marked_test_adds_no_marker():
    patch = textwrap.dedent("""\
        diff --git a/tests/test_a.py b/tests/test_a.py
        --- a/tests/test_a.py
        +++ b/tests/test_a.py
        @@ -1,3 +1,4 @@
        -@pytest.mark.skipif(sys.platform == "win32", reason="posix only")
        -def test_link():
        +def test_other():
             pass
        +@pytest.mark.skipif(sys.platform == "win32", reason="posix only")
        +def test_link():
        """)
    assert added_markers(patch) == []


@pytest.mark.parametrize("line", [
    "it.skip('adds', () => {})", "xit('adds', () => {})", "test.only('adds', () => {})", "describe.skip('calc', () => {})",
    't.Skip("flaky")', "#[ignore]", "@Disabled", "self.skipTest('later')", "@unittest.skip('later')",
    "raise unittest.SkipTest('later')", "pytest.importorskip('numpy')", "__test__ = False",
])
def test_markers_of_other_runners_are_recognised(line):
    patch = f"diff --git a/t.x b/t.x\n--- a/t.x\n+++ b/t.x\n@@ -1 +1,2 @@\n x\n+{line}\n"
    assert [m.text for m in added_markers(patch)] == [line]


def test_markers_in_documentation_are_not_a_change_to_the_tests():
    patch = "diff --git a/docs/t.md b/docs/t.md\n--- a/docs/t.md\n+++ b/docs/t.md\n@@ -1 +1,2 @@\n x\n+Use `it.skip(`\n"
    assert added_markers(patch) == []


def test_the_test_settings_of_shared_configuration_files():
    assert test_settings("pyproject.toml", PYPROJECT) == test_settings("pyproject.toml", PYPROJECT + "\n[tool.ruff]\n")
    assert test_settings("pyproject.toml", PYPROJECT) != test_settings("pyproject.toml", PYPROJECT + 'addopts = "-x"\n')
    assert test_settings("pyproject.toml", None) == test_settings("pyproject.toml", '[project]\nname = "x"\n')
    assert test_settings("pyproject.toml", "not toml [") == "not toml ["
    cfg = "[metadata]\nname = x\n[tool:pytest]\naddopts = -q\n"
    assert test_settings("setup.cfg", cfg) == {"tool:pytest": ["addopts = -q"]}
    assert test_settings("setup.cfg", cfg.replace("name = x", "name = y")) == test_settings("setup.cfg", cfg)
    package = '{"name": "x", "scripts": {"test": "jest", "lint": "eslint ."}, "jest": {"testPathIgnorePatterns": []}}'
    assert test_settings("package.json", package) != test_settings("package.json", package.replace('"test": "jest"', '"test": "jest -t add"'))
    assert test_settings("package.json", package) == test_settings("package.json", package.replace("eslint .", "eslint src"))


def test_measuring_a_run_leaves_no_trace_in_its_output_and_copes_with_junitxml_turned_off(repo):
    """The reproduction is measured too (it is the candidates' baseline): what the repository's tests
    print must stay theirs, and a repository that turns pytest's junitxml plugin off still gets its
    real result, not a usage error."""
    with repo.stations() as stations, stations.station() as station:
        sandbox = station.sandbox()
        result, run = measured_run(sandbox, station.path, "python3 -m pytest -p no:cacheprovider", ".")
        assert result.exit_code == 1 and "1 failed, 2 passed" in result.output
        assert "generated xml file" not in result.output and ".qwenfix-reports" not in result.output
        assert run is not None and run.runner == "pytest" and run.collected == 3
        result, run = measured_run(sandbox, station.path, "python3 -m pytest -p no:cacheprovider -p no:junitxml", ".")
        assert result.exit_code == 1 and "1 failed, 2 passed" in result.output
        assert run is not None and run.collected == 3  # read from the output
