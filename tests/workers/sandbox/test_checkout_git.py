"""Inside a sandbox the checkout is a git repository, as actions/checkout leaves it on a runner
(pre-commit, setuptools-scm and `git ls-files` in tests need one): HEAD at the commit, its files
tracked, no history, nothing of the host's (paths, remotes, the token), and read-only, so no stage
changes what the next one sees. Real git over smart HTTP, real Docker and bubblewrap sandboxes."""

from __future__ import annotations

import pytest

from workers.workspace.mirrors import MirrorCache
from workers.workspace.patches import export_patch, patch_files

REPO = "octo/gadgets"
FILES = {"README.md": "# gadgets\n", "src/app.py": "print('hi')\n", "tests/test_app.py": "def test():\n    pass\n"}


@pytest.fixture(params=["docker", "bwrap"])
def start(request):
    factory = request.getfixturevalue("sandbox_factory" if request.param == "docker" else "bwrap_factory")
    if request.param == "docker":
        request.applymarker(pytest.mark.docker)
    return factory


def test_the_sandbox_sees_its_checkout_as_a_shallow_read_only_repository(start, git_server, tmp_path):
    base = git_server.make_repo(REPO, FILES)
    head = git_server.push_commit(REPO, "feature", {"src/app.py": "print('hello')\n"}, parent_branch="main")
    url = git_server.clone_url(REPO)
    cache = MirrorCache(tmp_path / "mirrors", 1 << 30, worktree_dir=tmp_path / "worktrees")
    with cache.checkout(url, head, git_server.token) as wt:
        sandbox = start(wt.path)
        run = lambda command: sandbox.exec(command)  # noqa: E731
        assert run("git rev-parse HEAD").output.strip() == head
        assert run("git ls-files").output.split() == sorted(FILES)
        assert run("git status --porcelain").output == ""
        assert run("git log --format=%H").output.split() == [head]  # shallow: the parent is not there
        assert run("git show HEAD:src/app.py").output == "print('hello')\n"

        # The sandbox's changes show as changes; the repository itself cannot be changed.
        assert run("echo changed > README.md && git status --porcelain").output == " M README.md\n"
        assert "+changed" in run("git diff").output
        committed = run("git -c user.name=x -c user.email=x@y commit -qam x")
        assert committed.exit_code != 0 and run("git rev-parse HEAD").output.strip() == head
        assert run("touch /opt/qwenfix/git/HEAD").exit_code != 0

        # Nothing of the host: no remote, no host path, no token.
        shown = run("cat .git; git config --list; git remote -v; cat /opt/qwenfix/git/config").output
        assert "gitdir: /opt/qwenfix/git" in shown
        assert git_server.token not in shown and str(tmp_path) not in shown and "remote." not in shown
        assert run(f"grep -rl {git_server.token} /opt/qwenfix/git").output == ""

        # A hostile sandbox repoints `.git`; the host's git ignores the pointer, the next reset restores it.
        assert run("printf 'gitdir: /etc\\n' > .git").ok
        patch = export_patch(wt, head)
        assert [f.path for f in patch_files(patch)] == ["README.md"]
        sandbox.stop()
        wt.reset(base)
        assert (wt.path / ".git").read_text() == "gitdir: /opt/qwenfix/git\n"
        again = start(wt.path)
        assert again.exec("git rev-parse HEAD").output.strip() == base
        assert again.exec("git status --porcelain").output == ""
