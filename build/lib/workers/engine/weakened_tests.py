"""Patches that make a build green by checking less: the test runner's configuration changed, or a
skip / xfail / focus marker added. Pure functions of the patch and of the files' texts; what the
tests actually ran before and after a patch is compared in workers/engine/suite_results.py.

A repository allows such patches with `repair.allow_test_changes: true` in `.github/qwen.yml`.
"""

from __future__ import annotations

import fnmatch
import json
import re
import tomllib
from dataclasses import dataclass

from unidiff import PatchSet
from unidiff.errors import UnidiffParseError

ALLOW_HINT = "(allow with repair.allow_test_changes)"

# Files that only configure how tests run: any change to them is a change to what the tests check.
TEST_CONFIG_FILES = ("pytest.ini", ".pytest.ini", "pytest.toml", ".pytest.toml", "tox.ini", "conftest.py",
                     "noxfile.py", ".coveragerc", "jest.config.*", "vitest.config.*", "vitest.workspace.*",
                     ".mocharc*", "karma.conf.*", "playwright.config.*", "phpunit.xml", "phpunit.xml.dist",
                     ".rspec")
# Files where only a part configures the tests: (file name, what `test_settings` reads from it).
SHARED_CONFIG_FILES = ("pyproject.toml", "setup.cfg", "package.json")
_PYPROJECT_TABLES = ("pytest", "tox")  # [tool.pytest…], [tool.tox…]
_SETUP_CFG_SECTIONS = ("tool:pytest",)
_PACKAGE_JSON_KEYS = ("jest", "mocha", "vitest", "ava")
DOC_SUFFIXES = (".md", ".rst", ".txt", ".adoc")

# Markers that turn a test off, expect it to fail, or run only some tests. Each alternative starts
# with a literal, so a line is searched in linear time.
SKIP_MARKER = re.compile(
    r"@pytest\.mark\.(?:skip|skipif|xfail)\b"
    r"|\bpytest\.(?:skip|xfail|importorskip)\s*\("
    r"|@(?:unittest\.)?(?:skip|skipIf|skipUnless|expectedFailure)\b"
    r"|\.skipTest\s*\(|\bSkipTest\b|\b__test__\s*=\s*False\b|\bcollect_ignore(?:_glob)?\b"
    r"|\b(?:it|test|describe|suite|context)\.(?:skip|todo|only|failing)\b|\b(?:xit|xtest|xdescribe|fit|fdescribe)\s*\("
    r"|\.skipIf\s*\(|\bt\.Skip(?:f|Now)?\s*\(|#\[ignore\b|@(?:Disabled|Ignore)\b|\bmarkTestSkipped\s*\("
)


_PYTHON_DEF = re.compile(r"^(\s*)(?:async\s+)?(?:def|class)\s+(\w+)")


@dataclass(frozen=True)
class AddedMarker:
    path: str
    line: int  # in the new file
    text: str
    test: str = ""  # the Python function or class it marks, when the patch shows it

    def describe(self) -> str:
        where = f"{self.path}::{self.test}" if self.test else self.path
        return f"{where} line {self.line}: `{self.text}`"


def _name(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def is_test_config(path: str) -> bool:
    """Whether the file at ``path`` (any directory) only configures how tests run."""
    return any(fnmatch.fnmatchcase(_name(path), pattern) for pattern in TEST_CONFIG_FILES)


def is_shared_config(path: str) -> bool:
    """Whether part of the file at ``path`` configures the tests (see `test_settings`)."""
    return _name(path) in SHARED_CONFIG_FILES


def added_markers(patch: str) -> list[AddedMarker]:
    """Skip, xfail and focus markers the patch adds: per file, the added lines with one, when the
    patch adds more of them than it removes (moving a marked test is not adding a marker)."""
    try:
        files = PatchSet(patch.splitlines(keepends=True))
    except (UnidiffParseError, ValueError):
        return [AddedMarker("(the patch)", 0, "a patch that cannot be read")]
    found: list[AddedMarker] = []
    for patched in files:
        path = (patched.target_file or "").removeprefix("b/")
        if path.endswith(DOC_SUFFIXES):
            continue
        added: list[AddedMarker] = []
        removed = 0
        for hunk in patched:
            lines = [line for line in hunk if not line.is_removed]  # the new file's lines
            for line in hunk:
                for _ in SKIP_MARKER.finditer(line.value):
                    if line.is_added:
                        at = next(i for i, shown in enumerate(lines) if shown is line)
                        test = _marked_test(lines, at) if path.endswith(".py") else ""
                        added.append(AddedMarker(path, line.target_line_no or 0, line.value.strip()[:120], test))
                    elif line.is_removed:
                        removed += 1
        if len(added) > removed:
            found.extend(added[: len(added) - removed])
    return found


def _marked_test(lines: list, at: int) -> str:
    """The function or class a marker applies to: the next definition after a decorator, else the
    definition enclosing the line; "" at module level or when the hunk does not show it."""
    text = lines[at].value
    indent = len(text) - len(text.lstrip())
    if text.lstrip().startswith("@"):
        for line in lines[at + 1:at + 12]:
            found = _PYTHON_DEF.match(line.value)
            if found:
                return found.group(2)
        return ""
    for line in reversed(lines[max(0, at - 200):at]):
        found = _PYTHON_DEF.match(line.value)
        if found and len(found.group(1)) < indent:
            return found.group(2)
    return ""


def check_test_changes(patch: str) -> list[str]:
    """Why the patch weakens the tests, judged from the patch alone: the reasons, or []."""
    reasons = []
    for change in _changed_paths(patch):
        if is_test_config(change):
            reasons.append(f"changes the test runner's configuration ({change}) {ALLOW_HINT}")
    markers = added_markers(patch)
    if markers:
        shown = "; ".join(m.describe() for m in markers[:3])
        more = f" and {len(markers) - 3} more" if len(markers) > 3 else ""
        noun = "marker" if len(markers) == 1 else "markers"
        reasons.append(f"adds a skip/xfail {noun}: {shown}{more} {ALLOW_HINT}")
    return reasons


def _changed_paths(patch: str) -> list[str]:
    try:
        files = PatchSet(patch.splitlines(keepends=True))
    except (UnidiffParseError, ValueError):
        return []
    paths = []
    for patched in files:
        for name in (patched.source_file, patched.target_file):
            path = (name or "").removeprefix("a/").removeprefix("b/")
            if path and path != "/dev/null" and path not in paths:
                paths.append(path)
    return paths


def test_settings(path: str, text: str | None) -> object:
    """The part of a shared configuration file that configures the tests, as a comparable value:
    `[tool.pytest…]` and `[tool.tox]` of pyproject.toml, `[tool:pytest]` of setup.cfg, the
    test-runner keys of package.json. A file that does not parse counts as its whole text; a file
    that is not there (None) as an empty one."""
    name = _name(path)
    if text is None:
        text = "{}" if name == "package.json" else ""
    try:
        if name == "pyproject.toml":
            tool = tomllib.loads(text).get("tool", {})
            return {key: tool.get(key) for key in _PYPROJECT_TABLES} if isinstance(tool, dict) else text
        if name == "package.json":
            data = json.loads(text)
            if not isinstance(data, dict):
                return text
            scripts = data.get("scripts") if isinstance(data.get("scripts"), dict) else {}
            return {**{key: data.get(key) for key in _PACKAGE_JSON_KEYS}, "scripts.test": scripts.get("test")}
    except ValueError:  # tomllib.TOMLDecodeError and json.JSONDecodeError are ValueErrors
        return text
    if name == "setup.cfg":
        return _ini_sections(text, _SETUP_CFG_SECTIONS)
    return text


test_settings.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


def _ini_sections(text: str, wanted: tuple[str, ...]) -> dict[str, list[str]]:
    """The lines of the wanted `[sections]` of an INI file, read line by line (configparser's
    regexes backtrack on long lines, and this text comes from the pull request)."""
    sections: dict[str, list[str]] = {}
    current: str | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            current = stripped[1:-1].strip()
            continue
        if current in wanted and stripped and not stripped.startswith(("#", ";")):
            sections.setdefault(current, []).append(stripped)
    return sections


def changes_test_settings(path: str, before: str | None, after: str | None) -> str | None:
    """The reason, when the patch changed the test settings inside a shared configuration file."""
    if test_settings(path, before) == test_settings(path, after):
        return None
    part = {"pyproject.toml": "[tool.pytest…]/[tool.tox]", "setup.cfg": "[tool:pytest]",
            "package.json": "its test runner settings"}[_name(path)]
    return f"changes the test runner's configuration ({part} in {path}) {ALLOW_HINT}"
