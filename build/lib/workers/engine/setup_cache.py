"""Setup products kept between jobs of a repository, keyed by its lock files.

A job's setup (installing the dependencies its workflow installs) is the slowest part of a
reproduction, and gives the same result while the files that pin the dependencies are unchanged.
An entry holds what setup installed outside the repository (the environment directory, mounted
read-only into later sandboxes) and a copy of what it created inside the worktree (node_modules,
.tox, …). The key covers the setup script, the image, the environment variables and every lock
file's content; a job whose key matches restores the entry instead of running setup.

Entries are written by the worker only: files are copied without following symlinks (a symlink
is copied as a symlink, never read through), and a later job only ever copies the entry's
worktree files into a fresh worktree.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

LOCK_FILES = re.compile(
    r"^(?:requirements[\w.-]*\.(?:txt|in)|pyproject\.toml|poetry\.lock|uv\.lock|Pipfile\.lock|setup\.cfg"
    r"|package-lock\.json|npm-shrinkwrap\.json|yarn\.lock|pnpm-lock\.yaml|go\.sum|go\.mod|Cargo\.lock"
    r"|tox\.ini|noxfile\.py|\.pre-commit-config\.yaml)$"
)
SKIP_DIRS = {".git", "node_modules", ".tox", ".nox", ".venv", "venv", "__pycache__", "target", ".mypy_cache"}
IN_USE_S = 3600.0  # an entry used this recently is never evicted (a job may still mount it)


def lock_files(root: Path) -> dict[str, str]:
    """Repository-relative path → sha256 of every file that pins dependencies (requirements*.txt
    in any folder, including requirements/ folders, pyproject.toml, lock files …)."""
    found: dict[str, str] = {}
    for current, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
        in_requirements = Path(current).name == "requirements"
        for name in sorted(files):
            if LOCK_FILES.match(name) or (in_requirements and name.endswith((".txt", ".in"))):
                path = Path(current) / name
                if path.is_symlink() or not path.is_file():
                    continue
                found[path.relative_to(root).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def setup_key(root: Path, script: str, image: str, variables: dict[str, str]) -> str:
    material = json.dumps({"script": script, "image": image, "variables": variables,
                           "locks": lock_files(root)}, sort_keys=True)
    return hashlib.sha256(material.encode()).hexdigest()[:24]


def copy_products(source: Path, target: Path, paths: list[str]) -> None:
    """Copy `paths` (relative) from `source` to `target`: regular files by content, symlinks as
    symlinks, nothing else; never following a link on either side."""
    for rel in sorted(paths):
        parts = Path(rel).parts
        if not parts or ".." in parts or Path(rel).is_absolute():
            continue
        src, dst = source / rel, target / rel
        if _has_link_parent(target, parts) or _has_link_parent(source, parts):
            continue
        try:
            st = os.lstat(src)
        except FileNotFoundError:
            continue
        if os.path.lexists(dst):
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        if stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(src), dst)
        elif stat.S_ISREG(st.st_mode):
            fd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW)
            with os.fdopen(fd, "rb") as reader, open(dst, "xb") as writer:
                shutil.copyfileobj(reader, writer)
            os.chmod(dst, stat.S_IMODE(st.st_mode) & 0o755 | 0o600)


def _has_link_parent(root: Path, parts: tuple[str, ...]) -> bool:
    current = root
    for part in parts[:-1]:
        current = current / part
        if current.is_symlink():
            return True
    return False


@dataclass(frozen=True)
class Entry:
    path: Path

    @property
    def env_dir(self) -> Path:
        return self.path / "env"

    @property
    def products_dir(self) -> Path:
        return self.path / "worktree"

    def products(self) -> list[str]:
        return json.loads((self.path / "products.json").read_text())


class SetupCache:
    """Entries of one repository under `root/<scope>`; at most `keep` of them (0: none kept, the
    directory only holds the running setups' environments)."""

    def __init__(self, root: Path, scope: str, keep: int = 3) -> None:
        slug = re.sub(r"[^\w.-]+", "_", scope).strip("._") or "repository"
        self.dir = Path(root) / slug
        self.keep = keep

    def find(self, key: str) -> Entry | None:
        if self.keep <= 0:
            return None
        path = self.dir / key
        if not (path / "products.json").is_file():
            return None
        os.utime(path)  # recently used: kept by eviction
        return Entry(path)

    def new_env_dir(self) -> Path:
        """A fresh environment directory for a setup about to run (stored by `store`, else removed)."""
        path = self.dir / f"building-{uuid.uuid4().hex[:12]}"
        (path / "env").mkdir(parents=True)
        return path / "env"

    def store(self, key: str, env_dir: Path, worktree: Path, products: list[str]) -> Entry | None:
        """Keep a successful setup: its environment directory and a copy of its worktree products."""
        if self.keep <= 0:
            return None
        building = env_dir.parent
        copy_products(worktree, building / "worktree", products)
        (building / "products.json").write_text(json.dumps(sorted(products)))
        target = self.dir / key
        try:
            os.rename(building, target)
        except OSError:  # another job stored the same key first: keep using ours until the job ends
            return None
        self.evict()
        return Entry(target)

    def discard(self, env_dir: Path) -> None:
        building = env_dir.parent
        if building.name.startswith("building-"):
            shutil.rmtree(building, ignore_errors=True)

    def evict(self) -> None:
        """Keep the `keep` most recently used entries, and any used within the last hour."""
        now = time.time()
        entries = sorted((p for p in self.dir.iterdir() if (p / "products.json").is_file()),
                         key=lambda p: p.stat().st_mtime, reverse=True)
        stale = [p for p in self.dir.iterdir() if p.name.startswith("building-")]  # crashed workers
        for path in entries[max(self.keep, 0):] + stale:
            if now - path.stat().st_mtime > IN_USE_S:
                shutil.rmtree(path, ignore_errors=True)


def worktree_files(root: Path) -> set[str]:
    """Every file and symlink under `root` (but .git), relative; links are never followed."""
    found = set()
    for current, dirs, files in os.walk(root):
        if current == str(root):
            dirs[:] = [d for d in dirs if d != ".git"]
        found.update(os.path.relpath(os.path.join(current, name), root) for name in files)
        found.update(os.path.relpath(os.path.join(current, d), root) for d in dirs
                     if os.path.islink(os.path.join(current, d)))
    return found
