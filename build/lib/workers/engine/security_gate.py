"""The security gate every candidate passes before it can be delivered: what it changes is scanned —
bandit on the changed Python files, and semgrep with the operator's rules (`QWENFIX_SEMGREP_RULES`,
a local directory; nothing is fetched) when semgrep is installed — on the base and on the patched
contents. A finding the candidate adds at high severity rejects it, named in the job's report; lower
ones are listed in the delivered post.

The contents come from git's objects (the base commit, and the tree the patch makes of it), are
written by the worker into a private temporary directory and only parsed there: no repository code
runs on the host, and nothing a sandbox wrote is read.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from bandit.core.config import BanditConfig
from bandit.core.manager import BanditManager

log = logging.getLogger(__name__)

SCAN_TIMEOUT_S = 120
_SEMGREP_SEVERITY = {"ERROR": "high", "WARNING": "medium", "INFO": "low"}


@dataclass(frozen=True)
class Finding:
    tool: str  # bandit | semgrep
    rule: str  # B602, or the semgrep rule's id
    name: str
    severity: str  # high | medium | low
    path: str
    line: int
    message: str
    code: str  # the flagged line, stripped: what base and patched findings are compared on

    def describe(self) -> str:
        return f"{self.rule} {self.name} ({self.severity} severity) at {self.path}:{self.line}: {self.message}"


@dataclass(frozen=True)
class GateResult:
    added: list[Finding]  # findings of the patched files that the base does not have

    @property
    def blocking(self) -> list[Finding]:
        return [f for f in self.added if f.severity == "high"]

    @property
    def notes(self) -> list[Finding]:
        return [f for f in self.added if f.severity != "high"]


def scan(base: dict[str, str], patched: dict[str, str], semgrep_rules: Path | None = None) -> GateResult:
    """Findings the patched files add over the base ones (`path → text`; a new file has no base)."""
    with tempfile.TemporaryDirectory(prefix="qwenfix-gate-") as tmp:
        roots = {"base": Path(tmp) / "base", "patched": Path(tmp) / "patched"}
        for side, files in (("base", base), ("patched", patched)):
            for path, text in files.items():
                if not _safe(path):
                    continue
                target = roots[side] / path
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text, encoding="utf-8", errors="surrogateescape")
            roots[side].mkdir(exist_ok=True)
        found = {side: _bandit(root) for side, root in roots.items()}
        if semgrep_rules is not None and shutil.which("semgrep"):
            for side, root in roots.items():
                found[side] += _semgrep(root, semgrep_rules)
    return GateResult(new_findings(found["base"], found["patched"]))


def new_findings(before: list[Finding], after: list[Finding]) -> list[Finding]:
    """Findings of `after` beyond those `before` has on the same code: a flagged line that only moved,
    or that the candidate left alone, is not new."""
    left = Counter((f.tool, f.rule, f.path, f.code) for f in before)
    added = []
    for finding in sorted(after, key=lambda f: (f.path, f.line, f.rule)):
        key = (finding.tool, finding.rule, finding.path, finding.code)
        if left[key]:
            left[key] -= 1
        else:
            added.append(finding)
    return added


def _safe(path: str) -> bool:
    parts = Path(path).parts
    return bool(parts) and not Path(path).is_absolute() and ".." not in parts and ".git" not in parts


def _bandit(root: Path) -> list[Finding]:
    """bandit in this process (it only parses the files' syntax trees), its default profile, and
    `# nosec` comments ignored: the candidate wrote them."""
    if not any(root.rglob("*.py")):
        return []
    manager = BanditManager(BanditConfig(), "file", quiet=True, ignore_nosec=True)
    manager.discover_files([str(root)], recursive=True)
    manager.run_tests()
    out = []
    for issue in manager.get_issue_list():
        flagged = next((ln for ln in issue.get_code(0).splitlines() if ln.split(" ", 1)[0] == str(issue.lineno)), "")
        out.append(Finding("bandit", issue.test_id, issue.test, str(issue.severity).lower(),
                           Path(issue.fname).relative_to(root).as_posix(), int(issue.lineno), issue.text,
                           flagged.split(" ", 1)[1].strip() if " " in flagged else ""))
    return out


def _env(root: Path) -> dict[str, str]:
    """For semgrep, none of the worker's environment (it holds credentials): a path and a scratch home."""
    return {"PATH": os.environ.get("PATH", os.defpath), "HOME": str(root.parent), "LC_ALL": "C.UTF-8"}


def _semgrep(root: Path, rules: Path) -> list[Finding]:
    """The operator's rules only, offline: no registry, no metrics, no version check."""
    argv = ["semgrep", "scan", "--config", str(rules), "--json", "--quiet", "--metrics=off",
            "--disable-version-check", "--disable-nosem", "--no-git-ignore", "."]
    env = {**_env(root), "SEMGREP_SEND_METRICS": "off", "SEMGREP_ENABLE_VERSION_CHECK": "0"}
    try:
        done = subprocess.run(argv, cwd=root, capture_output=True, text=True, timeout=SCAN_TIMEOUT_S, env=env)
        report = json.loads(done.stdout)
    except (OSError, subprocess.TimeoutExpired, ValueError) as exc:
        log.warning("semgrep could not scan: %s", exc)
        return []
    out = []
    for item in report.get("results", []):
        extra = item.get("extra", {})
        code = str(extra.get("lines", "")).strip().splitlines()
        out.append(Finding("semgrep", item.get("check_id", "semgrep").rsplit(".", 1)[-1], "",
                           _SEMGREP_SEVERITY.get(str(extra.get("severity", "")).upper(), "low"),
                           str(item.get("path", "")).removeprefix("./"), int(item.get("start", {}).get("line", 0)),
                           str(extra.get("message", "")).strip()[:300], code[0].strip() if code else ""))
    return out
