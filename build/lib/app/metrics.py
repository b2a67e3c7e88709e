"""Prometheus metrics: counters for webhook answers; job counts and delivered fixes' outcomes (per
repository and model, see app/report.py) read from the database at scrape time."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, select

from app.report import fix_table
from core.db.session import session_scope

REGISTRY = CollectorRegistry()
WEBHOOKS = Counter(
    "qwenfix_webhooks_total", "Webhook deliveries by event and answer", ["event", "result"], registry=REGISTRY
)


class JobCollector:
    """Jobs by kind and state, from the database: workers run elsewhere, the table is the truth."""

    database_url = ""

    def collect(self):
        from core.db.models import Job
        from core.db.session import session_scope

        gauge = GaugeMetricFamily("qwenfix_jobs", "Jobs by kind and state", labels=["kind", "state"])
        try:
            with session_scope(self.database_url) as session:
                rows = session.execute(select(Job.kind, Job.state, func.count()).group_by(Job.kind, Job.state))
                for kind, state, count in rows:
                    gauge.add_metric([kind, state], count)
        except Exception:  # noqa: BLE001 — a scrape must not fail because the database is down
            pass
        yield gauge


class FixCollector:
    """Every delivered fix so far, per repository and model: what became of it and what it cost."""

    database_url = ""
    COUNTS = (("delivered", "delivered"), ("accepted", "accepted"), ("rejected", "rejected"),
              ("green_in_ci", "ci_green"), ("red_in_ci", "ci_red"))

    def collect(self):
        labels = ["repo", "model"]
        fixes = GaugeMetricFamily("qwenfix_fixes", "Delivered fixes by outcome", labels=[*labels, "outcome"])
        median = GaugeMetricFamily("qwenfix_fix_red_to_fix_seconds_median",
                                   "Median time from red build to delivered fix", labels=labels)
        tokens = GaugeMetricFamily("qwenfix_fix_tokens_per_accepted",
                                   "Model tokens spent by repair and fix jobs per accepted fix", labels=labels)
        cost = GaugeMetricFamily("qwenfix_fix_cost_per_accepted",
                                 "Model cost of repair and fix jobs per accepted fix", labels=labels)
        try:
            with session_scope(self.database_url) as session:
                rows = fix_table(session)
        except Exception:  # noqa: BLE001 — a scrape must not fail because the database is down
            rows = []
        for row in rows:
            key = [row.repo, row.model]
            for field, outcome in self.COUNTS:
                fixes.add_metric([*key, outcome], getattr(row, field))
            if row.median_red_to_fix_s is not None:
                median.add_metric(key, row.median_red_to_fix_s)
            if row.tokens_per_accepted_fix is not None:
                tokens.add_metric(key, row.tokens_per_accepted_fix)
            if row.cost_per_accepted_fix is not None:
                cost.add_metric(key, row.cost_per_accepted_fix)
        yield from (fixes, median, tokens, cost)


_jobs = JobCollector()
_fixes = FixCollector()
REGISTRY.register(_jobs)
REGISTRY.register(_fixes)


def render(database_url: str) -> bytes:
    _jobs.database_url = _fixes.database_url = database_url
    return generate_latest(REGISTRY)
