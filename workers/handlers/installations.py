"""Keep the installations table in step with `installation` and `installation_repositories` events."""

from __future__ import annotations

from core.db.models import Installation
from core.db.session import session_scope
from workers.context import JobContext, Outcome


def sync_installation(ctx: JobContext) -> Outcome:
    params = ctx.job.params
    action = params.get("action")
    with session_scope(ctx.settings.database_url) as session:
        row = session.get(Installation, ctx.job.installation_id)
        if row is None:
            row = Installation(id=ctx.job.installation_id, repositories=[])
            session.add(row)
        row.account = params.get("account") or row.account
        repos = [r for r in row.repositories if r not in params.get("removed", [])]
        repos += [r for r in params.get("added", []) if r and r not in repos]
        row.repositories = repos
        row.active = action not in ("deleted", "suspend")
    return Outcome("succeeded", f"installation {ctx.job.installation_id} {action}: {len(repos)} repositories")


HANDLERS = {
    "installation_sync": sync_installation,
}
