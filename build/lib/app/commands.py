"""Parse `/qwen <command> [free text]` out of a comment body into a Command value."""

from __future__ import annotations

import re
from dataclasses import dataclass

KNOWN = ("fix", "explain", "help", "stop", "retry")
_LINE = re.compile(r"^\s*/qwen(?:\s+(?P<name>[A-Za-z-]+))?(?P<rest>.*)$")


@dataclass(frozen=True)
class Command:
    name: str  # one of KNOWN; anything else becomes "help"
    text: str  # free text after the command (extra instructions for `fix`)
    unknown: str | None = None  # what the user typed when it was not a command we know


def parse_command(body: str | None) -> Command | None:
    """The first `/qwen` line outside code blocks and quotes, or None."""
    if not isinstance(body, str) or not body:
        return None
    lines = body.replace("\r\n", "\n").split("\n")
    in_fence = False
    for index, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith("```") or stripped.startswith("~~~"):
            in_fence = not in_fence
            continue
        if in_fence or stripped.startswith(">"):
            continue
        match = _LINE.match(line)
        if not match:
            continue
        name = (match.group("name") or "help").lower()
        rest = match.group("rest").strip()
        following = "\n".join(lines[index + 1 :]).strip()
        text = "\n".join(part for part in (rest, following) if part)
        if name not in KNOWN:
            return Command(name="help", text="", unknown=name)
        return Command(name=name, text=text)
    return None
