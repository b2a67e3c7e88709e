"""Signed deliveries per second through POST /webhooks/github (verify, record, enqueue) against a bare
FastAPI endpoint that answers 200, same server settings, same run; then p50/p99 latency at a fixed rate.

    python bench/webhook_ingest.py [--seconds 5] [--rate 200] [--database-url …] [--broker-url …]

Prints ratios, not verdicts. Uses PostgreSQL and Redis on 127.0.0.1 by default (a scratch database).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
SECRET = "bench-secret"
BARE_APP = """
from fastapi import FastAPI, Request
app = FastAPI()
@app.post("/webhooks/github")
async def bare(request: Request):
    await request.body()
    return {"ok": True}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def payload(i: int) -> bytes:
    sha = hashlib.sha1(str(i).encode()).hexdigest()
    return json.dumps({
        "action": "completed", "installation": {"id": 1}, "repository": {"full_name": "bench/repo"},
        "sender": {"login": "u", "type": "User"},
        "workflow_run": {"id": i, "head_sha": sha, "conclusion": "failure", "workflow_id": 1, "name": "CI",
                         "path": ".github/workflows/ci.yml", "head_branch": "main", "pull_requests": []},
    }).encode()


def signed(i: int) -> tuple[bytes, dict]:
    body = payload(i)
    return body, {"X-GitHub-Event": "workflow_run", "X-GitHub-Delivery": str(uuid.uuid4()), "Content-Type": "application/json",
                  "X-Hub-Signature-256": "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()}


def start_server(target: str, env: dict, cwd: Path, workers: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", target, "--port", str(port), "--log-level", "warning", "--no-access-log",
            "--workers", str(workers)]
    if target.endswith("create_app"):
        argv.append("--factory")
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            httpx.get(url + "/healthz", timeout=0.2)
            return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError("server did not start")


async def throughput(url: str, seconds: float, concurrency: int = 32) -> float:
    done, counter = 0, iter(range(10**9))
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient(timeout=10) as client:
        async def worker():
            nonlocal done
            while time.monotonic() < deadline:
                body, headers = signed(next(counter))
                response = await client.post(url + "/webhooks/github", content=body, headers=headers)
                assert response.status_code in (200, 202), response.text
                done += 1
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done / seconds


async def latency(url: str, seconds: float, rate: float) -> list[float]:
    samples: list[float] = []
    async with httpx.AsyncClient(timeout=10) as client:
        async def one(i):
            body, headers = signed(10**8 + i)
            t0 = time.perf_counter()
            await client.post(url + "/webhooks/github", content=body, headers=headers)
            samples.append(time.perf_counter() - t0)
        tasks, start = [], time.monotonic()
        for i in range(int(seconds * rate)):
            await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
    return samples


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(p * len(values)))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes, for both servers")
    parser.add_argument("--pg-admin", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--broker-url", default="redis://127.0.0.1:6379/8")
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT))
    from bench.scratch import scratch_database

    with scratch_database(args.pg_admin) as database_url:
        results = measure(args, database_url)
    report(args, results)


def measure(args, database_url: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QWENFIX_")}
    env.update(QWENFIX_WEBHOOK_SECRET=SECRET, QWENFIX_DATABASE_URL=database_url, QWENFIX_BROKER_URL=args.broker_url,
               QWENFIX_LOG_LEVEL="WARNING", PYTHONPATH=str(ROOT))
    bare_dir = Path("/tmp") / f"qwenfix-bench-{uuid.uuid4().hex[:6]}"
    bare_dir.mkdir()
    (bare_dir / "bare_app.py").write_text(BARE_APP + "\n@app.get('/healthz')\nasync def h():\n    return {}\n")
    results = {}
    try:
        for label, target, cwd in (("bare endpoint", "bare_app:app", bare_dir), ("qwenfix webhook", "app.main:create_app", ROOT)):
            proc, url = start_server(target, env, cwd, args.workers)
            try:
                asyncio.run(throughput(url, 1.0))  # warm up
                rps = asyncio.run(throughput(url, args.seconds))
                lat = asyncio.run(latency(url, args.seconds, args.rate))
                results[label] = (rps, pct(lat, 0.5), pct(lat, 0.99))
            finally:
                proc.terminate()
                proc.wait()
    finally:
        subprocess.run(["redis-cli", "-n", args.broker_url.rsplit("/", 1)[1], "flushdb"], capture_output=True)
    return results


def report(args, results: dict) -> None:
    print(f"uvicorn workers: {args.workers} (both servers)")
    print(f"{'':18}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}   (latency at {args.rate:.0f} req/s)")
    for label, (rps, p50, p99) in results.items():
        print(f"{label:18}{rps:>10.0f}{p50:>10.1f}{p99:>10.1f}")
    ratio = results["qwenfix webhook"][0] / results["bare endpoint"][0]
    print(f"throughput ratio qwenfix/bare: {ratio:.2f} (target ≥ 0.6); qwenfix p99 at {args.rate:.0f} req/s: "
          f"{results['qwenfix webhook'][2]:.1f} ms (target ≤ 25 ms)")


if __name__ == "__main__":
    main()
