"""Running git safely: argv only, a clean environment, the token in git's environment for one
command, errors with secrets redacted, and validation of every name or ref that reaches git.

Workspaces: a per-repository mirror cache, fresh worktrees at an exact commit, patches, push.

Everything here runs ``git`` as an argv list (never a shell) with a clean environment: no system
or global configuration, an empty ``HOME`` (so no ``~/.netrc``), no terminal prompts, only the
http/https/file transports, hooks and fsmonitor disabled, and a timeout that kills the whole
process group.

The installation token is handed to git for one command only, as the command-scope config
``http.extraHeader=Authorization: Basic base64("x-access-token:" + token)`` (GitHub's scheme). It
is passed through ``GIT_CONFIG_COUNT``/``GIT_CONFIG_KEY_n``/``GIT_CONFIG_VALUE_n`` - the same
scope as ``git -c`` - rather than on the command line, so it never shows up in ``ps`` output
(``/proc/PID/cmdline`` is world readable, ``/proc/PID/environ`` is not). It is never written to a
config file or a remote URL, and it is redacted from every error message.
"""

from __future__ import annotations

import atexit
import base64
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import urlsplit

from core.logs import redact

DEFAULT_TIMEOUT_S = 600.0  # network operations (clone, fetch, push)
LOCAL_TIMEOUT_S = 300.0  # local operations (worktree add, add -A, diff, apply, commit)
_SHA_RE = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")
_REF_RE = re.compile(r"^refs/[A-Za-z0-9._/-]+$")
_BRANCH_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._/-]{0,199}$")
_SAFE_CONFIG = (
    "core.hooksPath=/dev/null",
    "core.fsmonitor=false",
    "core.quotePath=false",
    "core.askPass=",
    "credential.helper=",
    "commit.gpgSign=false",
    "tag.gpgSign=false",
    "advice.detachedHead=false",
    "init.defaultBranch=main",
    "protocol.version=2",
    "gc.autoDetach=false",
)
_AUTH_FAILURE_MARKERS = (
    "terminal prompts disabled",
    "authentication failed",
    "could not read username",
    "could not read password",
    "requested url returned error: 401",
    "requested url returned error: 403",
    "http 401",
    "http 403",
)


class WorkspaceError(RuntimeError):
    """Base class for everything this module raises (messages never hold a token)."""


class GitCommandError(WorkspaceError):
    def __init__(
        self,
        message: str,
        argv: Sequence[str] = (),
        returncode: int | None = None,
        stderr: str = "",
    ) -> None:
        super().__init__(message)
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr = stderr


class AuthenticationError(GitCommandError):
    """The remote refused the credentials (HTTP 401/403) or asked for some."""


class GitTimeout(GitCommandError):
    """A git command ran past its timeout and was killed."""


class PushRejected(GitCommandError):
    """The remote refused the push (non-fast-forward, protected branch, hook)."""


class CommitNotFound(WorkspaceError):
    """The commit is not on the remote (or not reachable from anything fetched)."""


class PatchApplyError(WorkspaceError):
    """``git apply`` refused the patch; ``details`` holds git's explanation."""

    def __init__(self, message: str, details: str = "") -> None:
        super().__init__(message)
        self.details = details


class NothingToCommit(WorkspaceError):
    """The worktree has no changes against HEAD."""


class InvalidBranchName(WorkspaceError, ValueError):
    """A branch name that git would refuse, or that we refuse to be safe."""


def auth_header(token: str) -> str:
    """GitHub's scheme for git over HTTPS with an installation token."""
    raw = base64.b64encode(f"x-access-token:{token}".encode()).decode("ascii")
    return f"Authorization: Basic {raw}"


_home_lock = threading.Lock()
_home: Path | None = None


def _empty_home() -> Path:
    """An empty directory for HOME, so git and curl read no user config and no ~/.netrc."""
    global _home
    with _home_lock:
        if _home is None or not _home.is_dir() or any(_home.iterdir()):
            _home = Path(tempfile.mkdtemp(prefix="qwenfix-git-home-"))
            os.chmod(_home, 0o500)
        return _home


@atexit.register
def _remove_empty_home() -> None:
    if _home is not None:
        shutil.rmtree(_home, ignore_errors=True)


def _git_env(token: str | None, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH") or os.defpath,
        "HOME": str(_empty_home()),
        "XDG_CONFIG_HOME": str(_empty_home()),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ALLOW_PROTOCOL": "http:https:file",
        "LC_ALL": "C",
        "LANG": "C",
        "TZ": "UTC",
    }
    if extra:
        env.update(extra)
    if token:
        env["GIT_CONFIG_COUNT"] = "1"
        env["GIT_CONFIG_KEY_0"] = "http.extraHeader"
        env["GIT_CONFIG_VALUE_0"] = auth_header(token)
    return env


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def run_git(
    args: Sequence[str],
    *,
    git_dir: Path | None = None,
    work_tree: Path | None = None,
    cwd: Path | None = None,
    token: str | None = None,
    input: bytes | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = LOCAL_TIMEOUT_S,
    check: bool = True,
    what: str | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run one git command (argv list, clean env, timeout, token only for this command)."""
    argv = ["git"]
    for item in _SAFE_CONFIG:
        argv += ["-c", item]
    if git_dir is not None:
        argv.append(f"--git-dir={git_dir}")
    if work_tree is not None:
        argv.append(f"--work-tree={work_tree}")
    argv += list(args)
    full_env = _git_env(token, env)
    shown = redact(" ".join(a for a in argv[1 + 2 * len(_SAFE_CONFIG) :]), [token])
    label = what or f"git {shown}"
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=str(cwd or work_tree or git_dir or _empty_home()),
            env=full_env,
            start_new_session=True,  # so a timeout kills git-remote-http and friends too
        )
    except OSError as exc:  # git missing
        raise GitCommandError(f"{label}: cannot run git: {exc}", [shown]) from None
    try:
        out, err = proc.communicate(input, timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        proc.communicate()
        raise GitTimeout(f"{label}: timed out after {timeout:.0f}s", [shown]) from None
    except BaseException:
        _kill_group(proc)
        proc.wait()
        raise
    result = subprocess.CompletedProcess(argv, proc.returncode, out, err)
    if check and proc.returncode != 0:
        raise command_error(label, shown, proc.returncode, err, token)
    return result


def command_error(label: str, shown: str, code: int, err: bytes, token: str | None) -> GitCommandError:
    text = redact(err.decode("utf-8", errors="replace").strip(), [token])
    tail = "\n".join(text.splitlines()[-20:])
    lower = text.lower()
    if any(marker in lower for marker in _AUTH_FAILURE_MARKERS):
        hint = "no token was sent" if not token else "the token was refused"
        return AuthenticationError(
            f"{label}: authentication failed ({hint}; HTTP 401/403). git said: {tail}",
            [shown],
            code,
            text,
        )
    return GitCommandError(f"{label}: exit {code}: {tail}", [shown], code, text)


def stdout_text(result: subprocess.CompletedProcess[bytes]) -> str:
    return result.stdout.decode("utf-8", errors="replace").strip()


def validate_branch_name(name: str) -> str:
    """Return ``name`` if it is a safe branch name, else raise :class:`InvalidBranchName`.

    Conservative: ``[A-Za-z0-9_][A-Za-z0-9._/-]*`` (so never a leading '-'), no '..', '//', '/.',
    '.lock' components, no 'refs/' prefix, not 'HEAD'; and ``git check-ref-format --branch``
    must accept it."""
    if not isinstance(name, str) or not _BRANCH_RE.match(name):
        raise InvalidBranchName(f"invalid branch name {name!r}")
    bad = (
        ".." in name
        or "//" in name
        or "/." in name
        or name.endswith(("/", ".", ".lock"))
        or ".lock/" in name
        or name.startswith("refs/")
        or name == "HEAD"
    )
    if bad:
        raise InvalidBranchName(f"invalid branch name {name!r}")
    result = run_git(["check-ref-format", "--branch", name], check=False, timeout=30)
    if result.returncode != 0 or stdout_text(result) != name:
        raise InvalidBranchName(f"invalid branch name {name!r}")
    return name


def check_sha(sha: str) -> str:
    if not isinstance(sha, str) or not _SHA_RE.match(sha.lower()):
        raise ValueError(f"expected a full commit sha, got {sha!r}")
    return sha.lower()


def check_ref(ref: str) -> str:
    if not _REF_RE.match(ref) or ".." in ref or "//" in ref or ref.endswith((".lock", "/")):
        raise ValueError(f"invalid ref to fetch {ref!r} (expected e.g. 'refs/pull/7/head')")
    return ref


def check_remote_url(url: str) -> str:
    if not isinstance(url, str) or not url or url.startswith("-") or "::" in url:
        raise ValueError(f"unsupported remote URL {redact(str(url))!r}")
    if any(ch.isspace() or ord(ch) < 32 for ch in url):
        raise ValueError(f"unsupported remote URL {redact(url)!r}")
    if url.startswith("/"):
        return url
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https", "file"):
        raise ValueError(f"unsupported remote URL scheme in {redact(url)!r}")
    if "@" in parts.netloc:
        raise ValueError("credentials in the remote URL are refused; pass the token separately")
    return url
