"""Which image runs a job: the image's `qwenfix.toolchains` label, the operator's mapping, the
nearest version."""

from __future__ import annotations

import pytest

from workers.failure.actions import Toolchain
from workers.sandbox.toolchains import (
    ToolchainImage,
    ToolchainImagesError,
    image_toolchains,
    parse_toolchain_images,
    plan_image,
    version_distance,
)

DEFAULT = "qwenfix-sandbox:bookworm"
LABELS = {
    DEFAULT: {"python": "3.11.2", "node": "18.20.4", "npm": "9.2.0"},
    "ci/go:1.22": {"go": "1.22.5"},
    "ci/py312": {"python": "3.12.4", "node": "20.11.1"},
}


def read(tag):
    return LABELS.get(tag)


def tc(name, version=None):
    return Toolchain(name, version, f"actions/setup-{name}@v5")


def test_mapping_in_both_spellings():
    text = "python:3.12=ci/py312, go=ci/go:1.22"
    assert parse_toolchain_images(text) == [ToolchainImage("python", "3.12", "ci/py312"),
                                            ToolchainImage("go", None, "ci/go:1.22")]
    assert parse_toolchain_images('{"python:3.12": "ci/py312", "go": "ci/go:1.22"}') == parse_toolchain_images(text)
    assert parse_toolchain_images("") == []


@pytest.mark.parametrize("text,error", [
    ("python3.12", "is not TOOLCHAIN[:VERSION]=IMAGE"), ("{nope", "not valid JSON"),
    ("perl:5=img", "unknown toolchain 'perl'"), ("python:3.12=", "no image"), ('{"python": 3}', "JSON object"),
])
def test_bad_mappings_say_what_is_wrong(text, error):
    with pytest.raises(ToolchainImagesError, match=error.replace("[", r"\[").replace("]", r"\]")):
        parse_toolchain_images(text)


@pytest.mark.parametrize("requested,available,distance", [
    ("3.12", "3.12.4", 0), ("3.11", "3.12.4", 1), ("3.9", "3.11.2", 2), ("20.x", "20.11.1", 0),
    ("18", "20.11.1", 2000), ("stable", "1.79.0", 0), (None, "3.11.2", 0), (">=3.10", "3.11.2", 1),
])
def test_version_distance(requested, available, distance):
    assert version_distance(requested, available) == distance


def test_the_default_image_serves_what_it_has_and_says_the_nearest_version():
    plan = plan_image([tc("python", "3.12")], DEFAULT, [], read)
    assert plan.image == DEFAULT and plan.missing == []
    assert plan.notes == ["python 3.11.2 instead of 3.12 (the nearest available)"]
    exact = plan_image([tc("python", "3.11")], DEFAULT, [], read)
    assert exact.notes == [] and exact.provided == {"python": "3.11.2"}


def test_a_mapped_image_wins_when_it_is_nearer_or_has_the_toolchain():
    mapping = parse_toolchain_images("python:3.12=ci/py312,go:1.22=ci/go:1.22")
    assert plan_image([tc("python", "3.12")], DEFAULT, mapping, read).image == "ci/py312"
    assert plan_image([tc("python", "3.11")], DEFAULT, mapping, read).image == DEFAULT
    go = plan_image([tc("go", "1.21")], DEFAULT, mapping, read)
    assert go.image == "ci/go:1.22" and go.notes == ["go 1.22.5 instead of 1.21 (the nearest available)"]


def test_a_toolchain_no_image_has_is_missing():
    plan = plan_image([tc("python", "3.11"), tc("rust", "stable")], DEFAULT, [], read)
    assert plan.image == DEFAULT and [t.name for t in plan.missing] == ["rust"]


def test_uv_is_not_an_image_toolchain_and_unknown_images_are_trusted():
    assert plan_image([Toolchain("uv", "0.5.4", "astral-sh/setup-uv@v5")], DEFAULT, [], read).missing == []
    unknown = plan_image([tc("go")], "somewhere/else", [], lambda tag: None)
    assert unknown.image == "somewhere/else" and unknown.missing == []


def test_the_label_is_read_from_the_real_image(docker_engine):
    listed = image_toolchains(docker_engine.image)
    assert listed and "python" in listed
    assert image_toolchains("qwenfix-no-such-image:0") is None
