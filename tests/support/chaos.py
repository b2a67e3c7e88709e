"""An operator's bad day, scripted: red-build pull requests over several repositories, a thousand signed
deliveries (a fifth of them sent twice, several distinct ones about the same failure) posted to a real
`qwenfix serve` while its own Redis server is restarted empty and worker processes are SIGKILLed
mid-job. Everything is real but GitHub and the model: PostgreSQL, Redis (a server of its own on a free
port, never the shared one), `qwenfix serve` and `qwenfix worker` processes, Docker sandboxes.

Used by tests/test_chaos.py (which asserts on the report) and bench/chaos.py (which prints it).
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import redis
import yaml
from sqlalchemy import select

from core.config import Settings
from core.db.models import Delivery, Job
from core.db.session import session_scope
from core.jobs import FINAL
from tests.repos import BASE_FILES, BROKEN_CALC, failing_job, workflow_run_event
from tests.support.fake_openai import call, finish
from workers.sandbox.docker import LABEL_JOB, LABEL_PID, list_sandboxes

ROOT = Path(__file__).resolve().parents[2]
SECRET = "chaos-webhook-secret"
AGENT_FIX = [
    call("edit_file", path="calc.py", old="return a - b", new="return a + b"),
    call("run", command="python3 -m pytest -q"),
    finish("add() subtracted; it now adds."),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class OwnRedis:
    """A redis-server of this run's own, on a free port: restarting it disturbs nobody else."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.workdir = workdir
        self.proc: subprocess.Popen | None = None

    def start(self) -> OwnRedis:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port)
        for _ in range(100):
            try:
                client.ping()
                return self
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def restart(self) -> None:
        """Killed and started again, empty: every message it held is gone."""
        self.stop()
        self.start()

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


def env_of(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QWENFIX_")}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        env[f"QWENFIX_{name.upper()}"] = str(value)
    return env


class Processes:
    """`qwenfix serve` and `qwenfix worker` processes, each in its own process group."""

    def __init__(self, settings: Settings, logs: Path) -> None:
        self.settings, self.logs = settings, logs
        self.workers: list[subprocess.Popen] = []
        self.web: subprocess.Popen | None = None
        self.web_url = ""

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "w")
        return subprocess.Popen([sys.executable, "-m", "app.cli", *argv], cwd=ROOT, env=env_of(self.settings),
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def start_worker(self) -> subprocess.Popen:
        name = f"worker-{len(self.workers)}"
        proc = self._spawn(name, ["worker", "--concurrency", "2"])
        deadline = time.monotonic() + 60
        while "ready." not in (self.logs / f"{name}.log").read_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start:\n{(self.logs / f'{name}.log').read_text()}")
            time.sleep(0.1)
        self.workers.append(proc)
        return proc

    def start_web(self) -> str:
        port = free_port()
        self.web = self._spawn("web", ["serve", "--no-worker", "--host", "127.0.0.1", "--port", str(port)])
        self.web_url = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                httpx.get(self.web_url + "/healthz", timeout=0.5)
                return self.web_url
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("qwenfix serve did not start")

    def kill_worker_of(self, pid: int) -> bool:
        """SIGKILL the worker (with its pool) whose pool process ``pid`` is."""
        try:
            group = os.getpgid(pid)
        except ProcessLookupError:
            return False
        for proc in self.workers:
            if proc.pid == group and proc.poll() is None:
                os.killpg(group, signal.SIGKILL)
                proc.wait()
                return True
        return False

    def stop(self) -> None:
        for proc in [*self.workers, *([self.web] if self.web else [])]:
            if proc.poll() is None:
                proc.terminate()
        for proc in [*self.workers, *([self.web] if self.web else [])]:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@dataclass(frozen=True)
class PullRequest:
    repo: str
    number: int
    head: str
    branch: str
    run_id: int


def build_world(gh, repos: int, prs_per_repo: int) -> list[PullRequest]:
    """Repositories whose pull requests each broke `add()`, with a failed workflow run each."""
    config = yaml.safe_dump({"repair": {"mode": "commit", "candidates": 1}})
    prs = []
    for r in range(repos):
        repo = f"octo/calc{r}"
        gh.add_repo(repo, {**BASE_FILES, ".github/qwen.yml": config})
        for p in range(prs_per_repo):
            number, branch = 10 + p, f"feature-{p}"
            head = gh.push(repo, branch, {"calc.py": BROKEN_CALC, "NOTES.md": f"change {p}\n"}, parent_branch="main")
            gh.add_pull(repo, number, head_ref=branch, base_ref="main")
            run_id = 1000 * (r + 1) + p
            gh.add_workflow_run(repo, run_id, head, jobs=[failing_job(run_id * 10)], pull_numbers=(number,),
                                head_branch=branch)
            prs.append(PullRequest(repo, number, head, branch, run_id))
    return prs


def _base(pr: PullRequest) -> dict:
    owner, name = pr.repo.split("/")
    return {"installation": {"id": 1}, "repository": {"full_name": pr.repo, "name": name, "owner": {"login": owner}},
            "sender": {"login": "contributor", "type": "User"}}


def ignored_event(pr: PullRequest, n: int) -> tuple[str, dict]:
    """Events qwenfix records and ignores, of the kinds a busy repository sends."""
    kind = n % 7
    if kind == 0:
        payload = workflow_run_event(pr.repo, {"id": pr.run_id + 500 + n, "head_sha": pr.head}, (pr.number,),
                                     head_branch=pr.branch, workflow_id=90 + n % 5)
        payload["workflow_run"]["conclusion"] = "success"
        return "workflow_run", payload
    if kind == 1:
        payload = workflow_run_event(pr.repo, {"id": pr.run_id, "head_sha": pr.head}, (pr.number,), head_branch=pr.branch)
        payload["action"], payload["workflow_run"]["conclusion"] = "requested", None
        return "workflow_run", payload
    if kind == 2:
        return "issue_comment", {**_base(pr), "action": "created", "issue": {"number": pr.number, "pull_request": {}},
                                 "comment": {"id": 700_000 + n, "body": f"Looks good to me ({n})"}}
    if kind == 3:
        return "pull_request", {**_base(pr), "action": "labeled", "number": pr.number,
                                "label": {"name": "ci"}, "pull_request": {"number": pr.number, "head": {"sha": pr.head}}}
    if kind == 4:
        return "check_run", {**_base(pr), "action": "completed", "check_run": {
            "id": 800_000 + n, "name": "test", "head_sha": pr.head, "conclusion": "failure",
            "app": {"id": 15368, "slug": "github-actions"}, "pull_requests": [{"number": pr.number}]}}
    if kind == 5:
        return "push", {**_base(pr), "ref": f"refs/heads/{pr.branch}", "after": pr.head}
    return "issue_comment", {**_base(pr), "action": "edited", "issue": {"number": pr.number, "pull_request": {}},
                             "comment": {"id": 900_000 + n, "body": "/qwen fix"}}


@dataclass(frozen=True)
class Sent:
    delivery: str
    event: str
    body: bytes
    pr: PullRequest | None  # set for the deliveries that must make (or join) the PR's job


def deliveries(prs: list[PullRequest], total: int, duplicate_share: float, seed: int) -> list[Sent]:
    """``total`` deliveries: two distinct ones per PR about its failure (the run and its re-run),
    ignored events, and ``duplicate_share`` of them sent a second time (same delivery id), later."""
    rng = random.Random(seed)
    unique: list[Sent] = []
    for pr in prs:
        for attempt in (1, 2):
            payload = workflow_run_event(pr.repo, {"id": pr.run_id, "head_sha": pr.head}, (pr.number,),
                                         head_branch=pr.branch)
            payload["workflow_run"]["run_attempt"] = attempt
            unique.append(Sent(str(uuid.uuid4()), "workflow_run", json.dumps(payload).encode(), pr))
    duplicates = int(total * duplicate_share)
    n = 0
    while len(unique) < total - duplicates:
        event, payload = ignored_event(prs[n % len(prs)], n)
        unique.append(Sent(str(uuid.uuid4()), event, json.dumps(payload).encode(), None))
        n += 1
    rng.shuffle(unique)
    order = list(unique)
    for _ in range(duplicates):
        original = rng.randrange(len(unique))
        at = order.index(unique[original])
        order.insert(rng.randint(at + 1, len(order)), unique[original])
    return order


@dataclass
class ChaosReport:
    deliveries: int = 0
    unique: int = 0
    duplicates: int = 0
    relevant: int = 0
    answers: Counter = field(default_factory=Counter)
    post_seconds: float = 0.0
    recorded: int = 0
    pull_requests: int = 0
    jobs: int = 0
    states: Counter = field(default_factory=Counter)
    takeovers: int = 0
    retries: int = 0
    lost: int = 0  # relevant PRs without a job that ended
    duplicated: int = 0  # PRs with more than one job, comment thread or fix commit
    comments: dict = field(default_factory=dict)
    fix_commits: dict = field(default_factory=dict)
    sandboxes_left: int = 0
    slots_held: int = 0
    redis_restarts: int = 0
    workers_killed: int = 0
    seconds: float = 0.0

    @property
    def deliveries_per_s(self) -> float:
        return self.deliveries / self.post_seconds if self.post_seconds else 0.0

    def lines(self) -> list[str]:
        return [
            f"deliveries {self.deliveries} ({self.unique} unique, {self.duplicates} sent twice, {self.relevant} about "
            f"{self.pull_requests} red builds) in {self.post_seconds:.1f} s: {self.deliveries_per_s:.0f} deliveries/s; "
            f"answers {dict(self.answers)}",
            f"recorded deliveries {self.recorded}; jobs {self.jobs} {dict(self.states)}; takeovers {self.takeovers}; "
            f"retries {self.retries}",
            f"Redis restarted {self.redis_restarts}x, workers SIGKILLed mid-job {self.workers_killed}x",
            f"lost {self.lost}, duplicated {self.duplicated}; comment threads per PR "
            f"{sorted(Counter(self.comments.values()).items())}, fix commits per PR "
            f"{sorted(Counter(self.fix_commits.values()).items())}; sandboxes left {self.sandboxes_left}, "
            f"worktree slots held {self.slots_held}; total {self.seconds:.0f} s",
        ]


def chaos_settings(gh, model, database_url: str, broker_url: str, workdir: Path) -> Settings:
    return Settings(
        _env_file=None, webhook_secret=SECRET, data_dir=workdir / "data", mirror_dir=workdir / "mirrors",
        database_url=database_url, broker_url=broker_url, app_id=str(gh.app_id), private_key=gh.private_key_pem,
        github_api_url=gh.url, public_url="http://qwenfix.test", llm_base_url=model.base_url,
        llm_api_key="sk-chaos-model-key-0123456789", llm_model="qwen3-coder-test", llm_max_retries=1,
        sandbox_engine="docker", sandbox_command_timeout_s=120, sweep_interval_s=0.5, job_lease_s=6,
        github_write_interval_s=0.02, github_secondary_backoff_s=0.5, redeliver_interval_s=0, log_level="INFO",
    )


def run_chaos(gh, model, database_url: str, workdir: Path, *, chaos: bool = True, total: int = 1000,
              repos: int = 4, prs_per_repo: int = 3, duplicate_share: float = 0.2, kills: int = 2,
              seed: int = 13, timeout_s: float = 240.0) -> ChaosReport:
    started = time.monotonic()
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "logs").mkdir(exist_ok=True)
    model.script(AGENT_FIX)
    prs = build_world(gh, repos, prs_per_repo)
    sends = deliveries(prs, total, duplicate_share, seed)
    report = ChaosReport(deliveries=len(sends), unique=len({s.delivery for s in sends}),
                         relevant=len({s.delivery for s in sends if s.pr}), pull_requests=len(prs))
    report.duplicates = report.deliveries - report.unique
    own_redis = OwnRedis(workdir).start()
    settings = chaos_settings(gh, model, database_url, own_redis.url, workdir)
    procs = Processes(settings, workdir / "logs")
    try:
        procs.start_worker()
        procs.start_worker()
        url = procs.start_web() + "/webhooks/github"
        killer = threading.Thread(target=_kill_workers_mid_job, args=(procs, settings, kills, report), daemon=True)
        if chaos:
            killer.start()
        post_started = time.monotonic()
        _post_all(url, sends, report, lambda: _restart(own_redis, report) if chaos else None)
        report.post_seconds = time.monotonic() - post_started
        if chaos:
            killer.join(timeout=timeout_s)
        _wait_until_every_job_ends(settings, timeout_s - (time.monotonic() - started))
        _count(report, settings, gh, prs, sends)
    finally:
        procs.stop()
        own_redis.stop()
    report.seconds = time.monotonic() - started
    return report


def _post_all(url: str, sends: list[Sent], report: ChaosReport, at_40_percent) -> None:
    lock = threading.Lock()
    posted = [0]
    trigger = int(len(sends) * 0.4)

    def post(item: Sent, client: httpx.Client) -> int:
        signature = "sha256=" + hmac.new(SECRET.encode(), item.body, hashlib.sha256).hexdigest()
        headers = {"Content-Type": "application/json", "X-GitHub-Event": item.event,
                   "X-GitHub-Delivery": item.delivery, "X-Hub-Signature-256": signature}
        for _ in range(3):  # a connection refused is what GitHub would log as failed; retried here
            try:
                return client.post(url, content=item.body, headers=headers, timeout=30).status_code
            except httpx.TransportError:
                time.sleep(0.2)
        return 0

    def worker(chunk: list[Sent]) -> None:
        with httpx.Client() as client:
            for item in chunk:
                status = post(item, client)
                with lock:
                    report.answers[status] += 1
                    posted[0] += 1
                    fire = posted[0] == trigger
                if fire:
                    at_40_percent()

    lanes = 8
    chunks = [sends[i::lanes] for i in range(lanes)]
    with ThreadPoolExecutor(lanes) as pool:
        list(pool.map(worker, chunks))


def _restart(own_redis: OwnRedis, report: ChaosReport) -> None:
    own_redis.restart()
    report.redis_restarts += 1


def _kill_workers_mid_job(procs: Processes, settings: Settings, kills: int, report: ChaosReport) -> None:
    """Twice: wait for a job running in a sandbox, SIGKILL its worker, start a replacement."""
    killed_jobs: set[str] = set()
    deadline = time.monotonic() + 180
    while report.workers_killed < kills and time.monotonic() < deadline:
        time.sleep(0.3)
        with session_scope(settings.database_url) as session:
            running = {str(i) for i in session.scalars(select(Job.id).where(Job.state == "running"))}
        for sandbox in _own_sandboxes(settings):  # labelled with its job and the process running it
            labels = sandbox.labels or {}
            job, pid = labels.get(LABEL_JOB, ""), labels.get(LABEL_PID, "")
            if job in running and job not in killed_jobs and pid.isdigit():
                if procs.kill_worker_of(int(pid)):
                    killed_jobs.add(job)
                    report.workers_killed += 1
                    procs.start_worker()
                break


def _own_sandboxes(settings: Settings) -> list:
    """Sandboxes whose workspace is under this run's data dir (other runs share the engine)."""
    root = str(settings.data_dir.resolve())
    return [c for c in list_sandboxes()
            if any(str(m.get("Source", "")).startswith(root) for m in c.attrs.get("Mounts") or [])]


def _wait_until_every_job_ends(settings: Settings, timeout_s: float) -> None:
    deadline = time.monotonic() + max(timeout_s, 10)
    while time.monotonic() < deadline:
        with session_scope(settings.database_url) as session:
            open_jobs = session.scalars(select(Job.id).where(Job.state.not_in(FINAL))).all()
        if not open_jobs:
            return
        time.sleep(0.5)


def _count(report: ChaosReport, settings: Settings, gh, prs: list[PullRequest], sends: list[Sent]) -> None:
    with session_scope(settings.database_url) as session:
        all_jobs = list(session.scalars(select(Job)))
        deliveries_by_id = {d.id: d for d in session.scalars(select(Delivery))}
    report.recorded = len(deliveries_by_id)
    report.jobs = len(all_jobs)
    report.states = Counter(j.state for j in all_jobs)
    report.takeovers = sum(j.takeovers for j in all_jobs)
    report.retries = sum(j.retries for j in all_jobs)
    by_pr: dict[tuple[str, int], list[Job]] = {}
    for job in all_jobs:
        by_pr.setdefault((job.repo, job.pr_number), []).append(job)
    for pr in prs:
        jobs_here = by_pr.get((pr.repo, pr.number), [])
        comments = len(gh.bot_comments(pr.repo, pr.number))
        commits = int(subprocess.run(
            ["git", "--git-dir", str(gh.repos[pr.repo].git_dir), "rev-list", "--count", f"{pr.head}..refs/heads/{pr.branch}"],
            capture_output=True, text=True, check=True).stdout.strip())
        report.comments[f"{pr.repo}#{pr.number}"] = comments
        report.fix_commits[f"{pr.repo}#{pr.number}"] = commits
        # every delivery about this failure recorded, and pointing at the PR's one job, which ended
        recorded = [deliveries_by_id.get(s.delivery) for s in sends if s.pr == pr]
        ended = [j for j in jobs_here if j.state in FINAL]
        if (len(ended) != len(jobs_here) or not jobs_here
                or any(d is None or d.job_id not in {j.id for j in jobs_here} for d in recorded)):
            report.lost += 1
        if len(jobs_here) > 1 or comments > 1 or commits > 1:
            report.duplicated += 1
    report.sandboxes_left = len(_own_sandboxes(settings))
    report.slots_held = _slots_held(settings.data_dir / "worktrees")


def _slots_held(folder: Path) -> int:
    held = 0
    for lock in folder.glob("*.lock"):
        fd = os.open(lock, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(fd, fcntl.LOCK_UN)
        except OSError:
            held += 1
        finally:
            os.close(fd)
    return held
