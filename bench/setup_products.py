"""Benchmark: giving a stage's worktree the setup's products, each stage getting them exactly as
setup made them — copies for a fresh worktree, then (once a stage is done) keeping the copies its
sandbox left untouched — against hard links to one shared set (what stages got before, which let
one stage poison the next).

    .venv/bin/python bench/setup_products.py [--files 3000] [--mb 60] [--runs 5] [--dir /dev/shm]

The products look like a virtualenv: FILES files of random sizes, about MB megabytes in all, under
`venv/`. Per run: (a) hard links into an empty worktree; (b) copies into an empty worktree (a
station's first stage); (c) the next stage on that worktree: seal, the stage's sandbox rewrites
one file, then carry again (walk, keep, copy one); (d) the walk for special files every reset
makes. Prints medians and ratios against (a). Figures only; nothing asserts on wall-clock time.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workers.engine.setup_phase import SetupProducts  # noqa: E402
from workers.workspace.confined import files, remove_special_files, remove_tree  # noqa: E402


def make_products(root: Path, count: int, megabytes: int) -> None:
    rng = random.Random(7)
    weights = [rng.paretovariate(1.2) for _ in range(count)]
    scale = megabytes * (1 << 20) / sum(weights)
    for i, weight in enumerate(weights):
        path = root / f"venv/lib/python3.11/site-packages/pkg{i % 40:02d}/sub{i % 7}/mod_{i:05d}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(max(1, int(weight * scale))))


def hard_links(source: Path, target: Path, products: set[str]) -> None:
    """What carrying did before: a hard link per product into the next worktree."""
    for rel in sorted(products):
        (target / rel).parent.mkdir(parents=True, exist_ok=True)
        os.link(source / rel, target / rel)


def _timed(fn, times: list[float]) -> None:
    t0 = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t0)


def measure(count: int, megabytes: int, runs: int, directory: Path | None) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="qwenfix-bench-products-", dir=directory) as tmp_s:
        tmp = Path(tmp_s)
        source = tmp / "setup"
        make_products(source, count, megabytes)
        paths = files(source)
        products = SetupProducts(source, frozenset(paths), set())
        one = sorted(paths)[len(paths) // 2]
        linked, copied, kept, walked = [], [], [], []
        target = tmp / "stage"
        for _ in range(runs):
            target.mkdir()
            _timed(lambda: hard_links(source, target, paths), linked)
            remove_tree(target)
            target.mkdir()
            _timed(lambda: products.carry(target), copied)
            products.seal(target)
            with open(target / one, "r+b") as f:  # the stage's sandbox rewrites one file in place
                f.write(b"poisoned")
            _timed(lambda: products.carry(target), kept)
            assert (target / one).read_bytes() == (source / one).read_bytes()
            _timed(lambda: remove_special_files(target), walked)
            remove_tree(target)
    return {"products": len(paths), "hard_links_s": statistics.median(linked), "copies_s": statistics.median(copied),
            "next_stage_s": statistics.median(kept), "special_walk_s": statistics.median(walked)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=3000)
    parser.add_argument("--mb", type=int, default=60)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--dir", type=Path, default=None, help="where the trees go (default: the temp dir)")
    args = parser.parse_args()
    r = measure(args.files, args.mb, args.runs, args.dir)
    a = r["hard_links_s"]
    print(f"setup products: {r['products']} files, about {args.mb} MB; runs: {args.runs} (medians)")
    print(f"  (a) hard links into a worktree (before, poisonable)     {a * 1000:8.0f} ms")
    print(f"  (b) copies into a fresh worktree (a station's first)    {r['copies_s'] * 1000:8.0f} ms"
          f"   {r['copies_s'] / a:5.2f}x")
    print(f"  (c) next stage on that worktree (keep, copy the one)    {r['next_stage_s'] * 1000:8.0f} ms"
          f"   {r['next_stage_s'] / a:5.2f}x")
    print(f"  (d) walk for special files, every reset                 {r['special_walk_s'] * 1000:8.0f} ms")


if __name__ == "__main__":
    main()
