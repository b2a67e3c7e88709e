"""The setup phase runs once per job, before the model, and every candidate reuses what it made."""

from __future__ import annotations

import os
import re
import stat

import pytest

from tests.repos import local_origin
from tests.support.fake_openai import call, finish
from workers.agent.llm import ModelClient
from workers.engine.repair import repair
from workers.engine.setup_phase import SetupProducts
from workers.engine.task import RepairTask, RepoContext
from workers.sandbox import Limits
from workers.sandbox.docker import DockerEngine
from workers.workspace.confined import files
from workers.workspace.mirrors import MirrorCache

TEST = ("from pathlib import Path\nfrom calc import add\n\n\ndef test_add():\n"
        "    assert add(2, 3) == int(Path('build/expected.txt').read_text())\n")
SETUP = "mkdir -p build && echo 5 > build/expected.txt && touch build/stamp-$(date +%s%N)"


@pytest.fixture
def origin(tmp_path):
    root = tmp_path / "origin"
    return root, local_origin(root, {"calc.py": "def add(a, b):\n    return a - b\n", "tests/test_calc.py": TEST})


@pytest.mark.docker
def test_setup_runs_once_and_its_products_reach_every_candidate_but_no_patch(origin, fake_model, docker_engine, tmp_path):
    root, head = origin
    mirrors = MirrorCache(tmp_path / "mirrors", 10**10)
    engine = DockerEngine()
    fake_model.script([
        call("run", command="ls build"),
        call("edit_file", path="calc.py", old="return a - b", new="return a + b"),
        finish("add() adds."),
    ])
    client = ModelClient(fake_model.base_url, "sk-x", "m", timeout_s=10, max_retries=0)
    result = repair(
        RepairTask(command="python3 -m pytest -q -p no:cacheprovider", setup=SETUP, candidates=2),
        checkout=lambda: mirrors.checkout(str(root), head, None), base_sha=head,
        start_sandbox=lambda ws, mounts=(): engine.start(ws, docker_engine.image, Limits(timeout_s=60), mounts=mounts),
        client=client, context=RepoContext(),
    )
    assert result.status == "fixed", result.reason
    # both candidates saw the one setup: a single stamp, already there before the model acted
    listings = [m["content"] for r in fake_model.chat_requests() for m in r.messages
                if m.get("role") == "tool" and "stamp-" in str(m.get("content"))]
    assert len(listings) >= 2 and len(fake_model.chat_requests()) == 6  # both candidates listed build/
    everything = " ".join(str(r.messages) for r in fake_model.chat_requests())
    stamps = set(re.findall(r"stamp-\d+", everything))
    assert len(stamps) == 1, stamps  # one setup run, seen by the prompt's file tree and both candidates
    # the setup's files are the repository's environment, not part of the fix
    assert "build/" not in result.chosen.patch and "+    return a + b" in result.chosen.patch
    assert all(c.verified for c in result.candidates)


@pytest.mark.docker
def test_a_failing_setup_stops_before_any_model_call(origin, fake_model, docker_engine, tmp_path):
    root, head = origin
    mirrors = MirrorCache(tmp_path / "mirrors", 10**10)
    engine = DockerEngine()
    client = ModelClient(fake_model.base_url, "sk-x", "m", timeout_s=10, max_retries=0)
    result = repair(
        RepairTask(command="python3 -m pytest -q", setup="pip install --no-index does-not-exist"),
        checkout=lambda: mirrors.checkout(str(root), head, None), base_sha=head,
        start_sandbox=lambda ws, mounts=(): engine.start(ws, docker_engine.image, Limits(timeout_s=60), mounts=mounts),
        client=client, context=RepoContext(),
    )
    # a setup failure is its own outcome, with the setup's own output, not "no candidate passed"
    assert result.status == "setup_failed" and "repair.setup" in result.reason and "exit 1" in result.reason
    assert "does-not-exist" in result.setup_output
    assert fake_model.requests == []


def _made_by_setup(root):
    """What a setup command leaves: a virtualenv-like tree, and a file beside tracked sources."""
    (root / "venv/lib").mkdir(parents=True)
    (root / "venv/lib/mod.py").write_text("VALUE = 5\n")
    (root / "venv/bin").mkdir()
    (root / "venv/bin/tool").write_text("#!/bin/sh\npython3 -m pytest\n")
    (root / "venv/bin/tool").chmod(0o755)
    (root / "venv/bin/py").symlink_to("/usr/bin/python3")
    (root / "src/_version.py").write_text("VERSION = '1.0'\n")


def test_every_stage_gets_the_products_as_setup_made_them_whatever_the_last_one_did(tmp_path):
    """What a sandbox may do to the products between two stages — rewrite one in place, add files,
    re-point a link, lock a directory — is undone for the next stage; untouched copies are kept
    (same inode) instead of copied again."""
    root = tmp_path / "repo"
    root.mkdir()
    head = local_origin(root, {"src/app.py": "import _version\n", "tests/test_app.py": "import app\n"})
    mirrors = MirrorCache(tmp_path / "mirrors", 10**10)
    with mirrors.checkout(str(root), head, None) as setup_wt, mirrors.checkout(str(root), head, None) as stage:
        tracked = files(setup_wt.path)
        _made_by_setup(setup_wt.path)
        made = SetupProducts(setup_wt.path, frozenset(files(setup_wt.path) - tracked), tracked)
        assert made.roots == {"venv"} and "src/_version.py" in made.paths
        made.carry(stage)
        made.seal(stage)
        w = stage.path
        tool_inode = (w / "venv/bin/tool").stat().st_ino
        assert tool_inode != (setup_wt.path / "venv/bin/tool").stat().st_ino  # a copy, not a link
        # the stage's sandbox at work
        with open(w / "venv/lib/mod.py", "r+") as f:
            f.write("VALUE = 6")  # in place, same size
        (w / "venv/lib/extra.py").write_text("import os\n")
        (w / "venv/bin/py").unlink()
        (w / "venv/bin/py").symlink_to("/etc")
        (w / "venv/bin").chmod(0o500)
        (w / "src/_version.py").write_text("VERSION = 'poisoned'\n")
        # the next stage
        stage.reset(keep=made.roots)
        made.carry(stage)
        assert (w / "venv/lib/mod.py").read_text() == "VALUE = 5\n"
        assert not (w / "venv/lib/extra.py").exists()
        assert os.readlink(w / "venv/bin/py") == "/usr/bin/python3"
        assert stat.S_IMODE((w / "venv/bin").stat().st_mode) == stat.S_IMODE((setup_wt.path / "venv/bin").stat().st_mode)
        assert (w / "src/_version.py").read_text() == "VERSION = '1.0'\n"
        assert (w / "venv/bin/tool").stat().st_ino == tool_inode  # untouched: kept, not copied again
        assert (setup_wt.path / "venv/lib/mod.py").read_text() == "VALUE = 5\n"
