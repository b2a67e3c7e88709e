"""Prometheus metrics: counters for webhook answers, and job counts read from the database at scrape time."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, select

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


_jobs = JobCollector()
REGISTRY.register(_jobs)


def render(database_url: str) -> bytes:
    _jobs.database_url = database_url
    return generate_latest(REGISTRY)
