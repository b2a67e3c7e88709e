"""GitHub clients: the app itself (JWT) and its installations (short-lived tokens), via githubkit.

This is the one module that builds githubkit clients. Everything else receives a ready client
(``GitHubApp.installation_client``) or a token (``GitHubApp.installation_token``, for git over
HTTPS), and asks :func:`is_transient` / :func:`retry_after` whether a failure is worth a retry.

Installation tokens are narrowed to the job's repository, cached in-process per
``(installation, repository)`` until five minutes before they expire, and refreshed
transparently: a client made by :meth:`GitHubApp.installation_client` fetches the current token
on every request and, if GitHub answers 401 (token revoked), exchanges a new one once.

Keep the client in a variable while using it: githubkit's ``gh.rest`` namespaces hold the client
weakly, so ``app.installation_client(...).rest.x.y()`` on one line fails with "GitHub client has
already been collected".

A client may report every write it makes (``on_write``): the method, the path below the API root,
the status and the id, number or sha GitHub answered with, one write at a time and in the order sent
(the audit trail relies on that order).

Tokens and the private key are never logged.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

import httpx
from githubkit import AppAuthStrategy, GitHub
from githubkit.auth.base import BaseAuthStrategy
from githubkit.cache import MemCacheStrategy
from githubkit.exception import (
    GitHubException,
    RateLimitExceeded,
    RequestError,
    RequestFailed,
    RequestTimeout,
)
from githubkit.retry import RetryOption

from core.config import Settings, get_settings
from core.tls import tls_context

if TYPE_CHECKING:
    from githubkit import GitHubCore

__all__ = [
    "GitHub",
    "GitHubApp",
    "GitHubAppError",
    "GitHubWrite",
    "is_transient",
    "retry_after",
    "status_code",
]

log = logging.getLogger(__name__)

REFRESH_MARGIN_S = 5 * 60  # a cached token is replaced this long before it expires
USER_AGENT = "qwenfix"
FAILING = frozenset({"failure", "timed_out"})  # conclusions of a red run, check suite, job or step


class GitHubAppError(RuntimeError):
    """The app cannot authenticate (settings, key, installation) — retrying will not help."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class _CachedToken:
    token: str
    expires_at: float  # epoch seconds


class GitHubApp:
    """The GitHub App: builds app-authenticated and installation-authenticated clients.

    One instance per process is enough; it is thread-safe. ``clock`` exists for tests.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        clock: Callable[[], float] = time.time,
        auto_retry: bool = True,
        timeout_s: float = 30.0,
    ) -> None:
        self.settings = settings or get_settings()
        self._clock = clock
        self._timeout_s = timeout_s
        self._retry = RetryPolicy() if auto_retry else None
        self._tokens: dict[tuple[int, str | None], _CachedToken] = {}
        self._lock = threading.Lock()
        # githubkit's default cache is process-wide and keyed by app id only; keep this app's
        # JWT to itself so two apps (or two test servers) never share one
        self._cache = MemCacheStrategy()
        self._private_key: str | None = None

    # ------------------------------------------------------------------ clients

    @property
    def base_url(self) -> str:
        """The REST API root: https://api.github.com or https://HOST/api/v3 (Enterprise)."""
        return self.settings.github_api_url.rstrip("/") + "/"

    def app_client(self) -> GitHub:
        """A client authenticated as the app (JWT): /app/... routes only."""
        return GitHub(AppAuthStrategy(self._app_id(), self._key()), **self._options())

    def installation_client(self, installation_id: int, repository: str | None = None,
                            on_write: Callable[[GitHubWrite], None] | None = None) -> GitHub:
        """A client acting as one installation, its token narrowed to ``repository``
        ("owner/name") when given. The token is exchanged on first use and kept fresh.
        ``on_write`` hears of every request that is not a GET or HEAD, once it is answered."""
        self._key()  # fail early on a bad key, not on the first request
        options = self._options()
        if on_write is not None:
            options["transport"] = _WriteReporter(on_write, httpx.URL(self.base_url).path)
        return GitHub(_InstallationAuthStrategy(self, installation_id, repository), **options)

    def describe_app(self) -> str:
        """The app's slug as GitHub knows it (GET /app): proves the id, key and URL work."""
        client = self.app_client()  # keep a reference: githubkit namespaces hold it weakly
        try:
            app = client.rest.apps.get_authenticated().parsed_data
        except RequestFailed as exc:
            if exc.response.status_code == 401:
                raise GitHubAppError(
                    "GitHub refused the app's JSON web token (401): check QWENFIX_APP_ID and "
                    "that the private key belongs to this app",
                    401,
                ) from None
            raise
        if app is None:
            raise GitHubAppError("GitHub returned no app for this JSON web token")
        return app.slug or app.name

    def _options(self) -> dict:
        return {
            "base_url": self.base_url,
            "user_agent": USER_AGENT,
            "timeout": self._timeout_s,
            "http_cache": False,  # always fresh: idempotency checks must see the latest state
            "cache_strategy": self._cache,
            "auto_retry": self._retry if self._retry is not None else False,
            "ssl_verify": tls_context(),  # githubkit makes a client per request outside `with`
        }

    # ------------------------------------------------------------------ tokens

    def installation_token(self, installation_id: int, repository: str | None = None) -> str:
        """An installation access token (``ghs_...``) for ``repository`` ("owner/name"), or for
        every repository of the installation when None. Cached until 5 minutes before expiry."""
        key = (int(installation_id), repository)
        with self._lock:
            cached = self._tokens.get(key)
        if cached is not None and cached.expires_at - REFRESH_MARGIN_S > self._clock():
            return cached.token
        fresh = self._exchange(int(installation_id), repository)
        with self._lock:
            self._tokens[key] = fresh
        return fresh.token

    def invalidate(
        self, installation_id: int, repository: str | None = None, token: str | None = None
    ) -> None:
        """Forget a cached token (only if it is still ``token``, when given)."""
        key = (int(installation_id), repository)
        with self._lock:
            cached = self._tokens.get(key)
            if cached is not None and (token is None or cached.token == token):
                del self._tokens[key]

    def _exchange(self, installation_id: int, repository: str | None) -> _CachedToken:
        data: dict = {}
        if repository:
            data["repositories"] = [repository.split("/", 1)[-1]]
        client = self.app_client()  # keep a reference: githubkit namespaces hold it weakly
        try:
            resp = client.rest.apps.create_installation_access_token(installation_id, **data)
        except RequestFailed as exc:
            status = exc.response.status_code
            if status == 401:
                raise GitHubAppError(
                    "GitHub refused the app's JSON web token (401): check QWENFIX_APP_ID and "
                    "that the private key belongs to this app",
                    status,
                ) from None
            if status == 404:
                raise GitHubAppError(
                    f"installation {installation_id} not found: the app was uninstalled or "
                    "suspended",
                    status,
                ) from None
            if status == 422:
                raise GitHubAppError(
                    f"installation {installation_id} has no access to {repository}",
                    status,
                ) from None
            raise
        parsed = resp.parsed_data
        expires_at = _parse_time(parsed.expires_at)
        log.info(
            "installation token issued installation=%s repository=%s expires_at=%s",
            installation_id,
            repository or "*",
            parsed.expires_at,
        )
        return _CachedToken(parsed.token, expires_at)

    # ------------------------------------------------------------------ credentials

    def _app_id(self) -> str:
        app_id = str(self.settings.app_id or "").strip()
        if not app_id:
            raise GitHubAppError("QWENFIX_APP_ID is not set")
        return app_id

    def _key(self) -> str:
        if self._private_key is None:
            self._private_key = _load_private_key(self.settings.private_key_pem)
        return self._private_key


def _load_private_key(pem: str) -> str:
    """The PEM text, checked: an RSA private key, as GitHub generates for apps."""
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    if not pem or not pem.strip():
        raise GitHubAppError(
            "no GitHub App private key: set QWENFIX_PRIVATE_KEY or QWENFIX_PRIVATE_KEY_PATH"
        )
    text = pem.strip()
    if "\\n" in text and "\n" not in text:  # a key pasted into one env line with literal \n
        text = text.replace("\\n", "\n")
    try:
        key = load_pem_private_key(text.encode(), password=None)
    except (ValueError, TypeError):
        raise GitHubAppError(
            "the GitHub App private key is not a valid unencrypted PEM key; use the .pem file "
            "downloaded from the app's settings page"
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise GitHubAppError("the GitHub App private key must be an RSA key (RS256)")
    return text + "\n"


def _parse_time(value: str | datetime) -> float:
    if isinstance(value, datetime):
        dt = value
    else:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


# ---------------------------------------------------------------------- writes


@dataclass(frozen=True)
class GitHubWrite:
    """One write to GitHub as it was answered."""

    method: str
    path: str  # below the API root, e.g. /repos/octo/calc/issues/7/comments
    status: int | None  # None: no answer (connection failed)
    result: dict  # what identifies what it made or changed: id, number, sha (those GitHub returned)


class _WriteReporter(httpx.BaseTransport):
    """Sends like the default transport; a write waits for the one before it, and is reported, with
    what it produced, before the next one goes out."""

    RESULT_KEYS = ("id", "number", "sha")

    def __init__(self, on_write: Callable[[GitHubWrite], None], api_path: str) -> None:
        self._on_write = on_write
        self._api_path = api_path.rstrip("/")
        self._inner: httpx.HTTPTransport | None = None
        self._lock = threading.Lock()
        self._writes = threading.Lock()

    def _transport(self) -> httpx.HTTPTransport:
        with self._lock:  # githubkit closes its client (and so this) after each call outside `with`
            if self._inner is None:
                self._inner = httpx.HTTPTransport(verify=tls_context())
            return self._inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method in ("GET", "HEAD"):
            return self._transport().handle_request(request)
        path = request.url.path
        if self._api_path and path.startswith(self._api_path + "/"):
            path = path[len(self._api_path):]
        with self._writes:
            try:
                response = self._transport().handle_request(request)
            except Exception:
                self._on_write(GitHubWrite(request.method, path, None, {}))
                raise
            response.read()
            self._on_write(GitHubWrite(request.method, path, response.status_code, self._result(response)))
            return response

    def _result(self, response: httpx.Response) -> dict:
        try:
            data = response.json()
        except ValueError:
            return {}
        if not isinstance(data, dict):
            return {}
        return {k: data[k] for k in self.RESULT_KEYS if isinstance(data.get(k), (int, str))}

    def close(self) -> None:
        with self._lock:
            inner, self._inner = self._inner, None
        if inner is not None:
            inner.close()


# ---------------------------------------------------------------------- installation auth


@dataclass
class _InstallationAuth(httpx.Auth):
    app: GitHubApp
    installation_id: int
    repository: str | None

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self.app.installation_token(self.installation_id, self.repository)
        request.headers["Authorization"] = f"token {token}"
        response = yield request
        if response.status_code == 401:
            # revoked or expired early: one fresh exchange, then give up
            self.app.invalidate(self.installation_id, self.repository, token)
            token = self.app.installation_token(self.installation_id, self.repository)
            request.headers["Authorization"] = f"token {token}"
            yield request


@dataclass
class _InstallationAuthStrategy(BaseAuthStrategy):
    app: GitHubApp
    installation_id: int
    repository: str | None

    def get_auth_flow(self, github: GitHubCore) -> httpx.Auth:
        return _InstallationAuth(self.app, self.installation_id, self.repository)


# ---------------------------------------------------------------------- failures and retries


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, what it wraps (githubkit's RequestError around an error raised while sending,
    e.g. by the token exchange inside the auth flow) and its causes."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen and len(seen) < 8:
        seen.add(id(cur))
        yield cur
        if isinstance(cur, RequestError) and not isinstance(cur, RequestFailed | RequestTimeout):
            if isinstance(cur.exc, BaseException) and not isinstance(cur.exc, httpx.HTTPError):
                cur = cur.exc
                continue
        cur = cur.__cause__ or cur.__context__


def status_code(exc: BaseException) -> int | None:
    """The HTTP status of a failed GitHub request (None when no response came back)."""
    for e in _chain(exc):
        if isinstance(e, RequestFailed):
            return e.response.status_code
        if isinstance(e, GitHubAppError):
            return e.status
    return None


def is_transient(exc: BaseException) -> bool:
    """True when retrying later may succeed: GitHub 5xx, rate limits (primary or secondary,
    403/429 with ``retry-after``), timeouts and connection errors."""
    for e in _chain(exc):
        if isinstance(e, GitHubAppError):
            return False
        if isinstance(e, RateLimitExceeded):
            return True
        if isinstance(e, RequestFailed):
            status = e.response.status_code
            if status >= 500:
                return True
            return status in (403, 429) and "retry-after" in e.response.headers
        if isinstance(e, RequestTimeout):
            return True
        if isinstance(e, RequestError) and isinstance(e.exc, httpx.HTTPError):
            return isinstance(e.exc, httpx.TransportError)
        if isinstance(e, (httpx.TransportError, ConnectionError, TimeoutError)):
            return True
    return False


def retry_after(exc: BaseException) -> float | None:
    """Seconds GitHub asked us to wait (``retry-after`` or the rate-limit reset), else None."""
    for e in _chain(exc):
        if isinstance(e, RateLimitExceeded):
            return max(0.0, e.retry_after.total_seconds())
        if isinstance(e, RequestFailed):
            headers = e.response.headers
            if "retry-after" in headers:
                try:
                    return max(0.0, float(headers["retry-after"]))
                except ValueError:
                    return None
            if headers.get("x-ratelimit-remaining") == "0" and "x-ratelimit-reset" in headers:
                try:
                    return max(0.0, float(headers["x-ratelimit-reset"]) - time.time())
                except ValueError:
                    return None
            return None
    return None


class RetryPolicy:
    """githubkit ``auto_retry``: a couple of quick in-process retries for 5xx and connection
    errors, and rate limits whose wait is short; anything longer is left to the caller (Celery
    retries with backoff, see :func:`is_transient`), so a worker never sleeps for minutes."""

    def __init__(self, max_retries: int = 2, max_wait_s: float = 10.0,
                 backoff_s: float = 0.5) -> None:
        self.max_retries = max_retries
        self.max_wait_s = max_wait_s
        self.backoff_s = backoff_s

    def __call__(self, exc: GitHubException, retry_count: int) -> RetryOption:
        if retry_count >= self.max_retries or not is_transient(exc):
            return RetryOption(False)
        wait = retry_after(exc)
        if wait is None:
            wait = self.backoff_s * (2**retry_count)
        if wait > self.max_wait_s:
            return RetryOption(False)
        log.warning("retrying GitHub request in %.1fs after %s", wait, type(exc).__name__)
        return RetryOption(True, timedelta(seconds=wait))


def split_repo(repo: str) -> tuple[str, str]:
    owner, sep, name = repo.partition("/")
    if not sep or not owner or not name:
        raise ValueError(f"expected 'owner/name', got {repo!r}")
    return owner, name
