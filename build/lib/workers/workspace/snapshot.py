"""A repository's files at one commit, read from git's object store — never from the worktree, which
a sandbox may have filled with symlinks, fifos or huge files by the time the worker reads it."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from workers.workspace.git import check_sha, run_git, stdout_text
from workers.workspace.worktrees import Worktree, resolve

MAX_FILE_BYTES = 256 * 1024  # larger files are generated or data: never read
MAX_TOTAL_BYTES = 48 * 1024 * 1024  # what one snapshot reads at most


@dataclass
class Snapshot:
    """Paths and sizes of the regular files at `sha`; their text on demand (cached)."""

    worktree: Worktree | Path
    sha: str
    sizes: dict[str, int] = field(default_factory=dict)
    _texts: dict[str, str | None] = field(default_factory=dict)
    _read_bytes: int = 0

    @classmethod
    def at(cls, worktree: Worktree | Path, sha: str) -> Snapshot:
        snap = cls(worktree, check_sha(sha))
        git_dir, work = resolve(worktree)
        listing = run_git(["ls-tree", "-r", "-z", "--long", "--full-tree", snap.sha], git_dir=git_dir, cwd=work)
        for entry in listing.stdout.split(b"\0"):
            meta, _, name = entry.partition(b"\t")
            parts = meta.split()
            if len(parts) != 4 or parts[1] != b"blob" or parts[0] not in (b"100644", b"100755"):
                continue  # symlinks, submodules
            snap.sizes[name.decode("utf-8", errors="replace")] = int(parts[3])
        return snap

    def paths(self) -> list[str]:
        return sorted(self.sizes)

    def read(self, path: str) -> str | None:
        """The file's text, or None when it is absent, too large, binary or over the snapshot's budget."""
        if path in self._texts:
            return self._texts[path]
        self.read_many([path])
        return self._texts.get(path)

    def read_many(self, paths: list[str]) -> dict[str, str]:
        """Several files in one `git cat-file --batch` (much faster than one process per file)."""
        wanted = [p for p in dict.fromkeys(paths) if p not in self._texts]
        todo = []
        for path in wanted:
            size = self.sizes.get(path)
            if size is None or size > MAX_FILE_BYTES or self._read_bytes + size > MAX_TOTAL_BYTES:
                self._texts[path] = None
                continue
            self._read_bytes += size
            todo.append(path)
        if todo:
            git_dir, work = resolve(self.worktree)
            request = "".join(f"{self.sha}:{p}\n" for p in todo).encode()
            out = run_git(["cat-file", "--batch"], git_dir=git_dir, cwd=work, input=request).stdout
            position = 0
            for path in todo:
                header_end = out.index(b"\n", position)
                header = out[position:header_end].split()
                if len(header) < 3 or header[1] != b"blob":  # "missing"
                    self._texts[path], position = None, header_end + 1
                    continue
                size = int(header[2])
                data = out[header_end + 1: header_end + 1 + size]
                position = header_end + 1 + size + 1
                self._texts[path] = None if b"\0" in data[:8192] else data.decode("utf-8", errors="replace")
        return {p: t for p in paths if (t := self._texts.get(p)) is not None}


def patched_tree(worktree: Worktree | Path, base_sha: str, patch: str) -> str:
    """The tree `patch` makes of `base_sha`, built in a throwaway index from git's objects alone:
    no file of the worktree is read or written."""
    git_dir, work = resolve(worktree)
    data = patch.encode("utf-8", errors="surrogateescape")
    with tempfile.TemporaryDirectory(prefix="qwenfix-tree-") as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        run_git(["read-tree", check_sha(base_sha)], git_dir=git_dir, cwd=work, env=env)
        run_git(["apply", "--cached", "--binary", "--whitespace=nowarn", "-"], git_dir=git_dir, cwd=work, env=env,
                input=data if data.endswith(b"\n") else data + b"\n")
        return stdout_text(run_git(["write-tree"], git_dir=git_dir, cwd=work, env=env))
