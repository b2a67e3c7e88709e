"""Signed-in browsers and API clients: session cookies, CSRF tokens, the OAuth `state` cookie,
personal API tokens, and people's GitHub tokens encrypted at rest.

The session cookie carries a random key signed with the server's secret (HttpOnly, SameSite=Lax,
Secure when the public URL is https); the database keeps only the key's hash, so signing out (or
deleting the row) ends the session. API tokens are shown once and stored as their SHA-256.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import asdict
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from fastapi import Response
from itsdangerous import BadSignature, SignatureExpired, TimestampSigner
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from core.config import Settings
from core.db.models import ApiToken, Person, WebSession, utcnow
from core.github import GitHubUser, UserCredentials
from core.jobs import as_aware

SESSION_COOKIE = "qwenfix_session"
STATE_COOKIE = "qwenfix_oauth_state"
STATE_MAX_AGE_S = 600
TOKEN_PREFIX = "qwf_"
SECRET_FILE = "session-secret"


def signing_secret(settings: Settings) -> str:
    """QWENFIX_SESSION_SECRET, or a random secret kept (0600) in the data dir."""
    configured = settings.session_secret.get_secret_value()
    return configured or _secret_file(Path(settings.data_dir).resolve())


@lru_cache(maxsize=8)
def _secret_file(data_dir: Path) -> str:
    path = data_dir / SECRET_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first
            return path.read_text().strip()
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


def _signer(settings: Settings, purpose: str) -> TimestampSigner:
    return TimestampSigner(signing_secret(settings), salt=f"qwenfix.{purpose}")


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def set_cookie(response: Response, settings: Settings, name: str, value: str, max_age: int) -> None:
    response.set_cookie(name, value, max_age=max_age, httponly=True, samesite="lax",
                        secure=settings.secure_cookies, path="/")


# ---------------------------------------------------------------------------- sign-in state


def start_sign_in(settings: Settings, response: Response, next_path: str) -> str:
    """A fresh OAuth ``state``, remembered with where to go afterwards in a signed cookie."""
    state = secrets.token_urlsafe(24)
    value = _signer(settings, "state").sign(json.dumps([state, next_path])).decode()
    set_cookie(response, settings, STATE_COOKIE, value, STATE_MAX_AGE_S)
    return state


def finish_sign_in(settings: Settings, cookie: str | None, state: str) -> str | None:
    """Where to go after signing in, when ``state`` is the one this browser was given; else None."""
    if not cookie or not state:
        return None
    try:
        expected, next_path = json.loads(
            _signer(settings, "state").unsign(cookie, max_age=STATE_MAX_AGE_S))
    except (BadSignature, SignatureExpired, ValueError):
        return None
    return next_path if secrets.compare_digest(str(expected), state) else None


def safe_next(path: str | None) -> str:
    """Only a path on this site (never //other.host or a full URL)."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path:
        return "/"
    return path


# ---------------------------------------------------------------------------- sessions


def create_session(session: Session, settings: Settings, response: Response, user: GitHubUser,
                   credentials: UserCredentials) -> None:
    remember(session, settings, user, credentials)
    key = secrets.token_urlsafe(32)
    days = timedelta(days=settings.session_days)
    session.add(WebSession(key_hash=_hash(key), login=user.login, expires_at=utcnow() + days))
    value = _signer(settings, "session").sign(key).decode()
    set_cookie(response, settings, SESSION_COOKIE, value, int(days.total_seconds()))


def session_key(settings: Settings, cookie: str | None) -> str | None:
    """The session key a cookie carries, if the server signed it."""
    if not cookie:
        return None
    try:
        return _signer(settings, "session").unsign(
            cookie, max_age=int(settings.session_days * 86400)).decode()
    except (BadSignature, SignatureExpired):
        return None


def session_login(session: Session, key: str) -> str | None:
    row = session.get(WebSession, _hash(key))
    if row is None or as_aware(row.expires_at) <= utcnow():
        return None
    return row.login


def end_session(session: Session, key: str | None) -> None:
    if key:
        session.execute(delete(WebSession).where(WebSession.key_hash == _hash(key)))


def csrf_token(settings: Settings, key: str) -> str:
    """What a signed-in page's forms carry back: tied to the session, useless elsewhere."""
    return hmac.new(signing_secret(settings).encode(), f"csrf:{key}".encode(), "sha256").hexdigest()


def csrf_ok(settings: Settings, key: str | None, token: str | None) -> bool:
    return bool(key and token) and hmac.compare_digest(csrf_token(settings, key), token)


# ---------------------------------------------------------------------------- GitHub tokens at rest


def _fernet(settings: Settings) -> Fernet:
    digest = hashlib.sha256(f"qwenfix.credentials:{signing_secret(settings)}".encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def remember(session: Session, settings: Settings, user: GitHubUser,
             credentials: UserCredentials) -> None:
    data = {k: v.isoformat() if isinstance(v, datetime) else v for k, v in asdict(credentials).items()}
    sealed = _fernet(settings).encrypt(json.dumps(data).encode()).decode()
    row = session.get(Person, user.login)
    if row is None:
        session.add(Person(login=user.login, github_id=user.github_id, credentials=sealed))
    else:
        row.github_id, row.credentials, row.signed_in_at = user.github_id, sealed, utcnow()


def credentials_of(session: Session, settings: Settings, login: str) -> UserCredentials | None:
    row = session.get(Person, login)
    if row is None:
        return None
    try:
        data = json.loads(_fernet(settings).decrypt(row.credentials.encode()))
    except (InvalidToken, ValueError):
        return None  # the secret changed: they sign in again
    for key in ("expires_at", "refresh_expires_at"):
        if data.get(key):
            data[key] = datetime.fromisoformat(data[key])
    return UserCredentials(**data)


def keep_credentials(session: Session, settings: Settings, login: str,
                     credentials: UserCredentials) -> None:
    row = session.get(Person, login)
    if row is not None:
        remember(session, settings, GitHubUser(login, row.github_id), credentials)


# ---------------------------------------------------------------------------- personal API tokens


def create_api_token(session: Session, login: str, name: str) -> tuple[ApiToken, str]:
    """A new token for ``login``; the clear text is returned once and never stored."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(login=login, name=name.strip()[:100] or "token", token_hash=_hash(token),
                   prefix=token[:10])
    session.add(row)
    session.flush()
    return row, token


def api_token_login(session: Session, token: str) -> str | None:
    if not token.startswith(TOKEN_PREFIX):
        return None
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == _hash(token)))
    if row is None or row.revoked_at is not None:
        return None
    row.last_used_at = utcnow()
    return row.login


def api_tokens_of(session: Session, login: str) -> list[ApiToken]:
    return list(session.scalars(select(ApiToken).where(ApiToken.login == login).order_by(ApiToken.id)))


def revoke_api_token(session: Session, login: str, token_id: int) -> bool:
    row = session.get(ApiToken, token_id)
    if row is None or row.login != login or row.revoked_at is not None:
        return False
    row.revoked_at = utcnow()
    return True
