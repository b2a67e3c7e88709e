"""Keep the installations table in step with `installation` and `installation_repositories` events.

A suspended or deleted installation's jobs are cancelled (core/installations.py); unsuspending
makes it active again.
"""

from __future__ import annotations

from core import installations
from core.db.session import session_scope
from workers.context import JobContext, Outcome

STATUS_AFTER = {  # installation.<action> -> status; other actions leave the status as it was
    "created": installations.ACTIVE,
    "unsuspend": installations.ACTIVE,
    "new_permissions_accepted": installations.ACTIVE,
    "suspend": installations.SUSPENDED,
    "deleted": installations.DELETED,
}


def sync_installation(ctx: JobContext) -> Outcome:
    params = ctx.job.params
    action = params.get("action")
    status = STATUS_AFTER.get(action) if params.get("event") == "installation" else None
    with session_scope(ctx.settings.database_url) as session:
        row = installations.record(session, ctx.job.installation_id, account=params.get("account"),
                                   status=status)
        if action == "created":
            row = installations.record(session, row.id, repositories=params.get("added", []))
        else:
            row = installations.change_repositories(session, row.id, params.get("added", []),
                                                    params.get("removed", []))
        count, now = len(row.repositories), row.status
    return Outcome("succeeded", f"installation {ctx.job.installation_id} {action}: {now}, "
                                f"{count} repositories")


HANDLERS = {
    installations.SYNC_KIND: sync_installation,
}
