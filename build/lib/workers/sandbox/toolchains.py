"""Which sandbox image runs a job, from the toolchains its workflow asks for.

An image lists what it carries in the label `qwenfix.toolchains` (JSON: toolchain → version, null
when absent); an image without the label is taken to have python3 only. The operator maps
toolchains and versions to more images with one setting, QWENFIX_SANDBOX_TOOLCHAIN_IMAGES, either
JSON (`{"python:3.12": "img", "node:20": "img2"}`) or `python:3.12=img,node:20=img2`. For each job
the image that provides the most requested toolchains, at the nearest versions, is used; what
could not be matched exactly is said in the report.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field

TOOLCHAINS_LABEL = "qwenfix.toolchains"
KNOWN = ("python", "node", "go", "java", "rust")  # what setup actions provide; uv installs with pip
NO_LABEL = {"python": "3"}  # an image that says nothing: assume python3 only


class ToolchainImagesError(ValueError):
    """QWENFIX_SANDBOX_TOOLCHAIN_IMAGES cannot be read."""


@dataclass(frozen=True)
class ToolchainImage:
    toolchain: str
    version: str | None  # None: any version of it
    image: str


def parse_toolchain_images(text: str) -> list[ToolchainImage]:
    """`{"python:3.12": "img"}` or `python:3.12=img,node=img2` → entries; raises ToolchainImagesError."""
    text = (text or "").strip()
    if not text:
        return []
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ToolchainImagesError(f"not valid JSON: {exc}") from exc
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise ToolchainImagesError('expected a JSON object like {"python:3.12": "image"}')
        pairs = list(data.items())
    else:
        pairs = []
        for item in filter(None, (part.strip() for part in text.split(","))):
            key, sep, image = item.partition("=")
            if not sep:
                raise ToolchainImagesError(f"{item!r} is not TOOLCHAIN[:VERSION]=IMAGE")
            pairs.append((key, image))
    entries = []
    for key, image in pairs:
        name, _, version = key.strip().partition(":")
        name, image = name.strip().lower(), image.strip()
        if name not in KNOWN:
            raise ToolchainImagesError(f"unknown toolchain {name!r} (one of {', '.join(KNOWN)})")
        if not image:
            raise ToolchainImagesError(f"no image for {key!r}")
        entries.append(ToolchainImage(name, version.strip() or None, image))
    return entries


def image_toolchains(tag: str, client=None) -> dict[str, str] | None:
    """The toolchains image `tag` lists in its label (absent ones left out); None when the image
    cannot be inspected (no Docker engine, image missing)."""
    import docker

    try:
        image = (client or docker.from_env(timeout=30)).images.get(tag)
    except docker.errors.DockerException:
        return None
    raw = (image.labels or {}).get(TOOLCHAINS_LABEL)
    if raw is None:
        return dict(NO_LABEL)
    try:
        data = json.loads(raw)
    except ValueError:
        return dict(NO_LABEL)
    if not isinstance(data, dict):
        return dict(NO_LABEL)
    return {str(k): str(v) for k, v in data.items() if v}


_NUMBERS = re.compile(r"\d+")


def _numbers(version: str | None) -> list[int]:
    return [int(n) for n in _NUMBERS.findall(version or "")[:3]]


def version_distance(requested: str | None, available: str) -> int:
    """0 when `available` satisfies `requested` (`3.12` ~ `3.12.4`, `20.x` ~ `20.11.1`, `stable`
    ~ anything); larger the further apart (a major version counts for a thousand minors)."""
    wanted, have = _numbers(requested), _numbers(available)
    if not wanted or not have:
        return 0
    distance = 0
    for i, (w, h) in enumerate(zip(wanted, have, strict=False)):
        if w != h:
            distance += abs(w - h) * (1000 if i == 0 else 1 if i == 1 else 0)
            break
    return distance


@dataclass
class ImagePlan:
    image: str
    provided: dict[str, str] = field(default_factory=dict)  # toolchain → version the image has
    notes: list[str] = field(default_factory=list)  # "python 3.11.2 instead of 3.12 (nearest available)"
    missing: list = field(default_factory=list)  # requested toolchains no image provides


def plan_image(requested: list, default_image: str, mapping: list[ToolchainImage],
               read: Callable[[str], dict[str, str] | None]) -> ImagePlan:
    """The image for a job asking for `requested` toolchains (objects with `name`, `version`,
    `describe()`); `read(tag)` lists an image's toolchains (None: unknown, trusted as is)."""
    wanted = [t for t in requested if t.name in KNOWN]
    images = [default_image] + [e.image for e in mapping if e.image != default_image]
    offers: dict[str, dict[str, str] | None] = {}
    for image in dict.fromkeys(images):
        listed = read(image)
        declared = {e.toolchain: e.version or "" for e in mapping if e.image == image}
        offers[image] = None if listed is None and not declared else {**declared, **(listed or {})}

    def score(image: str) -> tuple[int, int, int]:
        offer = offers[image]
        if offer is None:
            return (len(wanted), 0, int(image == default_image))
        have = [t for t in wanted if t.name in offer]
        return (len(have), -sum(version_distance(t.version, offer[t.name]) for t in have),
                int(image == default_image))

    best = max(offers, key=score)
    offer = offers[best]
    plan = ImagePlan(best)
    if offer is None:
        return plan  # the engine cannot tell (bubblewrap, or no Docker): reproduction will show
    for toolchain in wanted:
        if toolchain.name not in offer:
            plan.missing.append(toolchain)
            continue
        have = offer[toolchain.name]
        plan.provided[toolchain.name] = have
        if have and toolchain.version and version_distance(toolchain.version, have):
            plan.notes.append(f"{toolchain.name} {have} instead of {toolchain.version} (the nearest available)")
    return plan
