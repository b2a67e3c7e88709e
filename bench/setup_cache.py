"""Setup phase of a repository's second job vs its first (lock files unchanged).

For two workflows of the corpus (tests/data/workflows/corpus/) — the starter Python application
(pip installs flake8, pytest and requirements.txt) and Node.js (`npm ci` of jest's 267 packages) —
the job's setup (its steps before the failing one, with the package cache of tests/support/packages.py,
no network) runs in a Docker sandbox for a first job, which stores it in the setup cache; a second
job on another commit with the same lock files restores it instead. Prints both times and the ratio;
target: the second job's setup costs at most a fifth of the first's.

    .venv/bin/python bench/setup_cache.py [--runs 3] [--image qwenfix-sandbox:bookworm]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.packages import build, npm_lock  # noqa: E402
from tests.workflow_corpus import CORPUS, rows  # noqa: E402
from workers.engine.environment import JobSandboxes  # noqa: E402
from workers.engine.setup_cache import SetupCache  # noqa: E402
from workers.engine.workflow_setup import job_environment, setup_script  # noqa: E402
from workers.failure.ci_job import read_failing_job  # noqa: E402
from workers.failure.workflow import locate_step, parse_workflow  # noqa: E402
from workers.sandbox import Limits  # noqa: E402
from workers.sandbox.docker import DockerEngine  # noqa: E402
from workers.sandbox.image import DEFAULT_TAG  # noqa: E402


def worktree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def one_job(engine: DockerEngine, image: str, cache: SetupCache, files: dict[str, str], script: str,
            environment, tmp: Path) -> tuple[float, bool]:
    started = []

    def start(workspace, network=False, mounts=()):
        sandbox = engine.start(workspace, image, Limits(timeout_s=600), {"qwenfix.job": "bench"}, mounts=mounts)
        started.append(sandbox)
        return sandbox

    root = worktree(Path(tempfile.mkdtemp(dir=tmp)), files)
    clock = time.perf_counter()
    with JobSandboxes(environment, start, cache, image) as sandboxes:
        result = sandboxes.setup_runner(script, ".")(root)
        elapsed = time.perf_counter() - clock
        cached = sandboxes.cached
    for sandbox in started:
        sandbox.stop()
    if not result.ok:
        raise SystemExit(f"setup failed:\n{result.output[-2000:]}")
    return elapsed, cached


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--image", default=DEFAULT_TAG)
    args = parser.parse_args()
    packages = build()
    engine = DockerEngine()
    chosen = {row.key: row for row in rows(npm_lock("jest", packages)) if row.key in ("python-app", "node")}
    tmp = Path(tempfile.mkdtemp(prefix="qwenfix-bench-setup-"))
    try:
        for key, row in chosen.items():
            workflow = parse_workflow((CORPUS / row.workflow).read_text())
            step = locate_step(workflow, row.job, row.step, None).step
            job = read_failing_job(workflow, row.job, step)
            script = setup_script(job)
            environment = job_environment(job, package_cache=packages)
            firsts, seconds = [], []
            for run in range(args.runs):
                cache = SetupCache(tmp / f"cache-{key}-{run}", row.repo, keep=3)
                first, cached_first = one_job(engine, args.image, cache, row.base_files(), script, environment, tmp)
                changed = {**row.base_files(), **row.broken}  # another commit, same lock files
                second, cached_second = one_job(engine, args.image, cache, changed, script, environment, tmp)
                assert not cached_first and cached_second
                firsts.append(first)
                seconds.append(second)
            f, s = statistics.median(firsts), statistics.median(seconds)
            print(f"{key:<11} first job's setup {f * 1000:8.0f} ms   second job's {s * 1000:8.1f} ms   "
                  f"ratio {s / f:.4f} ({f / s:,.0f}x faster)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
