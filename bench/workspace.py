"""Benchmark: a fresh `git clone` per job vs the mirror cache's checkout (fetch + worktree).

    .venv/bin/python bench/workspace.py [--files 5000] [--commits 10] [--runs 5]

A repository with FILES files and some history is served over real git smart HTTP
(`git http-backend` behind uvicorn on 127.0.0.1, token required). Each run pushes one small commit
first, so every measured job has something new to get, then times:

  (a) fresh clone       `git clone` of the remote into an empty directory (what a worker without
                        a cache does for every job);
  (b) mirror checkout   MirrorCache.checkout of the new commit when the mirror and a released
                        worktree slot already exist (a fetch of the new objects + `reset --hard`
                        and `clean -ffdx` of the warm slot: the second job on a repository);
  (c) mirror, no fetch  MirrorCache.checkout of a commit the mirror already has;
  (d) shared clone      for comparison with (b)'s worktree step: `git clone --shared --no-checkout`
                        from the mirror + `git checkout --detach SHA` (no network).

Also prints what releasing the slot costs (it is reset then, so a spare slot keeps nothing a
sandbox left). Prints medians and the ratio (a)/(b). Figures only; nothing asserts on wall-clock time.
bench/sandbox.py runs this as its part (b).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.git_http import (  # noqa: E402
    ServerThread,
    git_http_app,
    make_bare_repo,
    push_commit,
)
from workers.workspace.git import run_git  # noqa: E402
from workers.workspace.mirrors import MirrorCache  # noqa: E402
from workers.workspace.worktrees import rmtree  # noqa: E402

REPO = "bench/big"


def _content(rng: random.Random, i: int, version: int = 0) -> str:
    words = ["alpha", "beta", "gamma", "delta", "widget", "return", "value", "self", "def"]
    lines = [f"# file {i} version {version}"]
    for n in range(rng.randint(20, 80)):
        lines.append(" ".join(rng.choice(words) for _ in range(rng.randint(3, 10))) + f" {n}")
    return "\n".join(lines) + "\n"


def make_repo(root: Path, files: int, commits: int) -> tuple[str, int]:
    rng = random.Random(1234)
    tree = {f"pkg{i % 50:02d}/sub{i % 7}/mod_{i:05d}.py": _content(rng, i) for i in range(files)}
    make_bare_repo(root, REPO, tree)
    paths = sorted(tree)
    for c in range(1, commits + 1):
        changed = {
            p: _content(rng, c * 100000 + k, c) for k, p in enumerate(rng.sample(paths, 200))
        }
        push_commit(root, REPO, "main", changed, message=f"history {c}")
    size = sum(len(v) for v in tree.values())
    return REPO, size


def _median(values: list[float]) -> float:
    return statistics.median(values)


def measure(files: int = 5000, commits: int = 10, runs: int = 5, directory: Path | None = None,
            log=print) -> dict[str, float]:
    """Medians in seconds: fresh clone, mirror checkout (fetch + slot), commit present, shared clone."""
    token = "ghs_bench-token-0123456789"
    if directory is not None:
        tempfile.tempdir = str(directory)  # the helpers' scratch clones go there too
    with tempfile.TemporaryDirectory(prefix="qwenfix-bench-ws-", dir=directory) as tmp_s:
        tmp = Path(tmp_s)
        repos = tmp / "repos"
        t0 = time.perf_counter()
        name, size = make_repo(repos, files, commits)
        log(f"directory: {tmp}")
        log(f"repository: {files} files ({size / 1e6:.1f} MB of text), "
            f"{commits + 1} commits, made in {time.perf_counter() - t0:.1f}s")
        server = ServerThread(git_http_app(repos, lambda t: t == token)).start()
        url = f"{server.url}/{name}.git"
        cache = MirrorCache(tmp / "mirrors", 50 << 30, worktree_dir=tmp / "wt")
        try:
            t0 = time.perf_counter()
            sha0 = push_commit(repos, name, "main", {"warmup.txt": "0\n"}, message="warm up")
            cache.checkout(url, sha0, token).release()
            log(f"first job (mirror created): {time.perf_counter() - t0:.2f}s")

            fresh, mirror, present, shared, released = [], [], [], [], []
            for run in range(runs):
                sha = push_commit(repos, name, "main", {"bench/run.txt": f"{run}\n"})

                dest = tmp / f"clone-{run}"
                t0 = time.perf_counter()
                run_git(
                    ["-c", "checkout.workers=0", "clone", "--quiet", url, str(dest)],
                    token=token,
                    cwd=tmp,
                    timeout=600,
                )
                fresh.append(time.perf_counter() - t0)
                rmtree(dest)

                t0 = time.perf_counter()
                wt = cache.checkout(url, sha, token)
                mirror.append(time.perf_counter() - t0)
                assert wt.head() == sha and (wt.path / "bench/run.txt").exists()
                t0 = time.perf_counter()
                wt.release()  # cleans the slot for the next job
                released.append(time.perf_counter() - t0)

                t0 = time.perf_counter()
                wt = cache.checkout(url, sha, token)
                present.append(time.perf_counter() - t0)
                wt.release()

                dest = tmp / f"shared-{run}"
                t0 = time.perf_counter()
                run_git(
                    [
                        "clone",
                        "--quiet",
                        "--shared",
                        "--no-checkout",
                        str(cache.mirror_path(url)),
                        str(dest),
                    ],
                    cwd=tmp,
                )
                run_git(["-c", "checkout.workers=0", "checkout", "--quiet", "--detach", sha], cwd=dest)
                shared.append(time.perf_counter() - t0)
                rmtree(dest)
        finally:
            server.stop()
    return {"fresh_clone_s": _median(fresh), "mirror_checkout_s": _median(mirror),
            "commit_present_s": _median(present), "shared_clone_s": _median(shared),
            "release_s": _median(released)}


def report(r: dict[str, float], runs: int, indent: str = "") -> None:
    a, b, c, d = r["fresh_clone_s"], r["mirror_checkout_s"], r["commit_present_s"], r["shared_clone_s"]
    print(f"{indent}runs: {runs} (medians)")
    print(f"{indent}  fresh git clone over HTTP                   {a * 1000:8.0f} ms")
    print(f"{indent}  second job: fetch + reset of a warm slot    {b * 1000:8.0f} ms")
    print(f"{indent}  same, commit already mirrored               {c * 1000:8.0f} ms")
    print(f"{indent}  clone --shared + checkout (local, for scale) {d * 1000:7.0f} ms")
    print(f"{indent}  release of the slot (reset for the next job) {r['release_s'] * 1000:7.0f} ms")
    print(f"{indent}ratio fresh clone / second job: {a / b:.1f}x (target >= 5x) {'OK' if a / b >= 5 else 'UNDER'}")
    print(f"{indent}ratio fresh clone / commit already mirrored: {a / c:.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--commits", type=int, default=10, help="history commits on main")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--dir",
        type=Path,
        default=None,
        help="where repos, mirrors, clones and worktrees go "
        "(default: the temp dir; try /dev/shm to take the filesystem out of the picture)",
    )
    args = parser.parse_args()
    report(measure(args.files, args.commits, args.runs, args.dir), args.runs)


if __name__ == "__main__":
    main()
