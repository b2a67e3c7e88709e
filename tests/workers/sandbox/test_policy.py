"""What a repository may ask of the sandbox: images the operator lists, and a setup network that
never reaches the metadata service or the worker's host."""

from __future__ import annotations

import errno
import textwrap
import uuid
from pathlib import Path

import pytest

from core.config import Settings
from tests.support.docker import SANDBOX_IMAGE
from tests.workers.sandbox.test_docker import _Listener, _ws
from workers.sandbox import Limits
from workers.sandbox.docker import DockerEngine
from workers.sandbox.policy import (
    METADATA,
    SetupNetworkRefused,
    image_allowed,
    local_addresses,
    setup_network,
)

# --------------------------------------------------------------------------------------- images


def test_by_default_a_repository_may_name_only_the_default_image():
    settings = Settings(_env_file=None)
    assert settings.allowed_sandbox_images == ["qwenfix-sandbox:bookworm"]
    assert image_allowed("qwenfix-sandbox:bookworm", settings.allowed_sandbox_images)
    for other in ("qwenfix-sandbox:latest", "docker.io/library/qwenfix-sandbox:bookworm", "alpine",
                  "ghcr.io/attacker/miner:latest"):
        assert not image_allowed(other, settings.allowed_sandbox_images), other


def test_the_operator_lists_globs():
    settings = Settings(_env_file=None, sandbox_images="ghcr.io/acme/*, python:3.*-slim")
    allowed = settings.allowed_sandbox_images
    assert allowed == ["ghcr.io/acme/*", "python:3.*-slim"]
    assert image_allowed("ghcr.io/acme/ci:3.12", allowed)
    assert image_allowed("ghcr.io/acme/team/ci@sha256:" + "a" * 64, allowed)  # `*` spans `/`
    assert image_allowed("python:3.12-slim", allowed)
    assert not image_allowed("ghcr.io/acmeevil/ci:1", allowed)
    assert not image_allowed("python:3.12", allowed)
    assert not image_allowed("qwenfix-sandbox:bookworm", allowed)  # the list replaces the default


@pytest.mark.parametrize("reference", ["ghcr.io/acme/-v", "ghcr.io/acme/CI", "ghcr.io/acme/a b",
                                       "ghcr.io/acme/../x", "ghcr.io/acme/x:", ""])
def test_what_is_not_an_image_reference_is_never_allowed(reference):
    assert not image_allowed(reference, ["*"])


# --------------------------------------------------------------------------------------- network


def test_setup_network_is_given_only_where_it_can_be_fenced():
    assert setup_network(False, "docker") == setup_network(False, "bwrap")
    assert not setup_network(False, "docker").enabled
    bwrap = setup_network(True, "bwrap", ["10.0.0.5"])
    assert not bwrap.enabled and "host's network" in bwrap.reason
    docker = setup_network(True, "docker", ["127.0.0.1", "10.0.0.5", "::1", "fd00::2", "junk"])
    assert docker.enabled
    assert set(METADATA) <= set(docker.blocked) and "169.254.0.0/16" in docker.blocked
    assert "10.0.0.5/32" in docker.blocked and "fd00::2/128" in docker.blocked
    assert not any(b.startswith(("127.", "::1")) for b in docker.blocked)  # the sandbox's own loopback


def test_the_hosts_addresses_are_read_from_the_kernel(tmp_path):
    (tmp_path / "net").mkdir()
    (tmp_path / "net/fib_trie").write_text(textwrap.dedent("""\
        Main:
          +-- 0.0.0.0/0 3 0 5
             |-- 10.0.0.0
                /8 link UNICAST
             |-- 10.0.0.5
                /32 host LOCAL
             |-- 127.0.0.1
                /32 host LOCAL
        Local:
          +-- 0.0.0.0/0 3 0 5
             |-- 10.0.0.5
                /32 host LOCAL
    """))
    (tmp_path / "net/if_inet6").write_text(
        "00000000000000000000000000000001 01 80 10 80       lo\n"
        "fd000000000000000000000000000002 02 40 00 80     eth0\n")
    assert local_addresses(tmp_path) == ["10.0.0.5", "127.0.0.1", "::1", "fd00::2"]
    assert local_addresses(tmp_path / "missing") == []


@pytest.mark.docker
def test_a_docker_setup_sandbox_with_network_cannot_reach_the_metadata_service_or_the_host(docker_engine, tmp_path):
    """The setup sandbox gets its own network namespace with blackhole routes to 169.254.0.0/16
    and the host's addresses, installed before anything runs, that the sandbox user cannot lift.
    dockerd here runs with --bridge=none, so the namespace has no uplink ("none" stands in for
    the bridge): this checks the routes and their effect (EINVAL from a blackhole, not
    ENETUNREACH from a missing route). Fails on main: no route was installed."""
    engine = DockerEngine(client=docker_engine.client, network="none")
    sandbox = engine.start(_ws(tmp_path), SANDBOX_IMAGE, Limits(network=True, timeout_s=60),
                           labels={"qwenfix.job": "policy-test"})
    host = next(a for a in local_addresses() if ":" not in a and not a.startswith("127."))
    try:
        probe = textwrap.dedent(f"""
            import socket, struct
            for address in ("169.254.169.254", "{host}"):
                s = socket.socket()
                try:
                    s.connect((address, 80))
                except OSError as e:
                    print(address, e.errno)
            # try to lift the blackhole: RTM_DELROUTE 169.254.0.0/16
            n = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
            body = struct.pack("BBBBBBBBI", 2, 16, 0, 0, 254, 4, 0, 6, 0) + struct.pack("HH", 8, 1) + bytes([169, 254, 0, 0])
            n.send(struct.pack("IHHII", 16 + len(body), 25, 0x5, 1, 0) + body)
            reply = n.recv(4096)
            print("delete", -struct.unpack("i", reply[16:20])[0])
        """)
        result = sandbox.exec(["python3", "-c", probe])
        lines = dict(line.rsplit(" ", 1) for line in result.output.strip().splitlines())
        assert lines == {"169.254.169.254": str(errno.EINVAL), host: str(errno.EINVAL),
                         "delete": str(errno.EPERM)}, result.output
        routes = sandbox.exec(["cat", "/proc/net/route"]).output
        assert "0000FEA9" in routes  # 169.254.0.0 (little-endian), a reject route
    finally:
        sandbox.stop()


@pytest.mark.docker
def test_docker_refuses_the_network_it_cannot_fence(docker_engine, tmp_path):
    """An image without python3 cannot run the route helper: no sandbox is left, and the refusal
    says why (the caller then runs setup offline)."""
    client = docker_engine.client
    tag = f"qwenfix-test-nopython:{uuid.uuid4().hex[:8]}"
    container = client.containers.create(client.images.get(SANDBOX_IMAGE).id, entrypoint=["true"])
    try:  # the same files, but python3 is not on its PATH
        container.commit(repository=tag.split(":")[0], tag=tag.split(":")[1],
                         changes=["ENV PATH=/usr/local/sbin:/usr/sbin:/sbin"])
    finally:
        container.remove(force=True)
    try:
        engine = DockerEngine(client=client, network="none")
        with pytest.raises(SetupNetworkRefused, match="gets no network"):
            engine.start(_ws(tmp_path), tag, Limits(network=True), labels={"qwenfix.job": "policy-test-2"})
        assert client.containers.list(all=True, filters={"label": "qwenfix.job=policy-test-2"}) == []
    finally:
        client.images.remove(tag, noprune=False)


def test_bubblewrap_never_shares_the_hosts_network(bwrap_engine, tmp_path: Path):
    """Fails on main: `--share-net` gave the setup sandbox the host's network namespace, where it
    reached the worker's loopback services (here a listener on the host's 127.0.0.1)."""
    listener = _Listener()
    try:
        with pytest.raises(SetupNetworkRefused, match="host's network"):
            sandbox = bwrap_engine.start(_ws(tmp_path), "", Limits(network=True, timeout_s=30))
            try:
                sandbox.exec(["python3", "-c", f"import socket; socket.create_connection(('127.0.0.1', {listener.port}))"])
            finally:
                sandbox.stop()
        assert listener.accepted == 0
    finally:
        listener.close()
