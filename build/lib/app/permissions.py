"""What a person may see and do, as GitHub says through their own token: the repositories of the
App's installations they can read (`GET /user/installations` and
`/user/installations/{id}/repositories`), with their permission on each. Answers are reused for
``QWENFIX_ACCESS_CACHE_S`` (minutes, never forever); actions ask GitHub afresh."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from app import sessions
from core.config import Settings
from core.github import SignInError, user_repositories
from core.logs import get_logger

log = get_logger("qwenfix.permissions")
WRITE = ("push", "maintain", "admin")  # the same roles `/qwen` commands accept


@dataclass(frozen=True)
class Access:
    repositories: dict[str, dict[str, bool]] = field(default_factory=dict)  # lower-cased full names
    signed_out: bool = False  # GitHub no longer accepts their token: they must sign in again

    def can_read(self, repo: str | None) -> bool:
        return bool(repo) and repo.lower() in self.repositories

    def can_write(self, repo: str | None) -> bool:
        permissions = self.repositories.get((repo or "").lower(), {})
        return any(permissions.get(name) for name in WRITE)

    @property
    def readable(self) -> list[str]:
        return sorted(self.repositories)


_cache: dict[tuple[str, str], tuple[float, Access]] = {}
_lock = threading.Lock()


def access_of(session: Session, settings: Settings, login: str, fresh: bool = False) -> Access:
    key = (settings.github_api_url, login.lower())
    with _lock:
        cached = _cache.get(key)
    if cached and not fresh and time.monotonic() - cached[0] < settings.access_cache_s:
        return cached[1]
    credentials = sessions.credentials_of(session, settings, login)
    if credentials is None:
        access = Access(signed_out=True)
    else:
        try:
            found, renewed = user_repositories(settings, credentials)
            access = Access({name.lower(): perms for name, perms in found.items()})
            if renewed != credentials:
                sessions.keep_credentials(session, settings, login, renewed)
        except SignInError as exc:
            log.info("GitHub sign-in no longer valid", login=login, reason=str(exc))
            access = Access(signed_out=True)
    with _lock:
        _cache[key] = (time.monotonic(), access)
    return access


def forget(login: str) -> None:
    """Drop what is known about ``login`` (they signed out, or in again)."""
    with _lock:
        for key in [k for k in _cache if k[1] == login.lower()]:
            del _cache[key]
