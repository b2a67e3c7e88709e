"""Deliveries per second held through a chaos run, against the same run without chaos, and what was lost
or done twice.

    python bench/chaos.py [--deliveries 1000] [--repos 4] [--prs 3] [--pg-admin URL]

Runs the scenario of tests/support/chaos.py twice, each on a scratch database and a fresh fake GitHub:
first calm (the baseline), then with chaos — the run's own Redis server restarted empty at 40 % of
the deliveries and two workers SIGKILLed mid-job. Both post the same mix (a fifth of the deliveries
sent twice) to a real `qwenfix serve` with two `qwenfix worker` processes and Docker sandboxes. Prints
figures, not verdicts: deliveries/s of each run and their ratio, and the lost / duplicated counts
(targets: ratio near 1, 0 lost, 0 duplicated).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.pipeline import keypair  # noqa: E402
from bench.scratch import scratch_database  # noqa: E402
from tests.support.chaos import ChaosReport, run_chaos  # noqa: E402
from tests.support.fake_github import FakeGitHub  # noqa: E402
from tests.support.fake_github.server import serve  # noqa: E402
from tests.support.fake_openai import FakeModel, make_app  # noqa: E402
from tests.support.git_http import ServerThread  # noqa: E402


def one_run(chaos: bool, args, private: str, public: str) -> ChaosReport:
    with scratch_database(args.pg_admin) as database_url, tempfile.TemporaryDirectory(prefix="qwenfix-chaos-") as tmp:
        tmp = Path(tmp)
        model = FakeModel()
        model_server = ServerThread(make_app(model)).start()
        model.url = model_server.url
        gh = FakeGitHub(tmp / "repos", 424242, private, public)
        gh_server = serve(gh)
        gh.add_installation(1, "octo")
        try:
            return run_chaos(gh, model, database_url, tmp / "run", chaos=chaos, total=args.deliveries,
                             repos=args.repos, prs_per_repo=args.prs)
        finally:
            gh_server.stop()
            model_server.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--deliveries", type=int, default=1000)
    parser.add_argument("--repos", type=int, default=4)
    parser.add_argument("--prs", type=int, default=3, help="red-build pull requests per repository")
    parser.add_argument("--pg-admin", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    private, public = keypair()
    reports = {}
    for name, chaos in (("calm", False), ("chaos", True)):
        reports[name] = report = one_run(chaos, args, private, public)
        print(f"{name}:")
        for line in report.lines():
            print(f"  {line}")
    calm, chaos = reports["calm"], reports["chaos"]
    ratio = chaos.deliveries_per_s / calm.deliveries_per_s if calm.deliveries_per_s else 0.0
    print(f"deliveries/s held through chaos: {chaos.deliveries_per_s:.0f} vs {calm.deliveries_per_s:.0f} calm "
          f"(ratio {ratio:.2f}); lost {chaos.lost}, duplicated {chaos.duplicated}; "
          f"all jobs ended in {chaos.seconds:.0f} s vs {calm.seconds:.0f} s calm")


if __name__ == "__main__":
    main()
