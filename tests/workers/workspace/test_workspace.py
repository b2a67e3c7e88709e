"""Workspaces over real git smart HTTP (`git http-backend`): mirrors, worktrees, patches, push."""

from __future__ import annotations

import base64
import fcntl
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.support.git_http import set_ref
from workers.workspace.confined import Refused
from workers.workspace.git import (
    AuthenticationError,
    CommitNotFound,
    InvalidBranchName,
    NothingToCommit,
    PatchApplyError,
    PushRejected,
    validate_branch_name,
)
from workers.workspace.mirrors import MirrorCache, mirror_key
from workers.workspace.patches import apply_patch, export_patch, patch_files
from workers.workspace.push import commit_and_push
from workers.workspace.worktrees import Worktree

REPO = "octo/widgets"
BIG = os.urandom(300_000)  # incompressible, so a full clone is visibly bigger than a fetch
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4 + b"\x00\xff" * 100

BASE_FILES: dict[str, str | bytes] = {
    "README.md": "# widgets\n",
    "src/app.py": "".join(f"line {i}\n" for i in range(1, 41)),
    "src/util.py": "def helper():\n    return 1\n",
    "tests/test_old.py": "def test_old():\n    assert True\n",
    "docs/guide.txt": "".join(f"guide {i}\n" for i in range(1, 21)),
    "assets/logo.png": PNG,
    ".github/qwen.yml": "fix:\n  enabled: true\n",
}


def _files(root: Path) -> dict[str, bytes]:
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if rel == ".git" or rel.startswith(".git/"):
            continue
        if path.is_file():
            out[rel] = path.read_bytes()
    return out


def _secret_forms(token: str) -> list[bytes]:
    return [
        token.encode(),
        base64.b64encode(f"x-access-token:{token}".encode()),
        base64.b64encode(token.encode()),
    ]


def _grep_tree(root: Path, token: str) -> list[str]:
    hits = []
    forms = _secret_forms(token)
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            if any(form in data for form in forms):
                hits.append(str(path))
    return hits


def run_git(cwd: Path, *args: str) -> str:
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(cwd),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": "/dev/null",
    }
    return subprocess.run(
        ["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True
    ).stdout.strip()


def busy_slots(cache: MirrorCache) -> list[str]:
    """Worktree slots some job still holds (their flock is taken)."""
    busy = []
    for lock_path in cache.worktree_dir.glob("*.lock"):
        fd = os.open(lock_path, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            busy.append(lock_path.name[: -len(".lock")])
        finally:
            os.close(fd)
    return sorted(busy)


@pytest.fixture
def cache(tmp_path: Path) -> MirrorCache:
    return MirrorCache(tmp_path / "mirrors", 1 << 30, worktree_dir=tmp_path / "worktrees")


@pytest.fixture
def repo(git_server):
    sha = git_server.make_repo(REPO, {**BASE_FILES, "data/big.bin": BIG})
    return git_server.clone_url(REPO), sha


# ------------------------------------------------------------------------------------------
# mirror cache and worktrees
# ------------------------------------------------------------------------------------------


def test_first_checkout_clones_then_fetches_only_what_is_new(git_server, cache, repo):
    url, sha1 = repo
    with cache.checkout(url, sha1, git_server.token) as wt:
        assert wt.base_sha == sha1 and wt.head() == sha1
        assert (wt.path / "src/util.py").read_text() == BASE_FILES["src/util.py"]
        assert (wt.path / "data/big.bin").read_bytes() == BIG
    clone = git_server.fetches(REPO)
    assert len(clone) == 1 and clone[0].bytes_out > len(BIG)
    [mirror] = cache.root.glob("*.git")
    assert mirror.name == f"{mirror_key(url)}.git" and mirror.name.startswith("octo__widgets-")

    # the same sha again: the mirror has it, no network at all
    seen = len(git_server.requests)
    with cache.checkout(url, sha1, git_server.token) as wt:
        assert wt.head() == sha1
    assert len(git_server.requests) == seen

    # a new commit: one fetch by sha (no ref listing), carrying only the new objects
    sha2 = git_server.push_commit(REPO, "main", {"src/util.py": "def helper():\n    return 2\n"})
    seen = len(git_server.requests)
    with cache.checkout(url, sha2, git_server.token) as wt:
        assert wt.head() == sha2
        assert "return 2" in (wt.path / "src/util.py").read_text()
    assert [r.command for r in git_server.requests[seen:] if r.is_pack_request] == ["fetch"]
    fetches = git_server.fetches(REPO)
    assert len(fetches) == 2
    assert fetches[1].bytes_out < clone[0].bytes_out / 20
    assert all(r.token == git_server.token for r in git_server.requests)


def test_checkout_is_at_the_exact_sha_not_the_branch_tip(git_server, cache, repo):
    url, sha1 = repo
    sha2 = git_server.push_commit(REPO, "main", {"README.md": "# v2\n"})
    with cache.checkout(url, sha2, git_server.token) as tip:
        assert (tip.path / "README.md").read_text() == "# v2\n"
    with cache.checkout(url, sha1, git_server.token) as old:
        assert old.head() == sha1
        assert (old.path / "README.md").read_text() == "# widgets\n"
        git_dir = f"--git-dir={old.git_dir}"  # the `.git` pointer names the sandbox's view
        assert run_git(old.path, git_dir, "status", "--porcelain") == ""  # clean, detached
        assert run_git(old.path, git_dir, "rev-parse", "--abbrev-ref", "HEAD") == "HEAD"


def test_checkout_of_a_pull_request_ref_and_of_an_unknown_sha(git_server, cache, repo):
    url, _ = repo
    # a commit only reachable from refs/pull/7/head (the fork's branch is not in the base repo)
    pr_sha = git_server.push_commit(
        REPO, "fork-tmp", {"pr.txt": "from a fork\n"}, parent_branch="main"
    )
    set_ref(git_server.root, REPO, "refs/pull/7/head", pr_sha)
    run_git(git_server.root, "--git-dir", f"{REPO}.git", "update-ref", "-d", "refs/heads/fork-tmp")
    with cache.checkout(url, pr_sha, git_server.token, fetch_refs=["refs/pull/7/head"]) as wt:
        assert (wt.path / "pr.txt").read_text() == "from a fork\n"
    mirror = cache.mirror_path(url)
    assert run_git(mirror, "--git-dir", str(mirror), "rev-parse", "refs/pull/7/head") == pr_sha

    # without the ref: fetched by sha (GitHub serves any reachable commit)
    pr2 = git_server.push_commit(REPO, "fork-tmp", {"pr.txt": "second\n"}, parent_branch="main")
    set_ref(git_server.root, REPO, "refs/pull/8/head", pr2)
    run_git(git_server.root, "--git-dir", f"{REPO}.git", "update-ref", "-d", "refs/heads/fork-tmp")
    with cache.checkout(url, pr2, git_server.token) as wt:
        assert (wt.path / "pr.txt").read_text() == "second\n"

    with pytest.raises(CommitNotFound):
        cache.checkout(url, "0123456789abcdef0123456789abcdef01234567", git_server.token)
    with pytest.raises(ValueError):
        cache.checkout(url, "main", git_server.token)
    with pytest.raises(ValueError):
        cache.checkout(url, pr2, git_server.token, fetch_refs=["--upload-pack=evil"])
    assert busy_slots(cache) == []


def test_worktrees_are_independent_and_a_released_one_comes_back_pristine(git_server, cache, repo):
    url, sha = repo
    a = cache.checkout(url, sha, git_server.token)
    b = cache.checkout(url, sha, git_server.token)
    try:
        assert a.path != b.path
        (a.path / "src/util.py").write_text("changed in a\n")
        (a.path / "only_in_a.txt").write_text("a\n")
        assert (b.path / "src/util.py").read_text() == BASE_FILES["src/util.py"]
        assert not (b.path / "only_in_a.txt").exists()
        assert export_patch(b, sha) == ""
        assert "only_in_a.txt" in export_patch(a, sha)
    finally:
        a.release()
    assert busy_slots(cache) == [b.path.name]
    a.release()  # idempotent
    with pytest.raises(Exception, match="released"):
        export_patch(a, sha)

    again = cache.checkout(url, sha, git_server.token)  # a's slot, warm
    assert again.path == a.path and again.head() == sha
    assert _files(again.path) == _files(b.path)
    assert export_patch(again, sha) == ""
    again.release()
    b.release()
    assert busy_slots(cache) == []

    with pytest.raises(RuntimeError, match="boom"):
        with cache.checkout(url, sha, git_server.token):
            raise RuntimeError("boom")
    assert busy_slots(cache) == []


def test_a_reused_slot_undoes_whatever_the_sandbox_did_there(git_server, cache, repo, tmp_path):
    """Sandboxed code owns the worktree while it runs; the next job must not inherit any of it."""
    url, sha = repo
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("mine\n")
    with cache.checkout(url, sha, git_server.token) as wt:
        path = wt.path
        util = path / "src/util.py"
        before = util.stat()
        util.write_text("def helper():\n    return 2\n")  # same size, old mtime put back
        os.utime(util, ns=(before.st_atime_ns, before.st_mtime_ns))
        _rmtree_dir = path / "docs"
        for f in _rmtree_dir.iterdir():
            f.unlink()
        _rmtree_dir.rmdir()
        os.symlink(outside, path / "docs")  # a tracked directory now points out of the worktree
        (path / ".git").unlink()
        (path / ".git").mkdir()  # a fake repository with a hook-bearing config
        (path / ".git" / "config").write_text("[core]\n\thooksPath = /tmp/evil\n")
        (path / "build").mkdir()
        (path / "build" / "out.o").write_bytes(b"\0" * 10)
        (path / ".gitignore").write_text("build/\n")
        nested = path / "vendor" / "lib"
        nested.mkdir(parents=True)
        run_git(nested, "init", "-q")
        (path / "locked").mkdir()
        (path / "locked" / "f").write_text("x")
        os.chmod(path / "locked", 0o500)

    with cache.checkout(url, sha, git_server.token) as wt:
        assert wt.path == path
        assert _files(wt.path) == {k: v if isinstance(v, bytes) else v.encode()
                                   for k, v in {**BASE_FILES, "data/big.bin": BIG}.items()}
        assert not (wt.path / "docs").is_symlink() and (wt.path / "docs/guide.txt").is_file()
        assert (wt.path / ".git").is_file() and wt.head() == sha
        assert export_patch(wt, sha) == ""
    assert sorted(p.name for p in outside.iterdir()) == ["keep.txt"]
    assert (outside / "keep.txt").read_text() == "mine\n"


def test_a_slot_moves_to_another_commit_and_extra_slots_are_not_kept(git_server, tmp_path, repo):
    url, sha1 = repo
    cache = MirrorCache(tmp_path / "m", 1 << 30, worktree_dir=tmp_path / "w", spare_worktrees=1)
    sha2 = git_server.push_commit(REPO, "main", {"src/new.py": "x = 1\n", "README.md": "# v2\n"})
    first, second = cache.checkout(url, sha1, git_server.token), cache.checkout(url, sha1, git_server.token)
    second.release()
    assert not second.path.exists()  # slot 1 is beyond the one spare kept
    first.release()
    assert first.path.exists()
    with cache.checkout(url, sha2, git_server.token) as wt:
        assert wt.path == first.path and wt.head() == sha2 and wt.base_sha == sha2
        assert (wt.path / "src/new.py").read_text() == "x = 1\n"
        assert (wt.path / "README.md").read_text() == "# v2\n"
        wt.reset(sha1)  # and back, in place
        assert wt.head() == sha1 and not (wt.path / "src/new.py").exists()
    assert [p.name for p in cache.slots(url)] == [first.path.name]


_HOLD = """
import os, sys, time
from pathlib import Path
from workers.workspace.mirrors import MirrorCache
root, wts, url, sha, token = sys.argv[1:]
wt = MirrorCache(Path(root), 1 << 30, worktree_dir=Path(wts)).checkout(url, sha, token)
(wt.path / "half-written.txt").write_text("x")
print(wt.path, flush=True)
time.sleep(3600)
"""


def test_a_slot_left_by_a_killed_worker_is_reset_and_reused(git_server, cache, repo):
    url, sha = repo
    root = Path(__file__).resolve().parents[3]
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(cache.root), str(cache.worktree_dir), url, sha, git_server.token],
        cwd=root, text=True, stdout=subprocess.PIPE,
    )
    held = Path(proc.stdout.readline().strip())
    assert busy_slots(cache) == [held.name]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    assert busy_slots(cache) == []
    with cache.checkout(url, sha, git_server.token) as wt:
        assert wt.path == held
        assert not (wt.path / "half-written.txt").exists() and export_patch(wt, sha) == ""


def test_concurrent_checkouts_of_one_repo_in_threads(git_server, cache, repo):
    url, sha = repo
    results: list[Worktree] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def job() -> None:
        try:
            barrier.wait()
            results.append(cache.checkout(url, sha, git_server.token))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=job) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert len({wt.path for wt in results}) == 4
    assert all((wt.path / "data/big.bin").read_bytes() == BIG for wt in results)
    assert len(git_server.fetches(REPO)) == 1  # the lock made the others reuse the first clone
    for wt in results:
        wt.release()
    assert busy_slots(cache) == []


_CHILD = """
import sys
from pathlib import Path
from workers.workspace.mirrors import MirrorCache
root, wts, url, sha, token = sys.argv[1:]
with MirrorCache(Path(root), 1 << 30, worktree_dir=Path(wts)).checkout(url, sha, token) as wt:
    assert wt.head() == sha
    print((wt.path / "README.md").read_text().strip())
"""


def test_concurrent_checkouts_of_one_repo_in_processes(git_server, cache, repo):
    url, sha = repo
    args = [str(cache.root), str(cache.worktree_dir), url, sha, git_server.token]
    root = Path(__file__).resolve().parents[3]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _CHILD, *args],
            cwd=root,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(3)
    ]
    outputs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outputs
    assert all(out.strip() == "# widgets" for out, _ in outputs)
    assert len(git_server.fetches(REPO)) == 1
    assert busy_slots(cache) == []


def test_lru_eviction_over_budget_spares_mirrors_in_use(git_server, tmp_path):
    names = ["octo/a", "octo/b", "octo/c"]
    shas = {n: git_server.make_repo(n, {"f.txt": n, "blob.bin": os.urandom(50_000)}) for n in names}
    cache = MirrorCache(tmp_path / "m", 1 << 30, worktree_dir=tmp_path / "w")
    for n in names:
        cache.checkout(git_server.clone_url(n), shas[n], git_server.token).release()
    # use a again: LRU order is now b, c, a
    assert (
        cache.read_file_at(
            git_server.clone_url("octo/a"), shas["octo/a"], "f.txt", git_server.token
        )
        == "octo/a"
    )
    a, b, c = (mirror_key(git_server.clone_url(n)) for n in names)
    usage = cache.disk_usage()
    assert set(usage) == {a, b, c}

    cache.disk_budget_bytes = usage[a] + usage[c] + 1000
    assert cache.slots(git_server.clone_url("octo/b"))
    assert cache.evict() == [b]
    assert set(cache.disk_usage()) == {a, c}
    assert cache.slots(git_server.clone_url("octo/b")) == []  # its worktree slots went with it

    # a mirror in use (a live worktree) is never evicted, even with a zero budget
    wt = cache.checkout(git_server.clone_url("octo/c"), shas["octo/c"], git_server.token)
    try:
        cache.disk_budget_bytes = 0
        assert cache.evict() == [a]
        assert set(cache.disk_usage()) == {c}
        assert wt.head() == shas["octo/c"]
    finally:
        wt.release()
    assert cache.evict() == [c]

    # a checkout enforces the budget itself and keeps the mirror it just used
    cache.disk_budget_bytes = 1
    for n in names:
        cache.checkout(git_server.clone_url(n), shas[n], git_server.token).release()
    assert set(cache.disk_usage()) == {c}


def test_a_released_slot_keeps_nothing_a_sandbox_left_and_eviction_counts_slots(git_server, tmp_path):
    """A sandbox fills its worktree and the job ends. Fails on main: the released slot kept the 3 MB
    (and a fifo the reset never removed), and eviction counted only the mirrors."""
    names = ["octo/a", "octo/b"]
    shas = {n: git_server.make_repo(n, {"f.txt": n, "tracked.bin": os.urandom(400_000)}) for n in names}
    cache = MirrorCache(tmp_path / "m", 1 << 30, worktree_dir=tmp_path / "w")
    for n in names:
        with cache.checkout(git_server.clone_url(n), shas[n], git_server.token) as wt:
            slot = wt.path
            (wt.path / "junk").mkdir()
            (wt.path / "junk" / "fill.bin").write_bytes(b"\1" * (3 << 20))
            (wt.path / ".gitignore").write_text("*.log\n")
            (wt.path / "out.log").write_bytes(b"\1" * (1 << 20))
            os.mkfifo(wt.path / "fifo")
            in_use = cache.disk_usage()[mirror_key(git_server.clone_url(n))]
            assert in_use > (4 << 20)  # a slot in use counts with its mirror
        assert sorted(p.name for p in slot.iterdir()) == [".git", "f.txt", "tracked.bin"]
    # the idle slots hold the commits' 400 KB files: counted too, so the older repository goes
    usage = cache.disk_usage()
    a, b = (mirror_key(git_server.clone_url(n)) for n in names)
    mirrors_only = sum(sum(f.stat().st_size for f in (cache.root / f"{k}.git").rglob("*") if f.is_file()) for k in (a, b))
    assert usage[a] + usage[b] > mirrors_only + 2 * 400_000
    cache.disk_budget_bytes = mirrors_only + 400_000
    assert cache.evict() == [a]


def test_distinct_repositories_never_share_a_mirror(git_server, tmp_path):
    """`octo/.github` and `octo/github` (or the same name on two hosts) sanitized to one key, so a
    job for one repository could check out a commit only the other has without asking its server.
    Fails on main: the second checkout was served from the other repository's mirror."""
    private = git_server.make_repo("octo/.github", {"workflow-secrets.md": "only for octo/.github\n"})
    git_server.make_repo("octo/github", {"README.md": "# github\n"})
    cache = MirrorCache(tmp_path / "m", 1 << 30, worktree_dir=tmp_path / "w")
    cache.checkout(git_server.clone_url("octo/.github"), private, git_server.token).release()
    with pytest.raises(CommitNotFound):
        cache.checkout(git_server.clone_url("octo/github"), private, git_server.token)
    keys = {mirror_key(u) for u in ("https://github.com/octo/.github", "https://github.com/octo/github",
                                    "https://github.com/octo/_github", "https://ghe.example/octo/github",
                                    "https://github.com/octo/a__b", "https://github.com/octo__a/b")}
    assert len(keys) == 6 and all(k.startswith("octo__") for k in keys if "a__b" not in k)
    assert mirror_key("https://github.com/octo/calc.git") == mirror_key("https://github.com/octo/calc/")


def test_read_file_at_reads_the_given_commit_without_a_worktree(git_server, cache, repo):
    url, sha1 = repo
    sha2 = git_server.push_commit(REPO, "main", {".github/qwen.yml": "fix:\n  enabled: false\n"})
    assert cache.read_file_at(url, sha1, ".github/qwen.yml", git_server.token) == (
        "fix:\n  enabled: true\n"
    )
    assert "false" in cache.read_file_at(url, sha2, ".github/qwen.yml", git_server.token)
    assert cache.read_file_at(url, sha1, "missing.yml", git_server.token) is None
    assert cache.read_file_at(url, sha1, "src", git_server.token) is None  # a directory
    with pytest.raises(ValueError):
        cache.read_file_at(url, sha1, "../etc/passwd", git_server.token)
    assert not list(cache.worktree_dir.iterdir())


# ------------------------------------------------------------------------------------------
# tokens
# ------------------------------------------------------------------------------------------


def test_token_never_lands_on_disk(git_server, cache, repo, tmp_path):
    url, sha = repo
    with cache.checkout(url, sha, git_server.token, fetch_refs=["refs/heads/main"]) as wt:
        (wt.path / "src/util.py").write_text("def helper():\n    return 3\n")
        commit_and_push(
            wt, "Fix helper", "qwen/fix-1", url, git_server.token, "qwenfix", "qwenfix@example.com"
        )
        cache.read_file_at(url, sha, "README.md", git_server.token)
        assert _grep_tree(wt.path, git_server.token) == []
        assert _grep_tree(cache.root, git_server.token) == []
    assert _grep_tree(tmp_path, git_server.token) == []
    assert {r.token for r in git_server.requests} == {git_server.token}
    assert "token" not in (cache.mirror_path(url) / "config").read_text().lower()


def test_wrong_token_is_a_clear_error_with_the_token_redacted(git_server, cache, repo):
    url, sha = repo
    wrong = "ghs_WRONGwrongWRONG1234567890"
    with pytest.raises(AuthenticationError) as info:
        cache.checkout(url, sha, wrong)
    message = str(info.value) + repr(info.value.argv) + info.value.stderr
    assert "authentication failed" in message
    assert not any(form.decode() in message for form in _secret_forms(wrong))
    assert [r.status for r in git_server.requests] == [401]
    assert git_server.requests[0].token == wrong
    # nothing half-made is left behind
    assert list(cache.root.glob("*.git")) == [] and list(cache.root.glob(".new-*")) == []
    assert not list(cache.worktree_dir.iterdir())

    with pytest.raises(AuthenticationError, match="no token was sent"):
        cache.checkout(url, sha, None)
    with pytest.raises(ValueError, match="credentials in the remote URL"):
        cache.checkout(url.replace("http://", f"http://x:{wrong}@"), sha, None)


# ------------------------------------------------------------------------------------------
# commit and push
# ------------------------------------------------------------------------------------------


def test_commit_and_push_moves_the_branch_on_the_server(git_server, cache, repo):
    url, sha = repo
    with cache.checkout(url, sha, git_server.token) as wt:
        (wt.path / "src/util.py").write_text("def helper():\n    return 42\n")
        (wt.path / "NEW.md").write_text("new\n")
        (wt.path / "docs/guide.txt").unlink()
        new = commit_and_push(
            wt,
            "qwen: fix helper\n\nbody",
            "qwen/fix-1",
            url,
            git_server.token,
            "qwenfix[bot]",
            "bot@example.com",
        )
        assert git_server.ref(REPO, "refs/heads/qwen/fix-1") == new
        assert wt.head() == new
        assert git_server.file_at(REPO, "qwen/fix-1", "src/util.py").endswith("return 42\n")
        assert git_server.file_at(REPO, "qwen/fix-1", "NEW.md") == "new\n"
        with pytest.raises(KeyError):
            git_server.file_at(REPO, "qwen/fix-1", "docs/guide.txt")
        log = run_git(
            git_server.root,
            "--git-dir",
            f"{REPO}.git",
            "log",
            "-1",
            "--format=%an|%ae|%cn|%P|%s",
            "qwen/fix-1",
        )
        assert log == f"qwenfix[bot]|bot@example.com|qwenfix[bot]|{sha}|qwen: fix helper"
        assert receive_packs(git_server) and all(
            r.token == git_server.token for r in receive_packs(git_server)
        )
        with pytest.raises(NothingToCommit):
            commit_and_push(wt, "again", "qwen/fix-1", url, git_server.token, "q", "q@x.y")

        # fast-forward on top of a branch tip is a normal push
        (wt.path / "NEW.md").write_text("newer\n")
        newer = commit_and_push(wt, "second", "main", url, git_server.token, "q", "q@x.y")
        assert git_server.ref(REPO, "main") == newer

    # a diverged branch: refused without force, replaced with force
    with cache.checkout(url, sha, git_server.token) as other:
        (other.path / "README.md").write_text("diverged\n")
        with pytest.raises(PushRejected) as info:
            commit_and_push(other, "diverge", "main", url, git_server.token, "q", "q@x.y")
        assert "main" in str(info.value)
        assert git_server.ref(REPO, "main") == newer
        forced = commit_and_push(
            other, "diverge", "main", url, git_server.token, "q", "q@x.y", force=True
        )
        assert git_server.ref(REPO, "main") == forced


def receive_packs(git_server):
    return git_server.pack_requests(REPO, service="git-receive-pack")


def test_push_with_a_wrong_token_is_refused_and_redacted(git_server, cache, repo):
    url, sha = repo
    wrong = "ghs_pushWRONG000000000000000"
    with cache.checkout(url, sha, git_server.token) as wt:
        (wt.path / "x.txt").write_text("x\n")
        with pytest.raises(AuthenticationError) as info:
            commit_and_push(wt, "m", "qwen/x", url, wrong, "q", "q@x.y")
    assert not any(form.decode() in str(info.value) for form in _secret_forms(wrong))
    assert git_server.ref(REPO, "refs/heads/qwen/x") is None


def test_git_metadata_is_not_taken_from_the_worktree(git_server, cache, repo, tmp_path):
    """The sandbox can rewrite the worktree's `.git` file; the worker must not follow it."""
    url, sha = repo
    evil = tmp_path / "evil.git"
    run_git(tmp_path, "init", "--quiet", "--bare", str(evil))
    run_git(
        evil,
        "--git-dir",
        str(evil),
        "config",
        "url.http://127.0.0.2:9/.insteadOf",
        git_server.url + "/",
    )
    with cache.checkout(url, sha, git_server.token) as wt:
        (wt.path / ".git").write_text(f"gitdir: {evil}\n")
        assert run_git(wt.path, "rev-parse", "--absolute-git-dir") == str(evil)  # git would follow
        (wt.path / "README.md").write_text("patched\n")
        patch = export_patch(wt, sha)
        assert [c.path for c in patch_files(patch)] == ["README.md"]
        new = commit_and_push(wt, "m", "qwen/safe", url, git_server.token, "q", "q@x.y")
        assert git_server.ref(REPO, "refs/heads/qwen/safe") == new


@pytest.mark.parametrize(
    "name",
    [
        "-x",
        "a..b",
        "foo bar",
        "refs/../x",
        "",
        "x.lock",
        "a//b",
        "HEAD",
        "refs/heads/x",
        "a@{1}",
        "a~1",
        "a:b",
        "ends/",
        "a\nb",
        "-",
        ".hidden",
        "x/.y",
        "a\\b",
        "é",
    ],
)
def test_invalid_branch_names_are_refused(name):
    with pytest.raises(InvalidBranchName):
        validate_branch_name(name)


def test_valid_branch_names_and_push_refusal(git_server, cache, repo):
    for name in ("main", "qwen/fix-123", "feature/x.y_z", "release-1.2"):
        assert validate_branch_name(name) == name
    url, sha = repo
    with cache.checkout(url, sha, git_server.token) as wt:
        (wt.path / "x").write_text("x")
        with pytest.raises(InvalidBranchName):
            commit_and_push(wt, "m", "--force", url, git_server.token, "q", "q@x.y")
    assert receive_packs(git_server) == []


# ------------------------------------------------------------------------------------------
# patches
# ------------------------------------------------------------------------------------------


def _edit_everything(root: Path) -> None:
    lines = (root / "src/app.py").read_text().splitlines(keepends=True)
    lines[4] = "line 5 changed\n"
    lines.insert(30, "inserted\n")
    (root / "src/app.py").write_text("".join(lines))
    (root / "src/new_module.py").write_text("X = 1\nY = 2\n")  # new
    (root / "tests/test_old.py").unlink()  # deleted
    (root / "docs/guide.txt").rename(root / "docs/manual.txt")  # renamed, unchanged
    (root / "assets/logo.png").write_bytes(PNG[:-10] + b"\x00\x01\x02")  # binary modified
    (root / "assets/icon.bin").write_bytes(bytes(range(256)) * 3)  # binary new
    (root / "weird name ü.txt").write_bytes(b"latin-1 \xe9\xe8\n")  # non-UTF-8 content


def test_export_and_apply_round_trip(git_server, cache, repo):
    url, sha = repo
    with (
        cache.checkout(url, sha, git_server.token) as a,
        cache.checkout(url, sha, git_server.token) as b,
    ):
        assert export_patch(a, sha) == ""
        _edit_everything(a.path)
        patch = export_patch(a, sha)
        assert "GIT binary patch" in patch
        assert "rename from docs/guide.txt" in patch
        assert "deleted file mode" in patch and "new file mode" in patch
        assert run_git(a.path, f"--git-dir={a.git_dir}", "status", "--porcelain").count("\n") >= 3  # own index untouched

        apply_patch(b, patch)
        assert _files(b.path) == _files(a.path)
        assert export_patch(b, sha) == patch  # deterministic, and the patch is complete
        assert export_patch(b.path, sha) == patch  # a live worktree's path works too

        # applying again fails as a whole, leaving files as they are
        before = _files(b.path)
        with pytest.raises(PatchApplyError, match="patch does not apply") as info:
            apply_patch(b, patch)
        assert info.value.details
        assert _files(b.path) == before
        apply_patch(b, "")  # empty patch: nothing to do


def test_export_never_reads_through_what_the_sandbox_left(git_server, cache, repo, tmp_path):
    """A hard link to a host file would put the host file's content into the patch (and the PR).
    Fails on main: `git add -A` read it. Symlinks are exported as links; fifos and sockets are skipped."""
    url, sha = repo
    host = tmp_path / "host"
    host.mkdir()
    (host / "id_rsa").write_text("-----BEGIN HOST KEY-----\n")
    with cache.checkout(url, sha, git_server.token) as wt:
        (wt.path / "key-link").symlink_to(host / "id_rsa")
        os.mkfifo(wt.path / "fifo")
        (wt.path / "src/util.py").write_text("def helper():\n    return 2\n")
        patch = export_patch(wt, sha)
        assert "new file mode 120000" in patch and "BEGIN HOST KEY" not in patch and "fifo" not in patch
        os.link(host / "id_rsa", wt.path / "stolen.txt")
        with pytest.raises(Refused, match="stolen.txt: hard-linked to a file outside the worktree"):
            export_patch(wt, sha)


def test_patch_files_summary(git_server, cache, repo):
    url, sha = repo
    with cache.checkout(url, sha, git_server.token) as wt:
        _edit_everything(wt.path)
        changes = {c.path: c for c in patch_files(export_patch(wt, sha))}
    assert set(changes) == {
        "src/app.py",
        "src/new_module.py",
        "tests/test_old.py",
        "docs/manual.txt",
        "assets/logo.png",
        "assets/icon.bin",
        "weird name ü.txt",
    }
    app = changes["src/app.py"]
    assert (app.added, app.removed, app.is_new, app.is_deleted, app.is_binary) == (
        2,
        1,
        False,
        False,
        False,
    )
    assert app.old_path == "src/app.py"
    assert [
        (h.source_start, h.source_length, h.target_start, h.target_length) for h in app.hunks
    ] == [(2, 7, 2, 7), (28, 6, 28, 7)]
    assert app.hunks[0].added_lines == (5,) and app.hunks[0].removed_lines == (5,)
    assert app.hunks[1].added_lines == (31,)

    new = changes["src/new_module.py"]
    assert new.is_new and new.added == 2 and new.old_path is None
    gone = changes["tests/test_old.py"]
    assert gone.is_deleted and gone.removed == 2 and not gone.is_new
    moved = changes["docs/manual.txt"]
    assert moved.is_rename and moved.old_path == "docs/guide.txt" and moved.added == 0
    assert changes["assets/logo.png"].is_binary and not changes["assets/logo.png"].is_new
    assert changes["assets/icon.bin"].is_binary and changes["assets/icon.bin"].is_new
    assert patch_files("") == []
