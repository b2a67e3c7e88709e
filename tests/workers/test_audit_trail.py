"""The audit trail of a full repair, end to end: webhook → worker → Docker sandbox → scripted model → fix
commit. Its records, in order, match what the fake GitHub recorded, what the Docker engine itself reports
having run, and what the model server received; and nothing secret is in any of it."""

from __future__ import annotations

import gzip
import hashlib
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import docker
import pytest

from core import audit
from core.db.models import utcnow
from core.db.session import session_scope
from tests.repos import REPO
from tests.support.stack import MODEL_KEY
from tests.workers.handlers.test_red_build import AGENT_FIX, fail_run, setup_pr
from workers.sandbox.docker import _REAP, _WIPE

pytestmark = pytest.mark.docker
WRITES = ("POST", "PATCH", "PUT", "DELETE")
HOUSEKEEPING = {f"sh -c {_REAP}", f"sh -c {_WIPE}"}  # the engine's own execs between commands


def records_of(stack, job_id: int) -> list[dict]:
    with session_scope(stack.settings.database_url) as session:
        return list(audit.export(session, utcnow() - timedelta(hours=1), job_id=job_id))


def docker_commands(stack, since: datetime) -> list[tuple[str, int]]:
    """(command, exit code) of every exec the Docker engine ran in this test's sandboxes, in order."""
    client = docker.from_env()
    until = datetime.now(timezone.utc) + timedelta(seconds=1)
    ours = str(Path(stack.settings.data_dir).resolve())
    created, exits = [], {}
    for event in client.events(since=since, until=until, filters={"type": "container"}, decode=True):
        attributes = event["Actor"]["Attributes"]
        if not attributes.get("qwenfix.workspace", "").startswith(ours):
            continue  # another test's (or another suite's) sandbox
        action = event["Action"]
        if action.startswith("exec_create: ") and action[len("exec_create: "):] not in HOUSEKEEPING:
            created.append((attributes["execID"], action[len("exec_create: "):]))
        elif action == "exec_die":
            exits[attributes["execID"]] = int(attributes["exitCode"])
    return [(command, exits[exec_id]) for exec_id, command in created]


def test_a_repairs_records_match_github_the_sandbox_and_the_model_in_order(stack):
    gh = stack.github
    head = setup_pr(gh, {"repair": {"mode": "commit", "candidates": 1}})
    stack.model.script(AGENT_FIX)
    since = datetime.now(timezone.utc) - timedelta(seconds=1)
    job = stack.wait(fail_run(stack, head))
    assert job.state == "succeeded", job.outcome
    records = records_of(stack, job.id)

    # who and what: the run's actor and the delivery first, then the configuration that applied
    trigger, repo_config, org_config = records[:3]
    assert trigger["kind"] == "trigger" and trigger["data"]["actor"] == "contributor"
    assert trigger["data"]["delivery"] == job.delivery_id and trigger["data"]["source"] == "workflow_run"
    yml = gh.file_at(REPO, "main", ".github/qwen.yml")
    assert repo_config["kind"] == "config" and repo_config["data"]["path"] == ".github/qwen.yml"
    assert repo_config["data"]["file_sha256"] == hashlib.sha256(yml.encode()).hexdigest()
    assert repo_config["data"]["effective_sha256"] and repo_config["data"]["ref"] == "main"
    assert org_config["kind"] == "config" and org_config["data"]["path"] == "octo/.github:qwen.yml"

    # every write to GitHub's API, in the order GitHub received them, with what each produced
    sent = [r for r in gh.calls() if r.method in WRITES and r.path.startswith("/repos/")]
    written = [r["data"] for r in records if r["kind"] == "github" and r["data"]["method"] != "git push"]
    assert [(w["method"], w["path"], w["status"]) for w in written] == [(r.method, r.path, r.status) for r in sent]
    [comment] = gh.bot_comments(REPO, 7)
    [check] = gh.check_runs(REPO, head)
    assert {w["id"] for w in written if w["path"].endswith("/issues/7/comments")} == {comment["id"]}
    assert {w["id"] for w in written if w["path"].endswith("/check-runs")} == {check["id"]}
    [push] = [r["data"] for r in records if r["kind"] == "github" and r["data"]["method"] == "git push"]
    assert push["sha"] == gh.ref(REPO, "refs/heads/feature") and push["path"].endswith("octo/calc.git:refs/heads/feature")
    assert any(g.path.endswith("/git-receive-pack") for g in gh.git_requests)

    # every command the Docker engine ran in the job's sandboxes, in order, with its exit code
    ran = [(" ".join(r["data"]["argv"]), r["data"]["exit_code"]) for r in records if r["kind"] == "sandbox"]
    # all of them; the run on the merge base goes alongside the reproduction, so those two come in either order
    engine = docker_commands(stack, since)
    assert sorted(ran) == sorted(engine) and ran[2:] == engine[2:]
    # the failing command as CI ran it: with the job's environment (no package index: setup has no network)
    offline = "export PIP_NO_INDEX=1\nexport UV_NO_INDEX=1\nexport UV_OFFLINE=1\nexport npm_config_offline=true\n"
    # on the merge base, green, and the agent's own run after its edit, green
    assert ran.count((f"sh -c {offline}python3 -m pytest -q", 0)) == 2
    # the reproduction, red, and the validation, green, both through a JUnit report: what the
    # reproduction's tests checked is the baseline no patch may check less than
    measured = [(command, code) for command, code in ran
                if command.startswith(f"sh -c {offline}export PYTEST_ADDOPTS='--junitxml=/workspace/")]
    assert [code for _, code in measured] == [1, 0] and len(ran) == 4, ran
    assert all(command.endswith("\npython3 -m pytest -q") for command, _ in measured)

    # every model request: its hash is that of the redacted text kept, which is what the model received
    models = [r["data"] for r in records if r["kind"] == "model"]
    received = stack.model.chat_requests()
    assert len(models) == len(received) == 4
    for record, request in zip(models, received, strict=True):
        kept = gzip.decompress(Path(record["request_text"]).read_bytes())
        assert hashlib.sha256(kept).hexdigest() == record["request_sha256"]
        assert json.loads(kept)["messages"] == request.body["messages"]
        assert record["model"] == "qwen3-coder-test" and record["prompt_tokens"] > 0
    assert sum(m["prompt_tokens"] + m["completion_tokens"] for m in models) == job.usage["tokens"]

    # nothing secret anywhere: not in a record, not in a kept request
    secrets = [stack.settings.webhook_secret.get_secret_value(), MODEL_KEY, *gh.tokens]
    secrets += [line for line in gh.private_key_pem.splitlines() if len(line) > 20]
    kept_texts = [gzip.decompress(Path(m["request_text"]).read_bytes()).decode() for m in models]
    everything = json.dumps(records) + "".join(kept_texts)
    assert gh.tokens and not [s for s in secrets if s in everything]
