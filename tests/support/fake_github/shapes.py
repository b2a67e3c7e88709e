"""GitHub's JSON for the objects every API area embeds: users and bots, apps, repositories."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from tests.support.fake_github.state import (
    APP_EVENTS,
    APP_PERMISSIONS,
    APP_SLUG,
    CREATED_AT,
    State,
    node_id,
    stable_id,
)

# repository URL templates, relative to the repository's API URL
_REPO_URLS = {
    "archive_url": "/{archive_format}{/ref}", "assignees_url": "/assignees{/user}",
    "blobs_url": "/git/blobs{/sha}", "branches_url": "/branches{/branch}",
    "collaborators_url": "/collaborators{/collaborator}",
    "comments_url": "/comments{/number}", "commits_url": "/commits{/sha}",
    "compare_url": "/compare/{base}...{head}", "contents_url": "/contents/{+path}",
    "contributors_url": "/contributors", "deployments_url": "/deployments",
    "downloads_url": "/downloads", "events_url": "/events", "forks_url": "/forks",
    "git_commits_url": "/git/commits{/sha}", "git_refs_url": "/git/refs{/sha}",
    "git_tags_url": "/git/tags{/sha}", "hooks_url": "/hooks",
    "issue_comment_url": "/issues/comments{/number}",
    "issue_events_url": "/issues/events{/number}", "issues_url": "/issues{/number}",
    "keys_url": "/keys{/key_id}", "labels_url": "/labels{/name}",
    "languages_url": "/languages", "merges_url": "/merges",
    "milestones_url": "/milestones{/number}",
    "notifications_url": "/notifications{?since,all,participating}",
    "pulls_url": "/pulls{/number}", "releases_url": "/releases{/id}",
    "stargazers_url": "/stargazers", "statuses_url": "/statuses/{sha}",
    "subscribers_url": "/subscribers", "subscription_url": "/subscription",
    "tags_url": "/tags", "teams_url": "/teams", "trees_url": "/git/trees{/sha}",
}


def user_json(fake: State, login: str, type_: str = "User") -> dict[str, Any]:
    uid = stable_id("user:" + login)
    base = fake.api(f"/users/{quote(login)}")
    return {
        "login": login, "id": uid, "node_id": node_id("User", uid),
        "avatar_url": fake.html(f"/avatars/{uid}"), "gravatar_id": "",
        "url": base, "html_url": fake.html(f"/{login}"),
        "followers_url": base + "/followers",
        "following_url": base + "/following{/other_user}",
        "gists_url": base + "/gists{/gist_id}",
        "starred_url": base + "/starred{/owner}{/repo}",
        "subscriptions_url": base + "/subscriptions",
        "organizations_url": base + "/orgs", "repos_url": base + "/repos",
        "events_url": base + "/events{/privacy}",
        "received_events_url": base + "/received_events",
        "type": type_, "site_admin": False, "user_view_type": "public",
    }


def bot_json(fake: State) -> dict[str, Any]:
    """The app's bot user, author of everything the app posts."""
    return user_json(fake, fake.bot_login, "Bot")


def app_json(fake: State, slug: str = APP_SLUG) -> dict[str, Any]:
    app_id = fake.app_id if slug == APP_SLUG else stable_id("app:" + slug)
    return {
        "id": app_id, "slug": slug, "node_id": node_id("App", app_id),
        "client_id": f"Iv1.{app_id}", "owner": user_json(fake, "qwenfix-org", "Organization"),
        "name": slug, "description": f"{slug} app", "external_url": fake.html(f"/{slug}"),
        "html_url": fake.html(f"/apps/{slug}"), "created_at": CREATED_AT,
        "updated_at": CREATED_AT, "permissions": dict(APP_PERMISSIONS),
        "events": list(APP_EVENTS),
    }


def repo_json(fake: State, full_name: str) -> dict[str, Any]:
    r = fake.repos.get(full_name)
    rid = r.id if r else stable_id("repo:" + full_name)
    owner, name = full_name.split("/", 1)
    base = fake.api(f"/repos/{full_name}")
    out: dict[str, Any] = {
        "id": rid, "node_id": node_id("Repository", rid), "name": name,
        "full_name": full_name, "owner": user_json(fake, owner, "Organization"),
        "private": bool(r and r.private), "html_url": fake.html(f"/{full_name}"),
        "description": None, "fork": bool(r and r.parent), "url": base,
    }
    out.update({k: base + v for k, v in _REPO_URLS.items()})
    out.update({
        "git_url": f"git://127.0.0.1/{full_name}.git", "ssh_url": f"git@127.0.0.1:{full_name}.git",
        "clone_url": fake.clone_url(full_name), "svn_url": fake.html(f"/{full_name}"),
        "mirror_url": None, "homepage": None, "language": "Python", "forks_count": 0,
        "stargazers_count": 0, "watchers_count": 0, "size": 1,
        "default_branch": r.default_branch if r else "main", "open_issues_count": 0,
        "is_template": False, "topics": [], "has_issues": True, "has_projects": False,
        "has_wiki": False, "has_pages": False, "has_downloads": True,
        "has_discussions": False, "archived": False, "disabled": False,
        "visibility": "private" if r and r.private else "public",
        "pushed_at": CREATED_AT, "created_at": CREATED_AT, "updated_at": CREATED_AT,
        "permissions": {"admin": False, "maintain": False, "push": True, "triage": True,
                        "pull": True},
        "allow_forking": True, "subscribers_count": 0, "network_count": 0,
        "license": None, "forks": 0, "open_issues": 0, "watchers": 0,
    })
    return out
