"""The GitHub App credentials that setup stored in the data dir (file mode 0600).

`qwenfix serve` registers its App through GitHub's manifest flow and keeps what GitHub hands back
(id, slug, private key, webhook secret, OAuth client id and secret) in ``DATA_DIR/github-app.json``.
Settings read it beneath the environment: a value set in the environment always wins.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

FILE_NAME = "github-app.json"
# what GitHub's manifest conversion answers, by the setting each becomes
FIELDS = {
    "app_id": "id",
    "app_slug": "slug",
    "private_key": "pem",
    "webhook_secret": "webhook_secret",
    "client_id": "client_id",
    "client_secret": "client_secret",
}


def path(data_dir: Path) -> Path:
    return Path(data_dir) / FILE_NAME


def stamp(data_dir: Path) -> int:
    """Changes whenever the file is written (0 when there is none)."""
    try:
        return path(data_dir).stat().st_mtime_ns
    except OSError:
        return 0


def load(data_dir: Path) -> dict[str, str]:
    """The stored settings by name ({} when setup has not run or the file is unreadable)."""
    try:
        data = json.loads(path(data_dir).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {name: str(data[name]) for name in FIELDS if data.get(name) not in (None, "")}


def from_conversion(answer: dict) -> dict[str, str]:
    """Settings from GitHub's answer to ``POST /app-manifests/{code}/conversions``."""
    return {name: str(answer[key]) for name, key in FIELDS.items() if answer.get(key) not in (None, "")}


def save(data_dir: Path, values: dict[str, str]) -> Path:
    """Write the credentials readable by this user only; an existing file is replaced whole."""
    target = path(data_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{FILE_NAME}.{os.getpid()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # the umask must not widen it, nor an older file's mode
        os.write(fd, json.dumps(values, indent=2).encode())
    finally:
        os.close(fd)
    os.replace(temporary, target)
    return target
