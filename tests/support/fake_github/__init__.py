"""A fake GitHub *server* for tests: GitHub's REST protocol on 127.0.0.1, driven by real githubkit.

    def test_something(fake_github):
        fake_github.add_installation(1, "octo")
        fake_github.add_repo("octo/app", {"main.py": "print(1)\\n"}, installation_id=1)
        sha = fake_github.push("octo/app", "feature", {"main.py": "print(2)\\n"})
        fake_github.add_pull("octo/app", 7, head_ref="feature", base_ref="main")
        settings = Settings(app_id=str(fake_github.app_id),
                            private_key=fake_github.private_key_pem,
                            github_api_url=fake_github.url)
        ...                                   # run the code under test against it
        assert fake_github.calls("POST", "/repos/octo/app/issues/7/comments")
        assert fake_github.comments("octo/app", 7)[0]["body"].startswith("...")

What it models (only what qwenfix uses):

- App auth: ``POST /app/installations/{id}/access_tokens`` verifies the RS256 app JWT (issuer ==
  app id, at most 10 minutes long, not expired) with the session's public key, and issues a
  ``ghs_`` token, narrowed to ``repositories``/``repository_ids`` when asked. Every other route
  needs an issued, unexpired installation token (``Authorization: token|Bearer ghs_...``) whose
  installation and repository list include the repository (401 / 404 otherwise, like GitHub).
- State set up through Python: installations, repositories backed by real bare git repositories
  (served over smart HTTP at ``/git/owner/repo.git`` with Basic auth ``x-access-token:<token>``),
  pull requests whose ``files``/``patch`` are computed by git, collaborator permissions, workflow
  runs with jobs, steps and logs (each job is also a GitHub Actions check run), check runs with
  annotations, user comments.
- What the app did: comments, reviews (with their inline comments), check runs, pull requests,
  reactions, re-run requests — readable through small methods, and every request recorded in
  order in ``.requests`` (method, path, query, json, headers).
- Faults: ``fail_next(method, path, status, headers=..., times=...)`` answers the next matching
  request(s) with an error (5xx, secondary rate limit 403 + ``retry-after``), before auth.
- Limits: tokens live ``token_ttl`` seconds (set it short to expire them mid-job); every request
  made with an installation token is counted against that installation's hour and answered with
  ``x-ratelimit-*`` headers; ``set_rate_limit(installation, remaining, reset_in)`` drains it, and
  an exhausted one gets GitHub's 403 "API rate limit exceeded" with ``x-ratelimit-remaining: 0``.
- The App's webhook: ``send_webhook(event, payload)`` delivers to ``webhook_url`` signed with
  ``webhook_secret`` and logs the attempt (failed when nothing listens); the delivery log's routes
  (``/app/hook/deliveries``, redelivery attempts) serve it, see ``hooks``.
- GitHub Enterprise: every route is also served under ``/api/v3`` (``.enterprise_url``); the
  recorded ``path`` is always the path below the API root, ``raw_path`` the one on the wire.

Unknown routes answer GitHub's 404 JSON and are recorded like the others.

Layout: ``state`` (records, stores, call log, fault queue), ``fake`` (``FakeGitHub``: setup API and
readers), ``server`` (the ASGI app, recording, faults, Enterprise prefix; the serving thread),
``auth`` (app JWT, installation tokens), ``shapes`` (user/app/repository JSON), ``rest`` (JSON
bodies, pagination), one router per API area: ``apps``, ``repos``, ``pulls``, ``issues``,
``checks``, ``actions``, ``hooks`` (the webhook and its delivery log); ``git`` (smart HTTP);
``fixtures`` (``github_app_key``, ``fake_github``).
"""

from tests.support.fake_github.fake import FakeGitHub
from tests.support.fake_github.fixtures import AppKey, fake_github, github_app_key
from tests.support.fake_github.issues import REACTIONS
from tests.support.fake_github.repos import LEGACY_PERMISSION, ROLE_OF
from tests.support.fake_github.state import (
    APP_EVENTS,
    APP_PERMISSIONS,
    APP_SLUG,
    BOT_LOGIN,
    CREATED_AT,
    DOCS,
    ENTERPRISE_PREFIX,
    GitHubError,
    Pull,
    RecordedRequest,
    Repo,
    State,
    Token,
    now_iso,
)

__all__ = [
    "APP_EVENTS",
    "APP_PERMISSIONS",
    "APP_SLUG",
    "BOT_LOGIN",
    "CREATED_AT",
    "DOCS",
    "ENTERPRISE_PREFIX",
    "LEGACY_PERMISSION",
    "REACTIONS",
    "ROLE_OF",
    "AppKey",
    "FakeGitHub",
    "GitHubError",
    "Pull",
    "RecordedRequest",
    "Repo",
    "State",
    "Token",
    "fake_github",
    "github_app_key",
    "now_iso",
]
