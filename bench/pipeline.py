"""End-to-end repair job time minus model time minus the repository's own test time, by stage.

Runs real red-build jobs in this process (PostgreSQL, Docker sandboxes, git over smart HTTP) against
the fake GitHub and the scripted model from tests/support, on a small repository:

    python bench/pipeline.py [--jobs 3] [--candidates 1]

The test command's own time is measured in the same run: the median of running it alone in a fresh
sandbox, times the number of times a job runs it. GitHub's pacing of writes (a second between
content-creating requests, its guidance) is waiting, not work: off unless --write-interval says.
Prints figures, not verdicts (target: ≤ 1 s of pipeline overhead per job).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402
from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: E402

from app import intake  # noqa: E402
from app.intents import route  # noqa: E402
from bench.scratch import scratch_database  # noqa: E402
from core.config import Settings  # noqa: E402
from core.db.models import Job  # noqa: E402
from core.db.session import session_scope  # noqa: E402
from tests.repos import BASE_FILES, BROKEN_CALC, REPO, failing_job, workflow_run_event  # noqa: E402
from tests.support.fake_github import FakeGitHub  # noqa: E402
from tests.support.fake_openai import FakeModel, call, finish, make_app  # noqa: E402
from tests.support.git_http import ServerThread  # noqa: E402
from workers import runner  # noqa: E402
from workers.sandbox import Limits  # noqa: E402
from workers.sandbox.engines import select_engine  # noqa: E402

COMMAND = "python3 -m pytest -q"
SCRIPT = [
    call("read_file", path="calc.py"),
    call("edit_file", path="calc.py", old="return a - b", new="return a + b"),
    call("run", command=COMMAND),
    finish("add() now adds."),
]


def keypair() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public


def test_command_seconds(settings: Settings, workdir: Path, runs: int = 5) -> float:
    """The repository's own test time: the command alone in a fresh sandbox, median of runs."""
    engine = select_engine(settings.sandbox_engine, settings.sandbox_image)
    samples = []
    for i in range(runs):
        ws = workdir / f"alone-{i}"
        for name, text in {**BASE_FILES, "calc.py": BROKEN_CALC}.items():
            (ws / name).parent.mkdir(parents=True, exist_ok=True)
            (ws / name).write_text(text)
        sandbox = engine.start(ws, settings.sandbox_image, Limits())
        try:
            samples.append(sandbox.exec(COMMAND).duration_s)
        finally:
            sandbox.stop()
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=3)
    parser.add_argument("--candidates", type=int, default=1)
    parser.add_argument("--pg-admin", default="postgresql://postgres@127.0.0.1:5432/test")
    # GitHub asks for a second between content-creating requests (QWENFIX_GITHUB_WRITE_INTERVAL_S):
    # waiting it asks for, not work of the pipeline; measured apart unless given here
    parser.add_argument("--write-interval", type=float, default=0.0)
    args = parser.parse_args()

    private, public = keypair()
    rows = []
    with scratch_database(args.pg_admin) as database_url, tempfile.TemporaryDirectory(prefix="qwenfix-bench-") as tmp:
        tmp = Path(tmp)
        model = FakeModel()
        model_server = ServerThread(make_app(model)).start()
        model.url = model_server.url
        model.script(SCRIPT)
        gh = FakeGitHub(tmp / "repos", 424242, private, public)  # one GitHub, one worker process
        server = ServerThread(gh.app).start()
        gh.url = gh.server_url = server.url
        gh.add_installation(1, "octo")
        try:
            for i in range(args.jobs):
                rows.append(one_job(i, gh, model, database_url, private, tmp, args.candidates, args.write_interval))
            settings = Settings(_env_file=None, data_dir=tmp / "data")
            alone = test_command_seconds(settings, tmp)
        finally:
            server.stop()
            model_server.stop()

    print(f"test command alone in a sandbox: {alone:.2f} s (median)")
    print(f"{'job':>4}{'total s':>9}{'model s':>9}{'tests s':>9}{'overhead s':>12}   stages (s)")
    overheads = []
    for row in rows:
        tests = row["test_runs"] * alone
        overhead = row["total"] - row["model"] - tests
        overheads.append(overhead)
        stages = ", ".join(f"{k} {v:.2f}" for k, v in row["timings"].items() if k != "total")
        print(f"{row['job']:>4}{row['total']:>9.2f}{row['model']:>9.2f}{tests:>9.2f}{overhead:>12.2f}   {stages}")
    print(f"median pipeline overhead per job: {statistics.median(overheads):.2f} s (target ≤ 1 s); "
          f"test command runs waited for per job: {rows[0]['test_runs']} (+1 on the base, alongside); GitHub write pacing: {args.write_interval} s")
    if len(overheads) > 2:  # job 1 also pays the worker process's one-time imports and first connections
        print(f"  jobs 2..{len(overheads)} (a warm worker): median {statistics.median(overheads[1:]):.2f} s, "
              f"worst {max(overheads[1:]):.2f} s")


def one_job(i, gh, model, database_url, private, tmp, candidates, write_interval) -> dict:
    """A red build on a new repository: the job clones it, so every job pays a first checkout."""
    repo = f"{REPO}{i}"
    files = dict(BASE_FILES, **{".github/qwen.yml": yaml.safe_dump({"repair": {"mode": "commit", "candidates": candidates}})})
    gh.add_repo(repo, files)
    head = gh.push(repo, "feature", {"calc.py": BROKEN_CALC}, parent_branch="main")
    gh.add_pull(repo, 7, head_ref="feature", base_ref="main")
    gh.add_workflow_run(repo, 900 + i, head, jobs=[failing_job(9000 + i)], pull_numbers=(7,), head_branch="feature")
    settings = Settings(_env_file=None, database_url=database_url, app_id="424242", private_key=private,
                        github_api_url=gh.url, llm_base_url=model.base_url, llm_api_key="sk-bench", llm_model="m",
                        data_dir=tmp / "data", sandbox_engine="docker", github_write_interval_s=write_interval)
    payload = workflow_run_event(repo, {"id": 900 + i, "head_sha": head}, (7,))
    with session_scope(database_url) as session:
        _, job, _ = intake.record_delivery(session, str(uuid.uuid4()), "workflow_run", "completed",
                                         route("workflow_run", payload, "bench"))
    before = len(model.requests)
    started = time.monotonic()
    runner.run_job(job.id, settings)
    wall = time.monotonic() - started
    with session_scope(database_url) as session:
        done = session.get(Job, job.id)
    assert done.state == "succeeded", done.outcome
    steps = [s for s in done.trajectory]
    agent_runs = sum(1 for s in steps if s.get("tool") == "run")
    return {
        "job": i + 1, "total": wall, "timings": done.timings,
        "model": sum(s.get("latency_s", 0.0) for s in steps),
        # the runs a job waits for: reproduce + validate + the agent's own; the run on the merge base
        # goes alongside the reproduction, and the reproduction's is the validation's baseline
        "test_runs": 1 + candidates + agent_runs,
        "model_calls": len(model.requests) - before,
    }


if __name__ == "__main__":
    main()
