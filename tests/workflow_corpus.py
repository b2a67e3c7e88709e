"""The workflow corpus: workflows in the shapes GitHub's starter workflows and popular projects use
(tests/data/workflows/corpus/), each with a small repository whose pull request breaks a test, the
job as the Actions API shows it, and its log as CI printed it."""

from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

from tests.repos import actions_log
from workers.failure.workflow import parse_workflow

CORPUS = Path(__file__).resolve().parent / "data" / "workflows" / "corpus"

CALC = "def add(a, b):\n    return a + b\n"
BROKEN_CALC = "def add(a, b):\n    return a - b\n"
TEST_CALC = "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"
REPORT = ("from tabulate import tabulate\n\nfrom calc import add\n\n\n"
          "def table(pairs):\n    return tabulate([(a, b, add(a, b)) for a, b in pairs], headers=['a', 'b', 'sum'])\n")
TEST_REPORT = "from report import table\n\n\ndef test_table():\n    assert 'sum' in table([(1, 2)])\n"
PYPROJECT = textwrap.dedent("""\
    [build-system]
    requires = ["setuptools>=61"]
    build-backend = "setuptools.build_meta"

    [project]
    name = "calc"
    version = "0.1.0"
    requires-python = ">=3.9"

    [tool.setuptools]
    py-modules = ["calc"]
""")
PYTEST_OUT = textwrap.dedent("""\
    ============================= test session starts ==============================
    platform linux -- Python {py}, pytest-8.3.4, pluggy-1.5.0
    rootdir: /home/runner/work/{name}/{name}
    collected {n} items

    tests/test_calc.py F{dots}                                                   [100%]

    =================================== FAILURES ===================================
    ___________________________________ test_add ___________________________________

        def test_add():
    >       assert add(2, 3) == 5
    E       assert -1 == 5
    E        +  where -1 = add(2, 3)

    tests/test_calc.py:5: AssertionError
    =========================== short test summary info ============================
    FAILED tests/test_calc.py::test_add - assert -1 == 5
    ========================= 1 failed{passed} in 0.05s =========================
""")


def pytest_out(name: str, py: str = "3.10.16", passed: int = 0) -> str:
    return PYTEST_OUT.format(py=py, name=name, n=1 + passed, dots="." * passed,
                             passed=f", {passed} passed" if passed else "")


POSTGRES_OUT = textwrap.dedent("""\
    ============================= test session starts ==============================
    platform linux -- Python 3.11.11, pytest-8.3.4, pluggy-1.5.0
    rootdir: /home/runner/work/postgres/postgres
    collected 2 items

    tests/test_calc.py F                                                     [ 50%]
    tests/test_db.py F                                                       [100%]

    =================================== FAILURES ===================================
    ___________________________________ test_add ___________________________________

        def test_add():
    >       assert add(2, 3) == 5
    E       assert -1 == 5
    E        +  where -1 = add(2, 3)

    tests/test_calc.py:5: AssertionError
    _____________________________ test_sum_is_stored ______________________________

        def test_sum_is_stored():
            url = urlparse(os.environ['DATABASE_URL'])
            with socket.create_connection((url.hostname, url.port), timeout=2):
    >           assert add(2, 3) == 5
    E           assert -1 == 5

    tests/test_db.py:11: AssertionError
    =========================== short test summary info ============================
    FAILED tests/test_calc.py::test_add - assert -1 == 5
    FAILED tests/test_db.py::test_sum_is_stored - assert -1 == 5
    ============================== 2 failed in 0.07s ===============================
""")
JEST_OUT = textwrap.dedent("""\
    > corpus-jest@1.0.0 test
    > jest

    FAIL ./sum.test.js
      sum
        ✕ adds 1 + 2 to equal 3 (3 ms)

      ● sum › adds 1 + 2 to equal 3

        expect(received).toBe(expected) // Object.is equality

        Expected: 3
        Received: -1

          3 | describe('sum', () => {
          4 |   test('adds 1 + 2 to equal 3', () => {
        > 5 |     expect(sum(1, 2)).toBe(3);
            |                       ^
          6 |   });
          7 | });

          at Object.toBe (sum.test.js:5:23)

    Test Suites: 1 failed, 1 total
    Tests:       1 failed, 1 total
    Snapshots:   0 total
    Time:        0.412 s
    Ran all test suites.
""")
GO_OUT = textwrap.dedent("""\
    === RUN   TestAdd
        calc_test.go:6: Add(2, 3) = -1; want 5
    --- FAIL: TestAdd (0.00s)
    FAIL
    FAIL\texample.com/calc\t0.002s
    FAIL
""")
RUST_OUT = textwrap.dedent("""\
    running 1 test
    test tests::adds ... FAILED

    failures:

    ---- tests::adds stdout ----
    thread 'tests::adds' panicked at src/lib.rs:9:9:
    assertion `left == right` failed
      left: -1
     right: 5

    failures:
        tests::adds

    test result: FAILED. 0 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s

    error: test failed, to rerun pass `--lib`
""")


@dataclass
class Row:
    key: str
    title: str  # the workflow's shape, as the README table shows it
    workflow: str  # file under tests/data/workflows/corpus
    job: str  # the failing job's name as the Actions API shows it
    step: str  # the failing step's name as the Actions API shows it
    files: dict[str, str]
    broken: dict[str, str]  # what the pull request changes
    output: str  # what the failing step printed in CI
    fix: tuple[str, str, str] | None = None  # the scripted model's edit: path, old, new
    expect: str = "fixed"  # fixed | environment
    needs: list[str] = field(default_factory=list)  # words the job's report must carry

    @property
    def repo(self) -> str:
        return f"octo/{self.key}"

    @property
    def workflow_path(self) -> str:
        return f".github/workflows/{self.workflow}"

    def base_files(self) -> dict[str, str]:
        return {self.workflow_path: (CORPUS / self.workflow).read_text(), **self.files}

    def actions_job(self, job_id: int) -> dict:
        """The failed job as the Actions API lists it: "Set up job", then one entry per step."""
        workflow = parse_workflow((CORPUS / self.workflow).read_text())
        from workers.failure.workflow import match_job

        job, _, _ = match_job(workflow, self.job)
        steps = [{"name": "Set up job", "number": 1, "conclusion": "success"}]
        failed_at = None
        for step in job.steps:
            name = step.display_name.replace("${{ matrix.python-version }}", self.job.split("(")[-1].rstrip(")"))
            conclusion = "failure" if name == self.step else ("skipped" if failed_at else "success")
            steps.append({"name": name, "number": step.index + 2, "conclusion": conclusion})
            failed_at = failed_at or (step.index if conclusion == "failure" else None)
        assert failed_at is not None, f"{self.key}: no step {self.step!r}"
        command = next(s.run or s.uses or "" for s in job.steps if s.index == failed_at).strip().splitlines()[0]
        return {"id": job_id, "name": self.job, "conclusion": "failure", "steps": steps,
                "log": actions_log(command, self.output)}


POETRY_PYPROJECT = ('[tool.poetry]\nname = "calc"\nversion = "0.1.0"\ndescription = ""\n'
                    'authors = ["Octo <octo@example.com>"]\n\n[tool.poetry.dependencies]\npython = "^3.11"\n\n'
                    '[tool.poetry.group.dev.dependencies]\npytest = "^8.3"\n\n[build-system]\n'
                    'requires = ["poetry-core"]\nbuild-backend = "poetry.core.masonry.api"\n')
PYTHON_BASE = {"calc.py": CALC, "tests/test_calc.py": TEST_CALC, "conftest.py": "",
               "README.md": "# calc\n\nAdds numbers.\n"}
ADD_FIX = ("calc.py", "return a - b", "return a + b")


def rows(jest_lock: str) -> list[Row]:
    return [
        Row("python-app", "setup-python + `pip install -r requirements.txt` + flake8 + pytest", "python-app.yml",
            "build", "Test with pytest",
            {**PYTHON_BASE, "requirements.txt": "tabulate==0.9.0\n", "report.py": REPORT,
             "tests/test_report.py": TEST_REPORT},
            {"calc.py": BROKEN_CALC}, pytest_out("python-app", passed=1), ADD_FIX),
        Row("python-package", "python-package: a version matrix with include/exclude", "python-package.yml",
            "build (3.12)", "Test with pytest", {**PYTHON_BASE, "requirements.txt": "pytest\n"},
            {"calc.py": BROKEN_CALC}, pytest_out("python-package", "3.12.8"), ADD_FIX,
            needs=["python 3.11.2 instead of 3.12"]),
        Row("src-layout", "src layout: `PYTHONPATH` and `PATH` set through `$GITHUB_ENV`/`$GITHUB_PATH`, "
            "`FORCE_COLOR`", "src-layout.yml", "test", "Run tests",
            {"src/calc.py": CALC, "tests/test_calc.py": TEST_CALC},
            {"src/calc.py": BROKEN_CALC}, pytest_out("src-layout", "3.11.11"), ("src/calc.py", "return a - b", "return a + b")),
        Row("composite-setup", "the repository's own composite setup action (`uses: ./.github/actions/setup`), "
            "a secret-gated step", "composite-setup.yml", "tests (3.11)", "Run tests",
            {**PYTHON_BASE, "requirements.txt": "tabulate==0.9.0\n", "report.py": REPORT,
             "tests/test_report.py": TEST_REPORT,
             ".github/actions/setup/action.yml": (CORPUS.parent / "actions" / "setup.yml").read_text()},
            {"calc.py": BROKEN_CALC}, pytest_out("composite-setup", "3.11.11", passed=1), ADD_FIX),
        Row("tox", "tox, environments from an include-only matrix", "tox.yml", "py311", "Run tox",
            {**PYTHON_BASE, "pyproject.toml": PYPROJECT,
             "tox.ini": "[tox]\nenv_list = py311, py312\n\n[testenv]\ndeps = pytest\ncommands = pytest {posargs:tests}\n"},
            {"calc.py": BROKEN_CALC},
            "py311: install_deps> python -I -m pip install pytest\n.pkg: _optional_hooks> python "
            "/opt/hostedtoolcache/Python/3.11.11/x64/lib/python3.11/site-packages/pyproject_api/_backend.py True "
            "setuptools.build_meta\npy311: commands[0]> pytest tests\n" + pytest_out("tox", "3.11.11")
            + "py311: exit 1 (0.31 seconds) /home/runner/work/tox/tox> pytest tests pid=2131\n"
              "  py311: FAIL code 1 (6.02=setup[5.71]+cmd[0.31] seconds)\n  evaluation failed :( (6.10 seconds)\n",
            ADD_FIX),
        Row("nox", "nox, cache action ignored", "nox.yml", "tests (ubuntu-latest, 3.11)", "Run tests",
            {**PYTHON_BASE, "noxfile.py": ('import nox\n\n\n@nox.session(python=["3.11"])\ndef tests(session):\n'
                                           '    session.install("pytest")\n    session.run("pytest")\n')},
            {"calc.py": BROKEN_CALC},
            "nox > Running session tests-3.11\nnox > Creating virtual environment (virtualenv) using python3.11 in "
            ".nox/tests-3-11\nnox > python -m pip install pytest\nnox > pytest\n" + pytest_out("nox", "3.11.11")
            + "nox > Command pytest failed with exit code 1\nnox > Session tests-3.11 failed.\n", ADD_FIX),
        Row("uv", "setup-uv + `uv sync` + `uv run pytest`", "uv.yml", "python", "Run tests",
            {**PYTHON_BASE, ".python-version": "3.11\n",
             "pyproject.toml": ('[project]\nname = "calc"\nversion = "0.1.0"\nrequires-python = ">=3.11"\n'
                                'dependencies = []\n\n[dependency-groups]\ndev = ["pytest>=8"]\n')},
            {"calc.py": BROKEN_CALC}, pytest_out("uv", "3.11.11"), ADD_FIX,
            needs=["version file is not read"]),
        Row("poetry", "poetry: `pip install poetry` + `poetry install`", "poetry.yml", "test", "Run tests",
            {**PYTHON_BASE, "pyproject.toml": POETRY_PYPROJECT},
            {"calc.py": BROKEN_CALC}, pytest_out("poetry", "3.11.11"), ADD_FIX),
        Row("poetry-pipx", "poetry as GitHub's docs install it: pipx, setup-python `cache: poetry`",
            "poetry-pipx.yml", "test", "Run poetry run pytest",
            {**PYTHON_BASE, "pyproject.toml": POETRY_PYPROJECT}, {"calc.py": BROKEN_CALC},
            pytest_out("poetry-pipx", "3.11.11"), ADD_FIX),
        Row("install-poetry", "snok/install-poetry, in-project venv activated by the test step", "install-poetry.yml",
            "test", "Run tests", {**PYTHON_BASE, "pyproject.toml": POETRY_PYPROJECT}, {"calc.py": BROKEN_CALC},
            pytest_out("install-poetry", "3.11.11"), ADD_FIX),
        Row("pre-commit", "pre-commit/action with a local pytest hook", "pre-commit.yml", "pre-commit",
            "Run pre-commit/action@v3.0.1",
            {**PYTHON_BASE, ".pre-commit-config.yaml": (
                "repos:\n  - repo: local\n    hooks:\n      - id: pytest\n        name: pytest\n"
                "        entry: python -m pytest -q\n        language: system\n        pass_filenames: false\n"
                "        always_run: true\n")},
            {"calc.py": BROKEN_CALC},
            "pytest...................................................................Failed\n- hook id: pytest\n"
            "- exit code: 1\n\n" + pytest_out("pre-commit", "3.12.8"), ADD_FIX),
        Row("node", "Node.js: `npm ci` + jest, node version matrix", "node.yml", "build (20.x)", "Run npm test",
            {"package.json": json.dumps({"name": "corpus-jest", "version": "1.0.0", "private": True,
                                         "scripts": {"test": "jest"}, "devDependencies": {"jest": "29.7.0"}},
                                        indent=2) + "\n",
             "package-lock.json": jest_lock, "sum.js": "function sum(a, b) {\n  return a + b;\n}\nmodule.exports = sum;\n",
             "sum.test.js": ("const sum = require('./sum');\n\ndescribe('sum', () => {\n"
                             "  test('adds 1 + 2 to equal 3', () => {\n    expect(sum(1, 2)).toBe(3);\n  });\n});\n"),
             "README.md": "# sum\n"},
            {"sum.js": "function sum(a, b) {\n  return a - b;\n}\nmodule.exports = sum;\n"}, JEST_OUT,
            ("sum.js", "return a - b;", "return a + b;"), needs=["node 18"]),
        Row("go", "Go: setup-go + go build + go test", "go.yml", "build", "Test",
            {"go.mod": "module example.com/calc\n\ngo 1.20\n",
             "calc.go": "package calc\n\nfunc Add(a, b int) int {\n\treturn a + b\n}\n",
             "calc_test.go": ('package calc\n\nimport "testing"\n\nfunc TestAdd(t *testing.T) {\n'
                              '\tif got := Add(2, 3); got != 5 {\n\t\tt.Errorf("Add(2, 3) = %d; want 5", got)\n\t}\n}\n')},
            {"calc.go": "package calc\n\nfunc Add(a, b int) int {\n\treturn a - b\n}\n"}, GO_OUT,
            expect="environment", needs=["go 1.20"]),
        Row("rust", "Rust: dtolnay/rust-toolchain + cargo build + cargo test", "rust.yml", "build", "Run tests",
            {"Cargo.toml": '[package]\nname = "calc"\nversion = "0.1.0"\nedition = "2021"\n',
             "src/lib.rs": ("pub fn add(a: i64, b: i64) -> i64 {\n    a + b\n}\n\n#[cfg(test)]\nmod tests {\n"
                            "    #[test]\n    fn adds() {\n        assert_eq!(super::add(2, 3), 5);\n    }\n}\n")},
            {"src/lib.rs": ("pub fn add(a: i64, b: i64) -> i64 {\n    a - b\n}\n\n#[cfg(test)]\nmod tests {\n"
                            "    #[test]\n    fn adds() {\n        assert_eq!(super::add(2, 3), 5);\n    }\n}\n")},
            RUST_OUT, expect="environment", needs=["rust stable"]),
        Row("postgres", "a job with `services: postgres`", "postgres.yml", "container-job", "Run tests",
            {**PYTHON_BASE, "requirements.txt": "pytest\n",
             "tests/test_db.py": ("import os\nimport socket\nfrom urllib.parse import urlparse\n\nfrom calc import add\n\n\n"
                                  "def test_sum_is_stored():\n    url = urlparse(os.environ['DATABASE_URL'])\n"
                                  "    with socket.create_connection((url.hostname, url.port), timeout=2):\n"
                                  "        assert add(2, 3) == 5\n")},
            {"calc.py": BROKEN_CALC}, POSTGRES_OUT, ADD_FIX, expect="environment", needs=["postgres"]),
    ]
