"""Sandbox benchmarks.

(a) time to a ready sandbox with a fresh worktree — ``MirrorCache.checkout`` of a small
    repository whose mirror exists, ``DockerEngine.start`` on it and the first ``true`` exec —
    against a bare ``docker run --rm --network none IMAGE true``; target <= 1.5x.
(b) checkout time of the second job on one repository of 5,000 files (fetch + warm worktree
    slot) against a fresh ``git clone`` from the same remote; target >= 5x faster
    (bench/workspace.py, which has more options).

    .venv/bin/python bench/sandbox.py [--runs 10] [--image qwenfix-sandbox:bookworm] [--bwrap]
                                      [--files 5000]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import workspace  # noqa: E402
from tests.support.git_http import make_bare_repo, push_commit  # noqa: E402
from workers.sandbox import Limits  # noqa: E402
from workers.sandbox.image import DEFAULT_TAG  # noqa: E402
from workers.workspace.mirrors import MirrorCache  # noqa: E402


def _time(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def bench_docker_ready(image: str, runs: int) -> dict[str, float]:
    from workers.sandbox.docker import DockerEngine

    engine = DockerEngine()
    limits = Limits()
    ours: list[float] = []
    bare: list[float] = []
    tmp = Path(tempfile.mkdtemp(prefix="qwenfix-bench-"))
    files = {f"pkg/mod_{i}.py": f"X = {i}\n" for i in range(50)}
    make_bare_repo(tmp / "repos", "bench/small", files)
    sha = push_commit(tmp / "repos", "bench/small", "main", {"README.md": "small\n"})
    url = str(tmp / "repos" / "bench/small.git")
    cache = MirrorCache(tmp / "mirrors", 1 << 30)
    cache.checkout(url, sha, None).release()  # the mirror exists: a job's usual case

    def ready() -> None:
        t0 = time.perf_counter()
        with cache.checkout(url, sha, None) as wt:
            sb = engine.start(wt.path, image, limits, {"qwenfix.job": "bench"})
            r = sb.exec(["true"])
            ours.append(time.perf_counter() - t0)
            assert r.ok, r
            sb.stop()

    def docker_run() -> None:
        subprocess.run(
            ["docker", "run", "--rm", "--network", "none", image, "true"],
            check=True,
            capture_output=True,
        )

    ready()  # warm-up (page cache, first container of the image)
    ours.clear()
    docker_run()
    for _ in range(runs):  # interleave so drift hits both equally
        ready()
        bare.append(_time(docker_run))
    shutil.rmtree(tmp, ignore_errors=True)
    return {
        "sandbox_ready_s": statistics.median(ours),
        "docker_run_true_s": statistics.median(bare),
    }


def bench_bwrap_ready(runs: int) -> float:
    from workers.sandbox.bwrap import BwrapEngine

    engine = BwrapEngine()
    times = []
    for _ in range(runs):
        ws = Path(tempfile.mkdtemp(prefix="qwenfix-bench-"))
        try:
            t0 = time.perf_counter()
            sb = engine.start(ws, "", Limits())
            r = sb.exec(["true"])
            times.append(time.perf_counter() - t0)
            assert r.ok, r
            sb.stop()
        finally:
            shutil.rmtree(ws, ignore_errors=True)
    return statistics.median(times)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--image", default=DEFAULT_TAG)
    p.add_argument("--bwrap", action="store_true", help="also time the bubblewrap engine")
    p.add_argument("--files", type=int, default=5000, help="files in the repository of part (b)")
    args = p.parse_args()
    r = bench_docker_ready(args.image, args.runs)
    ratio = r["sandbox_ready_s"] / r["docker_run_true_s"]
    print(f"(a) runs={args.runs} image={args.image}")
    print(f"    worktree + sandbox start + first exec  median {r['sandbox_ready_s'] * 1000:7.1f} ms")
    print(
        f"    docker run --rm --network none true  median {r['docker_run_true_s'] * 1000:7.1f} ms"
    )
    print(f"    ratio {ratio:.2f}x (target <= 1.5x) {'OK' if ratio <= 1.5 else 'OVER'}")
    if args.bwrap:
        print(
            f"    bwrap start + first exec     median {bench_bwrap_ready(args.runs) * 1000:7.1f} ms"
        )
    print(f"(b) second job's checkout vs fresh clone, {args.files} files")
    runs = max(3, args.runs // 2)
    workspace.report(workspace.measure(files=args.files, runs=runs, log=lambda line: print("    " + line)),
                     runs, indent="    ")
    return 0


if __name__ == "__main__":
    sys.exit(main())
