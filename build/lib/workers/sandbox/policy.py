"""What a repository's `.github/qwen.yml` may ask of the sandbox, within what the operator allows:
which image it runs (`QWENFIX_SANDBOX_IMAGES`) and what network its setup phase gets
(`QWENFIX_SANDBOX_ALLOW_SETUP_NETWORK`, and never the metadata service or the worker's host).
Pure decisions; the engines enforce them."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

# Docker's reference grammar (distribution/reference): [domain[:port]/]path[:tag][@digest]
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?/)?"
_REFERENCE = re.compile(
    rf"{_DOMAIN}{_COMPONENT}(?:/{_COMPONENT})*(?::[\w][\w.-]{{0,127}})?(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{{32,}})?"
)

# Never reachable from a sandbox with network: cloud metadata and other link-local services,
# Alibaba Cloud's metadata address (in shared address space), AWS's IPv6 metadata address.
METADATA = ("169.254.0.0/16", "100.100.100.200/32", "fd00:ec2::254/128")


class SetupNetworkRefused(RuntimeError):
    """The engine cannot give a setup sandbox network without reaching what must stay out of reach."""


def image_allowed(image: str, patterns: Iterable[str]) -> bool:
    """Whether a repository may name ``image``: a valid image reference matching one of the
    operator's glob patterns (``*`` also matches ``/``)."""
    if not _REFERENCE.fullmatch(image) or len(image) > 255:
        return False
    return any(fnmatchcase(image, pattern) for pattern in patterns)


@dataclass(frozen=True)
class SetupNetwork:
    """The network a setup sandbox gets: none, or an isolated one with ``blocked`` unreachable."""

    enabled: bool
    blocked: tuple[str, ...] = ()
    reason: str = ""  # why there is none, when it was asked for


def setup_network(requested: bool, engine: str, host_addresses: Iterable[str] = ()) -> SetupNetwork:
    """Network for a setup phase that asks for it (repository and operator agree: ``requested``).

    Docker gives the container its own network namespace, where routes to the metadata service and
    to every address of the worker's host are blackholed before any command runs. bubblewrap can
    only share the host's namespace — loopback services (Redis, PostgreSQL), the metadata service —
    so it gets none."""
    if not requested:
        return SetupNetwork(False)
    if engine != "docker":
        return SetupNetwork(False, reason=(
            f"the {engine} sandbox can only share the host's network, so the setup phase runs without network"))
    blocked = list(METADATA)
    for address in host_addresses:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            continue
        if ip.is_loopback or ip.is_unspecified:  # the sandbox's own loopback is its own
            continue
        blocked.append(f"{ip}/{ip.max_prefixlen}")
    return SetupNetwork(True, tuple(dict.fromkeys(blocked)))


def local_addresses(proc: Path = Path("/proc")) -> list[str]:
    """The addresses of this machine's interfaces (IPv4 from the kernel's local routes, IPv6 from
    if_inet6): what a sandbox on a bridge could reach the worker's host at."""
    found: list[str] = []
    try:
        lines = (proc / "net/fib_trie").read_text().splitlines()
    except OSError:
        lines = []
    for previous, line in zip(lines, lines[1:], strict=False):  # "|-- 10.0.0.5", then "/32 host LOCAL"
        if "/32 host LOCAL" in line and "|--" in previous:
            found.append(previous.split("|--", 1)[1].strip())
    try:
        for line in (proc / "net/if_inet6").read_text().splitlines():
            raw = line.split()[0]
            found.append(str(ipaddress.ip_address(":".join(raw[i:i + 4] for i in range(0, 32, 4)))))
    except (OSError, IndexError, ValueError):
        pass
    return list(dict.fromkeys(found))
