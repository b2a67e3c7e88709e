"""Missed webhook deliveries, recovered.

GitHub does not send a failed delivery again by itself. When the app was down or refused deliveries
(a 5xx, a timeout), the sweep asks GitHub for the App's recent deliveries (``GET
/app/hook/deliveries``, newest first, cursor-paginated) and, for every event (GUID) whose attempts
all failed (a ``status`` other than "OK") and that the app never recorded, asks for one more attempt
(``POST /app/hook/deliveries/{id}/attempts``). The request is written down first (``redeliveries``,
keyed by GUID), so no event is asked twice, whichever web process sweeps.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from core.config import Settings
from core.db.models import Delivery, Redelivery
from core.db.session import session_scope
from core.github import GitHubApp
from core.logs import get_logger

log = get_logger("qwenfix.redeliveries")
OVERLAP = timedelta(minutes=10)  # each look reaches back past the previous one's start
MAX_PAGES = 30  # 3,000 deliveries per look at most


@dataclass(frozen=True)
class Attempt:
    """One delivery attempt as GitHub lists it (``hook-delivery-item``)."""

    id: int
    guid: str
    delivered_at: datetime
    status: str
    status_code: int
    event: str | None = None
    action: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "OK"


def to_redeliver(attempts: Iterable[Attempt], recorded: set[str]) -> list[Attempt]:
    """For each event whose every attempt failed and that the app has not recorded (or already
    asked for), its latest failed attempt — the one to redeliver."""
    latest: dict[str, Attempt] = {}
    succeeded: set[str] = set()
    for attempt in attempts:
        if attempt.ok:
            succeeded.add(attempt.guid)
        elif attempt.guid not in latest or attempt.delivered_at > latest[attempt.guid].delivered_at:
            latest[attempt.guid] = attempt
    return [a for guid, a in sorted(latest.items(), key=lambda kv: kv[1].delivered_at)
            if guid not in succeeded and guid not in recorded]


class MissedDeliveries:
    """The sweep's look at GitHub's delivery log, every ``redeliver_interval_s``."""

    def __init__(self, settings: Settings, app: GitHubApp | None = None, clock=time.monotonic) -> None:
        self.settings = settings
        self._app = app
        self._clock = clock
        self._next_look = 0.0
        self._last_look: datetime | None = None  # start of the previous complete look

    def due(self) -> bool:
        interval = self.settings.redeliver_interval_s
        return interval > 0 and bool(self.settings.app_id) and self._clock() >= self._next_look

    def recover(self) -> int:
        """One look: redeliver what was missed since the previous look (the first: the lookback).
        Returns how many redeliveries were asked for."""
        self._next_look = self._clock() + self.settings.redeliver_interval_s
        started = datetime.now(timezone.utc)
        since = (self._last_look - OVERLAP) if self._last_look else started - timedelta(hours=self.settings.redeliver_lookback_h)
        app = self._app = self._app or GitHubApp(self.settings)
        client = app.app_client()  # keep a reference: githubkit namespaces hold it weakly
        attempts = list(_attempts_since(client, since))
        failed_guids = {a.guid for a in attempts if not a.ok}
        with session_scope(self.settings.database_url) as session:
            recorded = set(session.scalars(select(Delivery.id).where(Delivery.id.in_(failed_guids)))) if failed_guids else set()
            asked = set(session.scalars(select(Redelivery.guid).where(Redelivery.guid.in_(failed_guids)))) if failed_guids else set()
        asked_now = 0
        for attempt in to_redeliver(attempts, recorded | asked):
            if not self._claim(attempt):
                continue  # another web process asked for it
            try:
                client.rest.apps.redeliver_webhook_delivery(attempt.id)
                asked_now += 1
                log.info("asked GitHub to redeliver a missed delivery", guid=attempt.guid, gh_event=attempt.event,
                         status=attempt.status)
            except Exception as exc:  # noqa: BLE001 — not asked after all: the next look tries again
                log.warning("could not ask for a redelivery", guid=attempt.guid, error=type(exc).__name__)
                with session_scope(self.settings.database_url) as session:
                    session.execute(delete(Redelivery).where(Redelivery.guid == attempt.guid))
        self._last_look = started
        return asked_now

    def _claim(self, attempt: Attempt) -> bool:
        try:
            with session_scope(self.settings.database_url) as session:
                session.add(Redelivery(guid=attempt.guid, delivery_id=attempt.id, event=attempt.event,
                                       action=attempt.action, status=attempt.status))
            return True
        except IntegrityError:
            return False


def _attempts_since(client, since: datetime) -> Iterator[Attempt]:
    """GitHub's delivery log, newest first, back to ``since``."""
    cursor = None
    for _ in range(MAX_PAGES):
        kwargs = {"per_page": 100, **({"cursor": cursor} if cursor else {})}
        response = client.rest.apps.list_webhook_deliveries(**kwargs)
        items = response.parsed_data
        for item in items:
            when = item.delivered_at if item.delivered_at.tzinfo else item.delivered_at.replace(tzinfo=timezone.utc)
            if when < since:
                return
            yield Attempt(item.id, item.guid, when, item.status, item.status_code, item.event, item.action)
        cursor = _next_cursor(response.headers.get("link", ""))
        if not items or not cursor:
            return


def _next_cursor(link: str) -> str | None:
    """The ``cursor`` of the rel="next" URL in a Link header."""
    for part in link.split(","):
        if 'rel="next"' in part and "<" in part and ">" in part:
            url = part[part.index("<") + 1:part.index(">")]
            values = parse_qs(urlsplit(url).query).get("cursor")
            if values:
                return values[0]
    return None
