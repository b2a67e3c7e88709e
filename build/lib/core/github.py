"""GitHub clients: the app itself (JWT) and its installations (short-lived tokens), via githubkit.

This is the one module that builds githubkit clients. Everything else receives a ready client
(``GitHubApp.installation_client``) or a token (``GitHubApp.installation_token``, for git over
HTTPS), and asks :func:`is_transient` / :func:`retry_after` whether a failure is worth a retry.

Installation tokens are narrowed to the job's repository, cached in-process per
``(installation, repository)`` until five minutes before they expire (half their lifetime for a
short-lived one), and refreshed transparently: a client made by
:meth:`GitHubApp.installation_client` fetches the current token on every request and, if GitHub
answers 401 (token revoked or expired early), exchanges a new one once. Git gets a token the same
way, right before each fetch or push.

Every installation client obeys GitHub's rate limits through the app's :class:`RateLimits`
(core/ratelimits.py): waits before a request, one content-creating request at a time, the budget
read from every response.

Keep the client in a variable while using it: githubkit's ``gh.rest`` namespaces hold the client
weakly, so ``app.installation_client(...).rest.x.y()`` on one line fails with "GitHub client has
already been collected".

A client may report every write it makes (``on_write``): the method, the path below the API root,
the status and the id, number or sha GitHub answered with, one write at a time and in the order sent
(the audit trail relies on that order).

Tokens and the private key are never logged.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import cached_property
from typing import TYPE_CHECKING

import httpx
from githubkit import AppAuthStrategy, GitHub, OAuthTokenAuthStrategy, OAuthWebAuthStrategy
from githubkit.auth.base import BaseAuthStrategy
from githubkit.cache import MemCacheStrategy
from githubkit.exception import (
    AuthCredentialError,
    AuthExpiredError,
    GitHubException,
    RateLimitExceeded,
    RequestError,
    RequestFailed,
    RequestTimeout,
)
from githubkit.retry import RetryOption
from githubkit.versions import LATEST_VERSION, VERSIONS, RestVersionSwitcher

from core.config import Settings, get_settings
from core.ratelimits import RateLimited, RateLimits, limit_of
from core.tls import tls_context

if TYPE_CHECKING:
    from githubkit import GitHubCore

__all__ = [
    "GitHub",
    "GitHubApp",
    "GitHubAppError",
    "GitHubWrite",
    "RateLimited",
    "is_transient",
    "retry_after",
    "status_code",
]

log = logging.getLogger(__name__)

REFRESH_MARGIN_S = 5 * 60  # a cached token is replaced this long before it expires
OLDEST_API_VERSION = "2022-11-28"  # every GitHub Enterprise Server release that has versions knows it
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
    issued_at: float = 0.0

    def fresh(self, now: float) -> bool:
        """Still good for a call that starts now: a token is replaced five minutes before it
        expires, or half-way through its life when it lives less than ten minutes."""
        margin = min(REFRESH_MARGIN_S, max(0.0, self.expires_at - self.issued_at) / 2)
        return self.expires_at - margin > now


class GitHubApp:
    """The GitHub App: builds app-authenticated and installation-authenticated clients.

    One instance per process is enough; it is thread-safe. ``clock`` exists for tests;
    ``record_budgets`` writes each installation's rate-limit budget to the database (workers).
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        clock: Callable[[], float] = time.time,
        auto_retry: bool = True,
        timeout_s: float = 30.0,
        record_budgets: bool = False,
    ) -> None:
        self.settings = settings or get_settings()
        self._clock = clock
        self._timeout_s = timeout_s
        self._auto_retry = auto_retry
        self.limits = RateLimits(self.settings, record=record_budgets)
        self._tokens: dict[tuple[int, str | None], _CachedToken] = {}
        self._lock = threading.Lock()
        # githubkit's default cache is process-wide and keyed by app id only; keep this app's
        # JWT to itself so two apps (or two test servers) never share one
        self._cache = MemCacheStrategy()
        self._private_key: str | None = None
        self._bot_login: str | None = None

    # ------------------------------------------------------------------ clients

    @property
    def base_url(self) -> str:
        """The REST API root: https://api.github.com or https://HOST/api/v3 (Enterprise)."""
        return self.settings.github_api_url.rstrip("/") + "/"

    def app_client(self) -> GitHub:
        """A client authenticated as the app (JWT): /app/... routes only."""
        return VersionedGitHub(AppAuthStrategy(self._app_id(), self._key()), **self._options(RetryPolicy(self.settings)))

    def installation_client(self, installation_id: int, repository: str | None = None,
                            on_write: Callable[[GitHubWrite], None] | None = None) -> GitHub:
        """A client acting as one installation, its token narrowed to ``repository``
        ("owner/name") when given. The token is exchanged on first use and kept fresh.
        ``on_write`` hears of every request that is not a GET or HEAD, once it is answered."""
        self._key()  # fail early on a bad key, not on the first request
        options = self._options(RetryPolicy(self.settings, waits_in_throttler=True))
        if on_write is not None:
            options["transport"] = _WriteReporter(on_write, httpx.URL(self.base_url).path)
        return VersionedGitHub(
            _InstallationAuthStrategy(self, installation_id, repository),
            throttler=self.limits.throttler(int(installation_id)),
            **options,
        )

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

    def bot_login(self) -> str:
        """The login of this app's bot user, ``<slug>[bot]``, the author of everything the app
        posts: asked of GitHub once per process (``GET /app`` with the app's JWT)."""
        with self._lock:
            known = self._bot_login
        if known is None:
            known = f"{self.describe_app()}[bot]"
            with self._lock:
                self._bot_login = known
        return known

    def _options(self, retry: RetryPolicy) -> dict:
        return client_options(self.settings, self._timeout_s, retry if self._auto_retry else None, self._cache)

    # ------------------------------------------------------------------ tokens

    def installation_token(self, installation_id: int, repository: str | None = None) -> str:
        """An installation access token (``ghs_...``) for ``repository`` ("owner/name"), or for
        every repository of the installation when None. Cached until 5 minutes before expiry."""
        key = (int(installation_id), repository)
        with self._lock:
            cached = self._tokens.get(key)
        if cached is not None and cached.fresh(self._clock()):
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
        return _CachedToken(parsed.token, expires_at, issued_at=self._clock())

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


# ---------------------------------------------------------------------- REST API version


class VersionedGitHub(GitHub):
    """A githubkit client whose ``.rest`` speaks one REST API version (``X-GitHub-Api-Version``),
    the one the server supports, instead of githubkit's newest: GitHub Enterprise Server releases
    answer 400 to a version they do not know."""

    def __init__(self, *args, api_version: str = LATEST_VERSION, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.api_version = api_version

    @cached_property
    def rest(self) -> _PinnedRest:  # type: ignore[override]
        return _PinnedRest(RestVersionSwitcher(self), self.api_version)


class _PinnedRest:
    """``gh.rest`` bound to one version: ``gh.rest.pulls.get(...)``, ``gh.rest.paginate(...)``."""

    def __init__(self, switcher: RestVersionSwitcher, version: str) -> None:
        self._switcher = switcher
        self._version = version

    def __call__(self, version: str | None = None):
        return self._switcher(version or self._version)

    def __getattr__(self, name: str):
        if name == "paginate":
            return self._switcher.paginate
        return getattr(self._switcher(self._version), name)


def installed_api_versions() -> list[str]:
    """REST API versions githubkit can speak here (a schema package per version), oldest first."""
    return sorted(v for v, module in VERSIONS.items() if not v.startswith("ghec-")
                  and importlib.util.find_spec(f"githubkit_schemas.{module}") is not None)


_chosen_versions: dict[str, str] = {}


def api_version(settings: Settings) -> str:
    """The REST API version to send: ``QWENFIX_GITHUB_API_VERSION``; else githubkit's newest for
    api.github.com; else the newest both sides know by the server's meta endpoint ``GET /versions``;
    a server without it (GitHub Enterprise Server before 3.20) gets 2022-11-28."""
    known = installed_api_versions()
    if settings.github_api_version:
        if settings.github_api_version not in known:
            raise GitHubAppError(
                f"QWENFIX_GITHUB_API_VERSION={settings.github_api_version} is not a REST API version "
                f"this install speaks ({', '.join(known)})")
        return settings.github_api_version
    url = settings.github_api_url.rstrip("/")
    if url in ("https://api.github.com", "http://api.github.com"):
        return LATEST_VERSION
    if url not in _chosen_versions:
        _chosen_versions[url] = _ask_server(settings, known)
    return _chosen_versions[url]


def _ask_server(settings: Settings, known: list[str]) -> str:
    client = GitHub(**client_options(settings, api_version_pinned=False))
    try:
        offered = client.rest(OLDEST_API_VERSION).meta.get_all_versions().json()
    except RequestFailed as exc:
        log.info("GET /versions answered %s: using REST API %s", exc.response.status_code,
                 OLDEST_API_VERSION)
        return OLDEST_API_VERSION
    both = sorted(set(offered if isinstance(offered, list) else []) & set(known))
    chosen = both[-1] if both else OLDEST_API_VERSION
    log.info("GitHub at %s speaks REST API %s: using %s", settings.github_api_url, offered, chosen)
    return chosen


def client_options(
    settings: Settings,
    timeout_s: float = 30.0,
    retry: RetryPolicy | None = None,
    cache: MemCacheStrategy | None = None,
    api_version_pinned: bool = True,
) -> dict:
    """What every githubkit client of these settings is built with."""
    pinned = {"api_version": api_version(settings)} if api_version_pinned else {}
    return {
        **pinned,
        "base_url": settings.github_api_url.rstrip("/") + "/",
        "user_agent": USER_AGENT,
        "timeout": timeout_s,
        "http_cache": False,  # always fresh: idempotency checks must see the latest state
        "cache_strategy": cache or MemCacheStrategy(),
        "auto_retry": retry if retry is not None else False,
        "ssl_verify": tls_context(),  # githubkit makes a client per request outside `with`
    }


def convert_manifest(settings: Settings, code: str) -> dict:
    """GitHub's answer to ``POST /app-manifests/{code}/conversions``: the App made from our
    manifest, with its id, slug, private key, webhook secret and OAuth client. The code is good
    once, for an hour; no credentials are needed to redeem it."""
    client = VersionedGitHub(**client_options(settings))  # keep a reference: namespaces hold it weakly
    try:
        return client.rest.apps.create_from_manifest(code).json()
    except RequestFailed as exc:
        status = exc.response.status_code
        raise GitHubAppError(
            f"GitHub did not accept the setup code ({status}): it is valid once, for one hour; "
            "start again from the setup page",
            status,
        ) from None


# ---------------------------------------------------------------------- people (user-to-server)


class SignInError(RuntimeError):
    """GitHub did not sign the person in (bad code, client secret, expired refresh token)."""


@dataclass(frozen=True)
class UserCredentials:
    """A person's user-to-server token (``ghu_``) and what renews it (``ghr_``)."""

    token: str
    expires_at: datetime | None = None
    refresh_token: str | None = None
    refresh_expires_at: datetime | None = None


@dataclass(frozen=True)
class GitHubUser:
    login: str
    github_id: int


def _user_auth(settings: Settings, credentials: UserCredentials) -> OAuthTokenAuthStrategy:
    return OAuthTokenAuthStrategy(
        settings.client_id, settings.client_secret.get_secret_value() or None,
        token=credentials.token, expire_time=credentials.expires_at,
        refresh_token=credentials.refresh_token,
        refresh_token_expire_time=credentials.refresh_expires_at,
    )


def _credentials_of(auth: OAuthTokenAuthStrategy) -> UserCredentials:
    return UserCredentials(auth.token or "", auth.expire_time, auth.refresh_token,
                           auth.refresh_token_expire_time)


def sign_in(settings: Settings, code: str, redirect_uri: str) -> tuple[GitHubUser, UserCredentials]:
    """Redeem the OAuth web flow's code for the person's token, and ask GitHub who they are."""
    web = OAuthWebAuthStrategy(settings.client_id, settings.client_secret.get_secret_value(),
                               code, redirect_uri)
    client = VersionedGitHub(**client_options(settings))  # no auth of its own: the code is redeemed once
    try:
        credentials = _credentials_of(web.exchange_token(client))
    except (AuthExpiredError, AuthCredentialError, RequestFailed) as exc:
        raise SignInError("GitHub did not accept the sign-in code; sign in again") from exc
    person = _who(settings, credentials)
    return person, credentials


def _who(settings: Settings, credentials: UserCredentials) -> GitHubUser:
    client = VersionedGitHub(_user_auth(settings, credentials), **client_options(settings))
    user = client.rest.users.get_authenticated().json()
    return GitHubUser(user["login"], int(user["id"]))


def user_repositories(
    settings: Settings, credentials: UserCredentials
) -> tuple[dict[str, dict[str, bool]], UserCredentials]:
    """Every repository the person can reach through the App's installations, with *their*
    permissions (``pull``, ``push``, ...): ``GET /user/installations`` and
    ``/user/installations/{id}/repositories`` with their token, renewed first when it expired
    (the renewed credentials come back, to keep)."""
    auth = _user_auth(settings, credentials)
    client = VersionedGitHub(auth, **client_options(settings))
    try:
        installations = list(client.rest.paginate(
            client.rest.apps.list_installations_for_authenticated_user,
            map_func=lambda response: response.json()["installations"]))
        found: dict[str, dict[str, bool]] = {}
        for installation in installations:
            for repo in client.rest.paginate(
                    client.rest.apps.list_installation_repos_for_authenticated_user,
                    installation_id=installation["id"],
                    map_func=lambda response: response.json()["repositories"]):
                found[repo["full_name"]] = dict(repo.get("permissions") or {})
    except (AuthExpiredError, AuthCredentialError) as exc:
        raise SignInError("the person's GitHub sign-in expired") from exc
    except RequestFailed as exc:
        if exc.response.status_code == 401:
            raise SignInError("GitHub no longer accepts the person's token") from exc
        raise
    return found, _credentials_of(auth)


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
    requires_response_body = True  # a 403's message tells a secondary rate limit from a refusal

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self.app.installation_token(self.installation_id, self.repository)
        request.headers["Authorization"] = f"token {token}"
        response = yield request
        self.app.limits.observe(int(self.installation_id), response)
        if response.status_code == 401:
            # revoked or expired early: one fresh exchange, then give up
            self.app.invalidate(self.installation_id, self.repository, token)
            token = self.app.installation_token(self.installation_id, self.repository)
            request.headers["Authorization"] = f"token {token}"
            response = yield request
            self.app.limits.observe(int(self.installation_id), response)


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


def rate_limit(exc: BaseException, backoff_s: float = 60.0, repeats: int = 0):
    """The rate limit (core.ratelimits.Limit) a failed request ran into, or None."""
    for e in _chain(exc):
        if isinstance(e, RequestFailed):
            response = e.response
            try:
                body = response.json()
                message = body.get("message", "") if isinstance(body, dict) else ""
            except Exception:  # noqa: BLE001 — not JSON
                message = ""
            return limit_of(response.status_code, response.headers, message, time.time(), backoff_s, repeats)
    return None


def is_transient(exc: BaseException) -> bool:
    """True when retrying later may succeed: GitHub 5xx, rate limits (primary or secondary, as
    core/ratelimits.py reads them), timeouts and connection errors."""
    for e in _chain(exc):
        if isinstance(e, GitHubAppError):
            return False
        if isinstance(e, (RateLimitExceeded, RateLimited)):
            return True
        if isinstance(e, RequestFailed):
            status = e.response.status_code
            if status >= 500:
                return True
            return rate_limit(e) is not None
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
        if isinstance(e, RateLimited):
            return e.wait_s
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
    """githubkit ``auto_retry``: a couple of quick retries for 5xx and connection errors; for a rate
    limit, up to ``RATE_LIMIT_RETRIES`` retries after GitHub's wait (see core/ratelimits.py).

    An installation client's throttler already waits out the pause its response started (and
    raises :class:`RateLimited` when it is too long for a job to wait in place), so its policy
    only asks for an immediate retry; an app client's policy sleeps the wait itself, up to
    ``QWENFIX_GITHUB_MAX_WAIT_S``."""

    RATE_LIMIT_RETRIES = 6

    def __init__(self, settings: Settings | None = None, max_retries: int = 2, backoff_s: float = 0.5,
                 waits_in_throttler: bool = False) -> None:
        self.settings = settings or get_settings()
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.waits_in_throttler = waits_in_throttler

    def __call__(self, exc: GitHubException, retry_count: int) -> RetryOption:
        limit = rate_limit(exc, self.settings.github_secondary_backoff_s, retry_count)
        if limit is not None:
            if retry_count >= self.RATE_LIMIT_RETRIES:
                return RetryOption(False)
            if self.waits_in_throttler:
                return RetryOption(True, timedelta(milliseconds=1))  # githubkit sleeps 60 s on zero
            if limit.wait_s > self.settings.github_max_wait_s:
                return RetryOption(False)
            log.warning("GitHub %s rate limit; retrying in %.1fs", limit.kind, limit.wait_s)
            return RetryOption(True, timedelta(seconds=max(limit.wait_s, 0.001)))
        if retry_count >= self.max_retries or not is_transient(exc):
            return RetryOption(False)
        wait = self.backoff_s * (2**retry_count)
        log.warning("retrying GitHub request in %.1fs after %s", wait, type(exc).__name__)
        return RetryOption(True, timedelta(seconds=wait))


def split_repo(repo: str) -> tuple[str, str]:
    owner, sep, name = repo.partition("/")
    if not sep or not owner or not name:
        raise ValueError(f"expected 'owner/name', got {repo!r}")
    return owner, name
