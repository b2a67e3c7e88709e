"""Workspaces: a per-repository mirror cache, fresh worktrees at an exact commit, patches, push.

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

Layout of a cache root::

    root/
      owner__repo.git/          bare mirror (branches, tags, requested refs/pull/N/head)
        worktrees/owner__repo.N/  git's metadata of worktree slot N (index, HEAD)
        qwenfix-last-used       LRU stamp (mtime)
      owner__repo.lock          flock: exclusive while the mirror is created or fetched
      owner__repo.use           flock: shared while a job uses the mirror, exclusive to evict
    worktree_dir/               (default root/worktrees; the data dir's worktrees/ for jobs)
      owner__repo.N/            worktree slot N: a detached checkout, kept between jobs
      owner__repo.N.lock        flock: exclusive while a job holds slot N

Worktrees are ``git worktree add --detach`` checkouts, reset to a pristine state (``reset --hard``
+ ``clean -ffdx``) whenever a slot is handed out again. The worker always calls git on them with
an explicit ``--git-dir``/``--work-tree`` remembered at creation, never by discovering the ``.git`` file inside the worktree: that file is
writable by the sandboxed code and could otherwise point git (which holds the token when
pushing) at an attacker's configuration.
"""

from __future__ import annotations

import atexit
import base64
import errno
import fcntl
import os
import re
import shutil
import signal
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from unidiff import PatchSet

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "AuthenticationError",
    "CommitNotFound",
    "FileChange",
    "GitCommandError",
    "GitTimeout",
    "Hunk",
    "InvalidBranchName",
    "MirrorCache",
    "NothingToCommit",
    "PatchApplyError",
    "PushRejected",
    "WorkspaceError",
    "Worktree",
    "apply_patch",
    "auth_header",
    "commit_and_push",
    "export_patch",
    "mirror_key",
    "patch_files",
    "redact",
    "validate_branch_name",
]

DEFAULT_TIMEOUT_S = 600.0  # network operations (clone, fetch, push)
LOCAL_TIMEOUT_S = 300.0  # local operations (worktree add, add -A, diff, apply, commit)
LOCK_TIMEOUT_S = 1800.0  # waiting for another job's fetch of the same repository
SPARE_WORKTREES = 4  # worktree slots kept per repository between jobs

_STAMP = "qwenfix-last-used"
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


# --------------------------------------------------------------------------------------------
# errors and redaction
# --------------------------------------------------------------------------------------------


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


def _secret_forms(token: str | None) -> list[str]:
    if not token:
        return []
    forms = [
        token,
        base64.b64encode(f"x-access-token:{token}".encode()).decode("ascii"),
        base64.b64encode(token.encode()).decode("ascii"),
    ]
    return sorted({f for f in forms if f}, key=len, reverse=True)


_AUTH_RE = re.compile(r"(?i)(authorization:\s*(?:basic|bearer|token)\s+)\S+")
_USERINFO_RE = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/@\s]+@")


def redact(text: str, *secrets: str | None) -> str:
    """``text`` with every token (raw and base64 forms), Authorization value and URL userinfo
    replaced by ``***``."""
    for secret in secrets:
        for form in _secret_forms(secret):
            text = text.replace(form, "***")
    text = _AUTH_RE.sub(r"\1***", text)
    return _USERINFO_RE.sub(r"\1***@", text)


# --------------------------------------------------------------------------------------------
# running git
# --------------------------------------------------------------------------------------------

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


def _git(
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
    shown = redact(" ".join(a for a in argv[1 + 2 * len(_SAFE_CONFIG) :]), token)
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
        raise _error(label, shown, proc.returncode, err, token)
    return result


def _error(label: str, shown: str, code: int, err: bytes, token: str | None) -> GitCommandError:
    text = redact(err.decode("utf-8", errors="replace").strip(), token)
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


def _out(result: subprocess.CompletedProcess[bytes]) -> str:
    return result.stdout.decode("utf-8", errors="replace").strip()


# --------------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------------


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
    result = _git(["check-ref-format", "--branch", name], check=False, timeout=30)
    if result.returncode != 0 or _out(result) != name:
        raise InvalidBranchName(f"invalid branch name {name!r}")
    return name


def _check_sha(sha: str) -> str:
    if not isinstance(sha, str) or not _SHA_RE.match(sha.lower()):
        raise ValueError(f"expected a full commit sha, got {sha!r}")
    return sha.lower()


def _check_ref(ref: str) -> str:
    if not _REF_RE.match(ref) or ".." in ref or "//" in ref or ref.endswith((".lock", "/")):
        raise ValueError(f"invalid ref to fetch {ref!r} (expected e.g. 'refs/pull/7/head')")
    return ref


def _check_remote_url(url: str) -> str:
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


def _sanitize(part: str) -> str:
    part = re.sub(r"[^A-Za-z0-9._-]", "_", part).strip("._-")
    return part.lower() or "_"


def mirror_key(remote_url: str) -> str:
    """'owner__repo' for https://host/owner/repo(.git), used as the mirror's directory name."""
    path = remote_url if remote_url.startswith("/") else urlsplit(remote_url).path
    parts = [p for p in path.rstrip("/").split("/") if p]
    if not parts:
        raise ValueError(f"cannot derive a repository name from {redact(remote_url)!r}")
    name = parts[-1][:-4] if parts[-1].endswith(".git") else parts[-1]
    owner = parts[-2] if len(parts) >= 2 else "_"
    return f"{_sanitize(owner)}__{_sanitize(name)}"


# --------------------------------------------------------------------------------------------
# file locks
# --------------------------------------------------------------------------------------------


class _Flock:
    """An flock on its own open file description (so threads of one process exclude each other
    too)."""

    def __init__(self, path: Path, exclusive: bool) -> None:
        self.path = path
        self.exclusive = exclusive
        self.fd: int | None = None

    def acquire(self, timeout: float | None = LOCK_TIMEOUT_S) -> bool:
        """Block up to ``timeout`` seconds (None: forever; 0: try once). False when not taken."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        mode = fcntl.LOCK_EX if self.exclusive else fcntl.LOCK_SH
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.005
        while True:
            try:
                fcntl.flock(fd, mode | fcntl.LOCK_NB)
                self.fd = fd
                return True
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    os.close(fd)
                    raise
            if deadline is not None and time.monotonic() >= deadline:
                os.close(fd)
                return False
            time.sleep(delay)
            delay = min(delay * 2, 0.2)

    def release(self) -> None:
        if self.fd is not None:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_UN)
            finally:
                os.close(self.fd)
                self.fd = None


@contextmanager
def _locked(path: Path, exclusive: bool, timeout: float | None) -> Iterator[None]:
    lock = _Flock(path, exclusive)
    if not lock.acquire(timeout):
        raise WorkspaceError(f"timed out after {timeout}s waiting for lock {path.name}")
    try:
        yield
    finally:
        lock.release()


# --------------------------------------------------------------------------------------------
# worktrees
# --------------------------------------------------------------------------------------------

_live_lock = threading.Lock()
_live: dict[str, Worktree] = {}


def _rmtree(path: Path) -> None:
    """Remove a tree even if the sandbox left read-only files or directories behind."""

    def onerror(func: Any, p: str, exc_info: Any) -> None:
        try:
            parent = os.path.dirname(p)
            os.chmod(parent, os.stat(parent).st_mode | stat.S_IWUSR | stat.S_IXUSR | stat.S_IRUSR)
            if os.path.isdir(p) and not os.path.islink(p):
                os.chmod(p, os.stat(p).st_mode | stat.S_IWUSR | stat.S_IXUSR | stat.S_IRUSR)
            func(p)
        except FileNotFoundError:
            pass

    if path.is_symlink():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path, onerror=onerror)


@dataclass(eq=False)
class Worktree:
    """A checkout of ``base_sha`` (detached HEAD) at ``path``, exactly as git has it: tracked files
    at that commit and nothing else.

    ``git_dir`` is git's private metadata for this worktree inside the mirror (index, HEAD), out
    of the sandbox's reach under ``path``. Use as a context manager, or call :meth:`release`
    (idempotent) when done."""

    path: Path
    base_sha: str
    git_dir: Path | None = None
    _release: Any = field(default=None, repr=False)
    _released: bool = field(default=False, repr=False)

    def __enter__(self) -> Worktree:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    @property
    def released(self) -> bool:
        return self._released

    def head(self) -> str:
        return _out(_git(["rev-parse", "HEAD"], git_dir=self.git_dir, work_tree=self.path))

    def reset(self, sha: str | None = None) -> None:
        """Back to a pristine checkout of ``sha`` (default: ``base_sha``): every change, new file,
        ignored file and nested repository is gone. Raises WorkspaceError when that fails."""
        if self._released:
            raise WorkspaceError(f"worktree {self.path} was released")
        sha = _check_sha(sha or self.base_sha)
        if self.git_dir is None or not _reset_worktree(self.git_dir, self.path, sha):
            raise WorkspaceError(f"could not reset the worktree at {self.path}")
        self.base_sha = sha

    def release(self) -> None:
        """Done with it: the slot goes back to the cache (see MirrorCache) for the next job."""
        if self._released:
            return
        self._released = True
        with _live_lock:
            _live.pop(str(self.path), None)
        release, self._release = self._release, None
        if release is not None:
            release()


def _reset_worktree(git_dir: Path, path: Path, sha: str) -> bool:
    """Make the slot at ``path`` a pristine checkout of ``sha``; False when it is not a healthy
    worktree of ``git_dir`` (then the caller rebuilds it).

    The sandbox could have written anything there, so nothing in it is trusted: the ``.git``
    pointer is rewritten, git is told where its metadata is (which lives outside the sandbox's
    reach, in the mirror), ``reset --hard`` rewrites every tracked file whose stat data changed
    (a sandbox cannot forge ctime) and ``clean -ffdx`` removes everything untracked."""
    try:
        if not path.is_dir() or path.is_symlink():
            return False
        if Path((git_dir / "gitdir").read_text().strip()) != path / ".git":
            return False
        pointer = path / ".git"
        if pointer.is_dir() and not pointer.is_symlink():
            _rmtree(pointer)
        elif pointer.exists() or pointer.is_symlink():
            pointer.unlink()
        fd = os.open(pointer, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "w") as f:
            f.write(f"gitdir: {git_dir}\n")
        where = {"git_dir": git_dir, "work_tree": path, "cwd": path}
        _git(["-c", "checkout.workers=0", "reset", "--hard", "--quiet", sha], **where)
        _git(["clean", "-ffdxq"], **where)
        return True
    except (OSError, WorkspaceError):
        return False


@atexit.register
def _remove_live_worktrees() -> None:
    with _live_lock:
        live = list(_live.values())
    for wt in live:
        try:
            wt.release()
        except Exception:  # pragma: no cover - best effort at interpreter exit
            pass


def _resolve(worktree: Worktree | Path | str) -> tuple[Path | None, Path]:
    """(git_dir, work_tree) for a Worktree, a path of a live Worktree, or (None, path) for a
    plain local checkout that the caller trusts (git discovers its repository)."""
    if isinstance(worktree, Worktree):
        if worktree.released:
            raise WorkspaceError(f"worktree {worktree.path} was released")
        return worktree.git_dir, worktree.path
    path = Path(worktree)
    with _live_lock:
        live = _live.get(str(path)) or _live.get(str(path.resolve()))
    if live is not None:
        return live.git_dir, live.path
    return None, path


# --------------------------------------------------------------------------------------------
# the mirror cache
# --------------------------------------------------------------------------------------------


class MirrorCache:
    """One bare mirror per repository under ``root``, worktrees from it, LRU eviction.

    Worktrees live in numbered slots, ``worktree_dir/<key>.<n>``, each held through an exclusive
    flock on ``<key>.<n>.lock`` while in use. A released slot keeps its files, so the next job on
    the repository only rewrites what differs between the two commits instead of every file
    (a 5,000-file checkout drops from seconds to tens of milliseconds); the next checkout resets
    it to a pristine state first. Slots beyond ``spare_worktrees`` are deleted on release. A slot
    whose worker crashed is simply free (the kernel dropped its flock) and gets reset and reused.

    Safe for concurrent jobs in threads and processes: creating or fetching a mirror holds an
    exclusive flock on ``<key>.lock``; every job that uses a mirror (from checkout to
    ``Worktree.release()``) holds a shared flock on ``<key>.use``; eviction deletes a mirror and
    its slots only when it can take both exclusively without waiting."""

    def __init__(
        self,
        root: Path,
        disk_budget_bytes: int,
        *,
        worktree_dir: Path | None = None,
        spare_worktrees: int = SPARE_WORKTREES,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        lock_timeout_s: float = LOCK_TIMEOUT_S,
    ) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.disk_budget_bytes = int(disk_budget_bytes)
        self.worktree_dir = Path(worktree_dir).resolve() if worktree_dir else self.root / "worktrees"
        self.worktree_dir.mkdir(parents=True, exist_ok=True)
        self.spare_worktrees = spare_worktrees
        self.timeout_s = timeout_s
        self.lock_timeout_s = lock_timeout_s

    # -- paths ----------------------------------------------------------------------------

    def key_for(self, remote_url: str, key: str | None = None) -> str:
        if key is not None:
            parts = [p for p in re.split(r"[/\\]", key) if p]
            if not parts:
                raise ValueError(f"invalid mirror key {key!r}")
            return "__".join(_sanitize(p) for p in parts)
        return mirror_key(remote_url)

    def mirror_path(self, remote_url: str, key: str | None = None) -> Path:
        return self.root / f"{self.key_for(remote_url, key)}.git"

    def _lock_path(self, key: str) -> Path:
        return self.root / f"{key}.lock"

    def _use_path(self, key: str) -> Path:
        return self.root / f"{key}.use"

    # -- public operations ----------------------------------------------------------------

    def checkout(
        self,
        remote_url: str,
        sha: str,
        token: str | None,
        fetch_refs: Iterable[str] = (),
        *,
        key: str | None = None,
    ) -> Worktree:
        """A pristine worktree at exactly ``sha`` (detached HEAD) in a free slot.

        The network is used only when the mirror lacks the commit: a new mirror fetches all
        branches, tags and ``fetch_refs``; an existing one fetches the commit by sha, and falls
        back to branches, tags and ``fetch_refs`` (e.g. 'refs/pull/7/head', which makes a
        fork's commit reachable) when the server refuses that."""
        url = _check_remote_url(remote_url)
        sha = _check_sha(sha)
        refs = [_check_ref(r) for r in fetch_refs]
        k = self.key_for(url, key)
        use = self._acquire_use(k)
        slot: _Flock | None = None
        try:
            mirror = self._ensure(k, url, token, sha, refs)
            slot, number, path = self._claim_slot(k)
            git_dir = self._prepare_slot(mirror, path, sha)

            def release() -> None:
                try:
                    if number >= self.spare_worktrees:
                        self._drop_slot(mirror, path)
                finally:
                    slot.release()
                    use.release()

            wt = Worktree(path=path, base_sha=sha, git_dir=git_dir, _release=release)
            with _live_lock:
                _live[str(path)] = wt
        except BaseException:
            if slot is not None:
                slot.release()
            use.release()
            raise
        self._touch(mirror)
        self.evict(keep=k)
        return wt

    def slots(self, remote_url: str, *, key: str | None = None) -> list[Path]:
        """The worktree slots kept for a repository (in use or spare)."""
        return self._slot_dirs(self.key_for(remote_url, key))

    def _slot_dirs(self, key: str) -> list[Path]:
        return sorted(p for p in self.worktree_dir.glob(f"{key}.*") if p.is_dir() and p.name[len(key) + 1:].isdigit())

    def _claim_slot(self, key: str) -> tuple[_Flock, int, Path]:
        """The lowest-numbered free slot, locked: a spare one is warm, a new number is empty."""
        number = 0
        while True:
            lock = _Flock(self.worktree_dir / f"{key}.{number}.lock", exclusive=True)
            if lock.acquire(timeout=0):
                return lock, number, self.worktree_dir / f"{key}.{number}"
            number += 1

    def _prepare_slot(self, mirror: Path, path: Path, sha: str) -> Path:
        """Reset a warm slot to ``sha``, or build the worktree afresh; returns its git dir."""
        git_dir = mirror / "worktrees" / path.name
        if _reset_worktree(git_dir, path, sha):
            return git_dir
        self._drop_slot(mirror, path)
        # parallel checkout (one worker per CPU): ~1.7x faster for 5,000 files on ext4 here
        add = ["-c", "checkout.workers=0", "worktree", "add", "--force", "--detach", "--quiet"]
        _git([*add, str(path), sha], git_dir=mirror, cwd=self.root, what=f"git worktree add {sha[:12]}")
        pointer = (path / ".git").read_text().strip()
        if not pointer.startswith("gitdir:"):
            raise WorkspaceError(f"unexpected worktree layout at {path}")
        made = Path(pointer.partition(":")[2].strip())
        return made if made.is_absolute() else (path / made).resolve()

    def _drop_slot(self, mirror: Path, path: Path) -> None:
        _rmtree(path)
        _rmtree(mirror / "worktrees" / path.name)  # by hand: `worktree prune` could race a slot being built

    def read_file_at(
        self, remote_url: str, sha: str, path: str, token: str | None, *, key: str | None = None
    ) -> str | None:
        """The text of ``path`` at commit ``sha`` straight from the mirror (no worktree), or None
        when the file does not exist there (or is not a regular file)."""
        url = _check_remote_url(remote_url)
        sha = _check_sha(sha)
        rel = path.strip().lstrip("/")
        while rel.startswith("./"):
            rel = rel[2:]
        if not rel or ".." in rel.split("/") or "\n" in rel:
            raise ValueError(f"invalid repository path {path!r}")
        k = self.key_for(url, key)
        use = self._acquire_use(k)
        try:
            mirror = self._ensure(k, url, token, sha, [])
            # a regular file only (not a directory, symlink or submodule)
            entry = _out(_git(["ls-tree", "-z", sha, "--", rel], git_dir=mirror)).rstrip("\0")
            mode, _, rest = entry.partition(" ")
            kind, _, rest = rest.partition(" ")
            oid, _, name = rest.partition("\t")
            if name != rel or kind != "blob" or mode not in ("100644", "100755"):
                return None
            blob = _git(["cat-file", "blob", oid], git_dir=mirror).stdout
        finally:
            use.release()
        self._touch(mirror)
        self.evict(keep=k)
        return blob.decode("utf-8", errors="replace")

    def ensure(
        self,
        remote_url: str,
        token: str | None,
        sha: str | None = None,
        fetch_refs: Iterable[str] = (),
        *,
        key: str | None = None,
    ) -> Path:
        """Create or update the mirror (always fetches when ``sha`` is None); return its path."""
        url = _check_remote_url(remote_url)
        k = self.key_for(url, key)
        with self._use(k):
            mirror = self._ensure(
                k, url, token, _check_sha(sha) if sha else None, [_check_ref(r) for r in fetch_refs]
            )
        self._touch(mirror)
        return mirror

    def disk_usage(self) -> dict[str, int]:
        """Bytes used by each mirror, by key."""
        return {p.name[:-4]: _tree_size(p) for p in self._mirrors()}

    def evict(self, keep: str | None = None) -> list[str]:
        """Delete least recently used mirrors until the total is within the budget. A mirror in
        use by any job (its ``.use`` lock held) or being fetched is never deleted. Returns the
        evicted keys."""
        entries = []
        for mirror in self._mirrors():
            entries.append((_stamp_time(mirror), mirror.name[:-4], mirror, _tree_size(mirror)))
        total = sum(e[3] for e in entries)
        evicted: list[str] = []
        for _, key, mirror, size in sorted(entries):
            if total <= self.disk_budget_bytes:
                break
            if key == keep:
                continue
            use = _Flock(self._use_path(key), exclusive=True)
            if not use.acquire(timeout=0):
                continue
            try:
                lock = _Flock(self._lock_path(key), exclusive=True)
                if not lock.acquire(timeout=0):
                    continue
                try:
                    if not mirror.exists():
                        continue
                    trash = self.root / f".evict-{key}-{os.getpid()}-{time.monotonic_ns()}"
                    os.rename(mirror, trash)  # atomic: nobody ever sees half a mirror
                    for slot in self._slot_dirs(key):  # idle: nobody holds the mirror
                        _rmtree(slot)
                finally:
                    lock.release()
            finally:
                use.release()
            _rmtree(trash)
            total -= size
            evicted.append(key)
        return evicted

    # -- internals ------------------------------------------------------------------------

    def _mirrors(self) -> list[Path]:
        return sorted(p for p in self.root.glob("*.git") if p.is_dir())

    def _acquire_use(self, key: str) -> _Flock:
        lock = _Flock(self._use_path(key), exclusive=False)
        if not lock.acquire(self.lock_timeout_s):
            raise WorkspaceError(f"timed out waiting for mirror {key} (being evicted)")
        return lock

    @contextmanager
    def _use(self, key: str) -> Iterator[None]:
        lock = self._acquire_use(key)
        try:
            yield
        finally:
            lock.release()

    def _touch(self, mirror: Path) -> None:
        stamp = mirror / _STAMP
        try:
            stamp.touch()
            now = time.time_ns()
            os.utime(stamp, ns=(now, now))
        except FileNotFoundError:  # evicted meanwhile by someone else's budget
            pass

    def _has_commit(self, mirror: Path, sha: str) -> bool:
        result = _git(["cat-file", "-e", f"{sha}^{{commit}}"], git_dir=mirror, check=False)
        return result.returncode == 0

    def _fetch(self, mirror: Path, url: str, token: str | None, refspecs: list[str]) -> None:
        _git(
            [
                "fetch",
                "--quiet",
                "--prune",
                "--no-tags",
                "--no-write-fetch-head",
                "--no-recurse-submodules",
                "--",
                url,
                *refspecs,
            ],
            git_dir=mirror,
            token=token,
            timeout=self.timeout_s,
            cwd=self.root,
            what=f"git fetch {redact(url)}",
        )

    def _ensure(
        self, key: str, url: str, token: str | None, sha: str | None, refs: list[str]
    ) -> Path:
        mirror = self.root / f"{key}.git"
        base_specs = ["+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"]
        ref_specs = [f"+{r}:{r}" for r in refs]
        with _locked(self._lock_path(key), True, self.lock_timeout_s):
            if not (mirror / "HEAD").exists():
                self._create(mirror, url, token, base_specs + ref_specs)
                fetched = True
            else:
                fetched = False
            if sha is None:
                if not fetched:
                    self._fetch(mirror, url, token, base_specs + ref_specs)
                return mirror
            if self._has_commit(mirror, sha):
                return mirror
            # Ask for the commit itself first: a fetch of exact hashes skips the ref listing
            # (one HTTP round trip fewer) and transfers only what that commit needs. GitHub
            # serves any reachable commit; a ref keeps it from gc. Servers that refuse wants by
            # sha get the branches, tags and `refs` (e.g. refs/pull/7/head) instead.
            sha_error = ""
            try:
                self._fetch(mirror, url, token, [f"+{sha}:refs/qwenfix/commits/{sha}"])
            except AuthenticationError:
                raise
            except GitCommandError as exc:
                sha_error = exc.stderr[-500:]
            if self._has_commit(mirror, sha):
                return mirror
            if not fetched:
                self._fetch(mirror, url, token, base_specs + ref_specs)
                if self._has_commit(mirror, sha):
                    return mirror
            detail = f": {sha_error}" if sha_error else ""
            raise CommitNotFound(f"commit {sha} not found on {redact(url)}{detail}")

    def _create(self, mirror: Path, url: str, token: str | None, refspecs: list[str]) -> None:
        """Init a bare repository beside the final path, fetch into it, rename it in place."""
        tmp = Path(tempfile.mkdtemp(prefix=f".new-{mirror.name}-", dir=self.root))
        try:
            _git(["init", "--quiet", "--bare", str(tmp)], cwd=self.root)
            for name, value in (
                ("gc.autoDetach", "false"),  # gc --auto runs under our lock, not detached
                ("core.logAllRefUpdates", "false"),
                ("fetch.writeCommitGraph", "false"),
            ):
                _git(["config", name, value], git_dir=tmp)
            self._fetch(tmp, url, token, refspecs)
            # HEAD names a branch that exists, so `git log` etc. behave in the mirror
            heads = _out(
                _git(
                    ["for-each-ref", "--format=%(refname)", "--count=1", "refs/heads/"], git_dir=tmp
                )
            )
            for candidate in ("refs/heads/main", "refs/heads/master"):
                if (
                    _git(
                        ["show-ref", "--verify", "--quiet", candidate], git_dir=tmp, check=False
                    ).returncode
                    == 0
                ):
                    heads = candidate
                    break
            if heads:
                _git(["symbolic-ref", "HEAD", heads], git_dir=tmp)
            os.rename(tmp, mirror)
        except BaseException:
            _rmtree(tmp)
            raise


def _tree_size(path: Path) -> int:
    total = 0
    stack = [str(path)]
    while stack:
        try:
            with os.scandir(stack.pop()) as it:
                for entry in it:
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(entry.path)
                        else:
                            total += entry.stat(follow_symlinks=False).st_size
                    except FileNotFoundError:
                        pass
        except (FileNotFoundError, NotADirectoryError):
            pass
    return total


def _stamp_time(mirror: Path) -> int:
    for candidate in (mirror / _STAMP, mirror):
        try:
            return candidate.stat().st_mtime_ns
        except FileNotFoundError:
            continue
    return 0


# --------------------------------------------------------------------------------------------
# patches
# --------------------------------------------------------------------------------------------


def export_patch(worktree: Worktree | Path, base_sha: str) -> str:
    """Everything changed in the worktree against ``base_sha`` (modified, new, deleted, renamed,
    binary) as a ``git diff --binary --full-index`` patch; "" when nothing changed.

    Files ignored by the repository's .gitignore are not included. Uses a throwaway index, so
    the worktree's own index is untouched. Non-UTF-8 bytes survive as surrogate escapes
    (``apply_patch`` encodes them back)."""
    base_sha = _check_sha(base_sha)
    git_dir, work = _resolve(worktree)
    with tempfile.TemporaryDirectory(prefix="qwenfix-index-") as tmp:
        index = Path(tmp) / "index"
        env = {"GIT_INDEX_FILE": str(index)}
        own_index = git_dir / "index" if git_dir is not None else None
        if own_index is not None and own_index.is_file():
            shutil.copyfile(own_index, index)  # keeps stat info: unchanged files aren't rehashed
        else:
            _git(["read-tree", base_sha], git_dir=git_dir, work_tree=work, cwd=work, env=env)
        _git(["add", "-A", "--", "."], git_dir=git_dir, work_tree=work, cwd=work, env=env)
        diff = _git(
            [
                "diff",
                "--cached",
                "--binary",
                "--full-index",
                "-M",
                "--no-color",
                "--no-ext-diff",
                "--no-textconv",
                "--ignore-submodules=none",
                "--src-prefix=a/",
                "--dst-prefix=b/",
                base_sha,
                "--",
            ],
            git_dir=git_dir,
            work_tree=work,
            cwd=work,
            env=env,
        )
    return diff.stdout.decode("utf-8", errors="surrogateescape")


def apply_patch(worktree: Worktree | Path, patch: str) -> None:
    """Apply a patch from :func:`export_patch` (or any git diff) to the worktree's files.
    All or nothing; raises :class:`PatchApplyError` with git's explanation on failure."""
    if not patch.strip():
        return
    git_dir, work = _resolve(worktree)
    data = patch.encode("utf-8", errors="surrogateescape")
    if not data.endswith(b"\n"):
        data += b"\n"
    result = _git(
        ["apply", "--binary", "--whitespace=nowarn", "-"],
        git_dir=git_dir,
        work_tree=work,
        cwd=work,
        input=data,
        check=False,
    )
    if result.returncode != 0:
        details = result.stderr.decode("utf-8", errors="replace").strip()
        first = details.splitlines()[0] if details else f"exit {result.returncode}"
        raise PatchApplyError(f"patch does not apply: {first}", details)


@dataclass(frozen=True)
class Hunk:
    source_start: int
    source_length: int
    target_start: int
    target_length: int
    added_lines: tuple[int, ...] = ()  # line numbers in the new file
    removed_lines: tuple[int, ...] = ()  # line numbers in the old file


@dataclass(frozen=True)
class FileChange:
    path: str  # path after the change (the old path for a deleted file)
    old_path: str | None  # path before the change (None for a new file)
    added: int
    removed: int
    is_new: bool
    is_deleted: bool
    is_binary: bool
    is_rename: bool
    hunks: tuple[Hunk, ...] = ()


def _strip_prefix(name: str | None) -> str | None:
    if name is None or name == "/dev/null":
        return None
    if name.startswith(("a/", "b/")):
        return name[2:]
    return name


def patch_files(patch: str) -> list[FileChange]:
    """A per-file summary of a git patch (via unidiff)."""
    if not patch.strip():
        return []
    changes = []
    for pf in PatchSet(patch.splitlines(keepends=True)):
        source = _strip_prefix(pf.source_file)
        target = _strip_prefix(pf.target_file)
        is_new = bool(pf.is_added_file)
        is_deleted = bool(pf.is_removed_file)
        path = (source if is_deleted else target) or source or pf.path
        hunks = []
        for h in pf:
            hunks.append(
                Hunk(
                    source_start=h.source_start,
                    source_length=h.source_length,
                    target_start=h.target_start,
                    target_length=h.target_length,
                    added_lines=tuple(ln.target_line_no for ln in h if ln.is_added),
                    removed_lines=tuple(ln.source_line_no for ln in h if ln.is_removed),
                )
            )
        changes.append(
            FileChange(
                path=path,
                old_path=None if is_new else source,
                added=pf.added,
                removed=pf.removed,
                is_new=is_new,
                is_deleted=is_deleted,
                is_binary=bool(getattr(pf, "is_binary_file", False)),
                is_rename=bool(pf.is_rename),
                hunks=tuple(hunks),
            )
        )
    return changes


# --------------------------------------------------------------------------------------------
# commit and push
# --------------------------------------------------------------------------------------------


def _identity(value: str, what: str) -> str:
    if not value or any(ch in value for ch in "<>\n\r\0"):
        raise ValueError(f"invalid {what} {value!r}")
    return value


def _undo_commit(git_dir: Path | None, work: Path, parent: str) -> None:
    _git(
        ["reset", "--quiet", "--soft", parent],
        git_dir=git_dir,
        work_tree=work,
        cwd=work,
        check=False,
    )


def commit_and_push(
    worktree: Worktree | Path,
    message: str,
    branch: str,
    remote_url: str,
    token: str | None,
    author_name: str,
    author_email: str,
    force: bool = False,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> str:
    """Commit every change in the worktree (author = committer = the given identity), push HEAD
    to ``refs/heads/<branch>`` on ``remote_url`` and return the new commit's sha.

    Raises :class:`NothingToCommit` when nothing changed, :class:`PushRejected` when the remote
    refuses (e.g. non-fast-forward without ``force``), :class:`AuthenticationError` on 401/403;
    after a failed push the commit is undone (``reset --soft``) so the call can be retried."""
    branch = validate_branch_name(branch)
    url = _check_remote_url(remote_url)
    name = _identity(author_name, "author name")
    email = _identity(author_email, "author email")
    git_dir, work = _resolve(worktree)
    ident = {
        "GIT_AUTHOR_NAME": name,
        "GIT_AUTHOR_EMAIL": email,
        "GIT_COMMITTER_NAME": name,
        "GIT_COMMITTER_EMAIL": email,
    }
    _git(["add", "-A", "--", "."], git_dir=git_dir, work_tree=work, cwd=work)
    staged = _git(
        ["diff", "--cached", "--quiet", "HEAD", "--"],
        git_dir=git_dir,
        work_tree=work,
        cwd=work,
        check=False,
    )
    if staged.returncode == 0:
        raise NothingToCommit(f"nothing to commit in {work}")
    parent = _out(_git(["rev-parse", "HEAD"], git_dir=git_dir, work_tree=work, cwd=work))
    _git(
        ["commit", "--quiet", "--no-verify", "--no-gpg-sign", "--file=-"],
        git_dir=git_dir,
        work_tree=work,
        cwd=work,
        env=ident,
        input=message.encode("utf-8"),
    )
    sha = _out(_git(["rev-parse", "HEAD"], git_dir=git_dir, work_tree=work, cwd=work))
    refspec = f"{'+' if force else ''}{sha}:refs/heads/{branch}"
    try:
        result = _git(
            ["push", "--porcelain", "--no-verify", "--", url, refspec],
            git_dir=git_dir,
            work_tree=work,
            cwd=work,
            token=token,
            timeout=timeout_s,
            check=False,
            what=f"git push {redact(url)} {branch}",
        )
    except BaseException:
        _undo_commit(git_dir, work, parent)
        raise
    if result.returncode != 0:
        # a failed push leaves the worktree as it was (changes uncommitted), so a retry works
        _undo_commit(git_dir, work, parent)
        err = _error(
            f"git push {redact(url)} {branch}",
            "git push",
            result.returncode,
            result.stderr + result.stdout,
            token,
        )
        if isinstance(err, AuthenticationError):
            raise err
        text = redact((result.stdout + result.stderr).decode("utf-8", errors="replace"), token)
        reason = "rejected"
        for line in text.splitlines():
            if line.startswith("!") and "\t" in line:
                reason = line.rsplit("\t", 1)[-1].strip() or reason
        raise PushRejected(f"push to {branch} refused: {reason}", err.argv, result.returncode, text)
    return sha
