"""Setup products kept per repository while its lock files are unchanged."""

from __future__ import annotations

import os

from workers.engine.setup_cache import SetupCache, copy_products, lock_files, setup_key


def repo(root, files):
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_lock_files_are_found_anywhere_but_in_dependency_folders(tmp_path):
    root = repo(tmp_path, {"requirements.txt": "flake8\n", "requirements-dev.txt": "pytest\n",
                           "requirements/test.txt": "x\n", "web/package-lock.json": "{}", "go.sum": "",
                           "node_modules/a/package-lock.json": "{}", "src/app.py": "", "pyproject.toml": ""})
    assert sorted(lock_files(root)) == ["go.sum", "pyproject.toml", "requirements-dev.txt", "requirements.txt",
                                        "requirements/test.txt", "web/package-lock.json"]


def test_the_key_changes_with_a_lock_file_the_script_or_the_image_only(tmp_path):
    root = repo(tmp_path, {"requirements.txt": "flake8\n", "app.py": "x = 1\n"})
    key = setup_key(root, "pip install -r requirements.txt", "img", {})
    (root / "app.py").write_text("x = 2\n")  # code changes: same setup
    assert setup_key(root, "pip install -r requirements.txt", "img", {}) == key
    assert setup_key(root, "pip install -r requirements.txt", "img2", {}) != key
    assert setup_key(root, "pip install flake8", "img", {}) != key
    (root / "requirements.txt").write_text("flake8==7.1.1\n")
    assert setup_key(root, "pip install -r requirements.txt", "img", {}) != key


def test_an_entry_is_stored_found_and_restored(tmp_path):
    cache = SetupCache(tmp_path / "cache", "octo/calc", keep=2)
    env_dir = cache.new_env_dir()
    (env_dir / "python").mkdir()
    worktree = repo(tmp_path / "wt", {"node_modules/a/index.js": "ok", "app.py": ""})
    os.symlink("a/index.js", worktree / "node_modules/link.js")
    entry = cache.store("k1", env_dir, worktree, ["node_modules/a/index.js", "node_modules/link.js"])
    assert entry is not None and (entry.env_dir / "python").is_dir()
    assert cache.find("k1") == entry and cache.find("k2") is None
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    copy_products(entry.products_dir, fresh, entry.products())
    assert (fresh / "node_modules/a/index.js").read_text() == "ok"
    assert os.readlink(fresh / "node_modules/link.js") == "a/index.js"


def test_copies_never_follow_links(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("host secret")
    source = tmp_path / "source"
    source.mkdir()
    os.symlink(outside, source / "dir")  # a folder that is a link out
    os.symlink(outside / "secret", source / "file")
    target = tmp_path / "target"
    target.mkdir()
    os.symlink(outside, target / "planted")  # a link planted where a product would go
    copy_products(source, target, ["dir/secret", "file", "planted/x", "../outside/secret"])
    assert not (target / "dir").exists()
    assert os.path.islink(target / "file")  # copied as a link, never read through
    assert not (outside / "x").exists()


def test_eviction_keeps_recent_entries(tmp_path):
    cache = SetupCache(tmp_path / "cache", "octo/calc", keep=1)
    for key in ("a", "b"):
        cache.store(key, cache.new_env_dir(), tmp_path, [])
    old = cache.dir / "a"
    os.utime(old, (1, 1))
    cache.evict()
    assert not old.exists() and (cache.dir / "b").exists()
    off = SetupCache(tmp_path / "cache", "octo/other", keep=0)
    env_dir = off.new_env_dir()
    assert off.store("k", env_dir, tmp_path, []) is None and off.find("k") is None
    off.discard(env_dir)
    assert not env_dir.exists()
