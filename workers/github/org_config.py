"""The organization's own settings: `qwen.yml` in its `.github` repository, read from the default
branch. Only its `budgets:` section is read here; it may lower the operator's budgets, never raise
them. The app reads it when it may (the `.github` repository is among the installation's); otherwise
the operator's budgets apply."""

from __future__ import annotations

import hashlib

import yaml

from core import bounded_yaml
from core.budgets import OrgBudgets, parse_org_budgets
from core.github import GitHubApp, status_code
from workers.github.target import read_text

ORG_REPO = ".github"
ORG_CONFIG = "qwen.yml"


def read_org_budgets(app: GitHubApp, installation_id: int, owner: str) -> tuple[OrgBudgets | None, dict]:
    """The organization's budgets (None: nothing lowered) and what was read, for the audit trail."""
    repo = f"{owner}/{ORG_REPO}"
    record = {"path": f"{repo}:{ORG_CONFIG}", "ref": "default branch", "found": False, "file_sha256": None,
              "error": None}
    try:
        gh = app.installation_client(installation_id, repo)
        with gh:
            text = read_text(gh, repo, ORG_CONFIG, None)
    except Exception as exc:
        # 422 from the token exchange: the installation does not include that repository
        if status_code(exc) in (403, 404, 422):
            record["error"] = f"{repo} is not accessible to the app"
            return None, record
        raise
    if text is None:
        return None, record
    record.update(found=True, file_sha256=hashlib.sha256(text.encode()).hexdigest())
    try:
        data = bounded_yaml.load(text)
    except yaml.YAMLError as exc:
        record["error"] = f"{ORG_CONFIG} is not valid YAML: {str(exc).splitlines()[0]}"
        return None, record
    budgets, error = parse_org_budgets(data.get("budgets") if isinstance(data, dict) else None)
    record["error"] = error
    return budgets, record
