"""Did the sandbox reproduce CI's failure? The same failing tests (pytest node ids, unittest, jest,
vitest, go test, cargo test names) or, for lint, type and compile failures, the same error lines:
`exact`, `partial` (some in common) or `no`. A reproduction that fails differently because the
sandbox lacks something — a command, a package, the network, a service container the workflow
starts — is a failure of the environment: it is named, with the setting that provides it, and no
model is asked to "fix" it."""

from __future__ import annotations

import re
from dataclasses import dataclass

from workers.failure.log import clean_log
from workers.failure.report import signature_items

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")

TOOLCHAIN_SETTING = ("map an image that has it with QWENFIX_SANDBOX_TOOLCHAIN_IMAGES, or name one with "
                     "`sandbox.image` in .github/qwen.yml")
PACKAGE_SETTING = ("give the setup phase your packages: QWENFIX_SANDBOX_PACKAGE_CACHE (a read-only wheel and "
                   "npm cache) or QWENFIX_SANDBOX_PIP_INDEX_URL / QWENFIX_SANDBOX_NPM_REGISTRY; or install "
                   "them with `repair.setup`, or use an image that has them (`sandbox.image`)")
SCRIPT_SETTING = "fix the path in `repair.setup` / `repair.command` (.github/qwen.yml) or in the workflow"
SERVICE_SETTING = ("qwenfix starts no service containers: set `repair.command` in .github/qwen.yml to tests "
                   "that do not need it, or `sandbox.image` to an image that runs the service itself")


@dataclass(frozen=True)
class Comparison:
    level: str | None  # exact | partial | no; None when CI's log shows nothing to compare with
    expected: tuple[str, ...] = ()  # what failed in CI
    seen: tuple[str, ...] = ()  # what failed here


def _items(text: str) -> set[str]:
    return set(signature_items(clean_log(_ANSI.sub("", text or ""))))


def compare(ci_excerpt: str | None, output: str) -> Comparison:
    """Compare CI's error excerpt with the reproduction's output."""
    expected = _items(ci_excerpt or "")
    if not expected:
        return Comparison(None)
    seen = _items(output)
    kinds = {item.split(":", 1)[0] for item in expected}
    seen_same_kind = {item for item in seen if item.split(":", 1)[0] in kinds}
    if "err" in kinds:  # plain error lines: one of CI's lines showing up here is the same failure
        text = " ".join(_items(output) | {"err:" + _ANSI.sub("", ln) for ln in output.splitlines()})
        common = {item for item in expected if item[4:] and item[4:] in text}
        level = "exact" if common == expected else "partial" if common else "no"
        return Comparison(level, tuple(sorted(expected)), tuple(sorted(seen_same_kind)))
    common = expected & seen_same_kind
    if common and common == expected and seen_same_kind == expected:
        level = "exact"
    elif common:
        level = "partial"
    else:
        level = "no"
    return Comparison(level, tuple(sorted(expected)), tuple(sorted(seen_same_kind)))


_NOT_FOUND = re.compile(
    r"(?:^|\n)(?:[\w/.-]*sh)(?:: line \d+)?:(?: \d+:)? ([\w.+/-]+): (?:command )?not found"
    r"|exec: \"?([\w.+/-]+)\"?: executable file not found"
    r"|qwenfix: could not start command: .*?(?:executable file not found|no such file)")
_NO_MODULE = re.compile(r"ModuleNotFoundError: No module named '([\w.]+)'|ImportError: No module named ([\w.]+)")
_NO_NODE_MODULE = re.compile(r"Cannot find module '([^']+)'|Cannot find package '([^']+)'")
_NETWORK = re.compile(
    r"Could not resolve host|Temporary failure in name resolution|Name or service not known|Network is unreachable"
    r"|getaddrinfo (?:ENOTFOUND|EAI_AGAIN)|Failed to establish a new connection|No matching distribution found"
    r"|Could not find a version that satisfies the requirement|ENETUNREACH|network request to .* failed"
    r"|dial tcp: lookup|failed to download|Couldn't resolve host", re.I)
_SERVICE = re.compile(
    r"Connection refused|ECONNREFUSED|could not connect to server|Can't connect to (?:MySQL|local MySQL)"
    r"|Error 111 connecting|connection to server at .* failed|Cannot assign requested address"
    r"|could not translate host name|Name or service not known", re.I)
_TOOLCHAINS = {"python": "python", "python3": "python", "pip": "python", "node": "node", "npm": "node",
               "npx": "node", "yarn": "node", "pnpm": "node", "go": "go", "cargo": "rust", "rustc": "rust",
               "java": "java", "mvn": "java", "gradle": "java", "./gradlew": "java"}


def environment_problem(output: str, exit_code: int, ci_excerpt: str | None = None,
                        services: tuple[str, ...] = (), reproduced: bool = False) -> str | None:
    """What the sandbox lacks that CI had, with the setting that provides it; None when the output
    shows no such cause. Causes CI's own log shows too (a test that imports a removed module) are
    the failure itself, not the environment's. When the same tests failed (`reproduced`), only a
    cause seen in the output counts; otherwise a workflow's service containers are the presumed one."""
    text = _ANSI.sub("", output or "")
    ci = ci_excerpt or ""
    m = _NOT_FOUND.search(text)
    if m or exit_code == 127:
        command = next((g for g in (m.groups() if m else ()) if g), None)
        if command and command in ci and re.search(rf"{re.escape(command)}: (?:command )?not found", ci):
            return None
        if command and "/" in command and command not in _TOOLCHAINS:
            return f"`{command}`, which is not in the checkout at this commit; {SCRIPT_SETTING}"
        toolchain = _TOOLCHAINS.get(command or "")
        what = f"the command `{command}`" if command else "a command the step runs"
        if toolchain:
            return f"{what} ({toolchain}) is not in the sandbox image; {TOOLCHAIN_SETTING}"
        return f"{what} is not in the sandbox (exit 127); {PACKAGE_SETTING}"
    if services and _SERVICE.search(text) and not _SERVICE.search(ci):
        return f"the service container{'s' if len(services) > 1 else ''} {', '.join(services)} that the workflow " \
               f"starts (`services:`); {SERVICE_SETTING}"
    m = _NO_MODULE.search(text)
    if m:
        module = m.group(1) or m.group(2)
        if module not in ci:
            return f"the Python package that provides `{module}` is not installed; {PACKAGE_SETTING}"
    m = _NO_NODE_MODULE.search(text)
    if m:
        module = m.group(1) or m.group(2)
        if module not in ci:
            return f"the npm package `{module}` is not installed; {PACKAGE_SETTING}"
    if _NETWORK.search(text) and not _NETWORK.search(ci):
        return f"the network (the sandbox has none); {PACKAGE_SETTING}"
    if services and not reproduced:
        return f"the service container{'s' if len(services) > 1 else ''} {', '.join(services)} that the workflow " \
               f"starts (`services:`), presumably; {SERVICE_SETTING}"
    return None
