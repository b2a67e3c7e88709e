"""Choosing a sandbox engine: the one the operator names, or for "auto" the first usable of Docker
and bubblewrap, with the reason for each (shown by `qwenfix doctor`)."""

from __future__ import annotations

from workers.sandbox import SandboxEngine
from workers.sandbox.bwrap import BwrapEngine
from workers.sandbox.docker import DockerEngine
from workers.sandbox.image import DEFAULT_TAG, image_exists, image_is_current


def _engine(name: str) -> SandboxEngine:
    if name == "docker":
        return DockerEngine()
    if name == "bwrap":
        return BwrapEngine()
    raise ValueError(f"unknown sandbox engine {name!r} (auto | docker | bwrap)")


def engine_status(image: str) -> list[tuple[str, bool, str]]:
    """(engine, usable, why) for every engine, for `qwenfix doctor`.

    Docker counts as usable only when the engine answers and ``image`` is present; bwrap only
    when a real sandbox starts.
    """
    out: list[tuple[str, bool, str]] = []
    ok, why = DockerEngine().available()
    if ok and not image_exists(image):
        ok, why = False, f"{why}, but image {image} is missing: run `qwenfix sandbox build`"
    elif ok and image == DEFAULT_TAG and not image_is_current(image):
        why = f"{why}, image {image} present but older than this release: run `qwenfix sandbox build`"
    elif ok:
        why = f"{why}, image {image} present"
    out.append(("docker", ok, why))
    try:
        ok, why = BwrapEngine().available()
    except Exception as e:  # pragma: no cover - defensive
        ok, why = False, f"bwrap check failed: {e}"
    out.append(("bwrap", ok, why))
    return out


def select_engine(name: str, image: str) -> SandboxEngine:
    """The engine named, or for "auto" the first usable of docker, bwrap.

    Raises RuntimeError naming every engine's reason when none can be used.
    """
    if name != "auto":
        return _engine(name)
    status = engine_status(image)
    for engine_name, ok, _ in status:
        if ok:
            return _engine(engine_name)
    reasons = "; ".join(f"{n}: {why}" for n, _, why in status)
    raise RuntimeError(f"no sandbox engine is usable ({reasons})")
