"""Reconcile the installations table with GitHub: every installation of the App (`GET
/app/installations`) and each one's repositories (`GET /installation/repositories`). Runs when
the web side starts and then in its sweep, so a missed or late webhook never leaves the table wrong:
a suspended installation, or one GitHub no longer lists, has its jobs cancelled."""

from __future__ import annotations

from sqlalchemy import select

from core import installations
from core.config import Settings
from core.db.models import Installation
from core.db.session import session_scope
from core.github import GitHubApp
from core.logs import get_logger

log = get_logger("qwenfix.reconcile")


def _repositories(app: GitHubApp, installation_id: int) -> list[str]:
    client = app.installation_client(installation_id)  # keep a reference: namespaces hold it weakly
    pages = client.rest.paginate(client.rest.apps.list_repos_accessible_to_installation,
                                 map_func=lambda response: response.json()["repositories"])
    return [repo["full_name"] for repo in pages]


def reconcile_installations(settings: Settings) -> dict[str, int]:
    """Bring the table in line with GitHub; returns how many installations ended in each status."""
    app = GitHubApp(settings)
    client = app.app_client()
    listed = list(client.rest.paginate(client.rest.apps.list_installations,
                                       map_func=lambda response: response.json()))
    found: dict[int, dict] = {}
    for item in listed:
        status = installations.SUSPENDED if item.get("suspended_at") else installations.ACTIVE
        repos = _repositories(app, item["id"]) if status == installations.ACTIVE else None
        account = item.get("account") or {}
        found[item["id"]] = {"account": account.get("login"), "account_type": account.get("type"),
                             "repositories": repos, "status": status}
    counts = {installations.ACTIVE: 0, installations.SUSPENDED: 0, installations.DELETED: 0}
    with session_scope(settings.database_url) as session:
        for installation_id, values in found.items():
            installations.record(session, installation_id, **values)
            counts[values["status"]] += 1
        gone = session.scalars(select(Installation.id).where(Installation.id.not_in(list(found) or [0]),
                                                           Installation.status != installations.DELETED))
        for installation_id in list(gone):
            installations.record(session, installation_id, status=installations.DELETED)
            counts[installations.DELETED] += 1
    log.info("installations reconciled", **counts)
    return counts
