"""Model-written text made safe to post on GitHub. The model reads untrusted pull requests, so what
it writes can be steered: an @mention of someone not on the pull request would notify a stranger
(or a whole team), and a link or image the model was told to add could send readers — or GitHub's
image proxy, with data in the URL — anywhere. Mentions of people not on the pull request are broken
with a zero-width joiner; links and images to hosts other than the repository's GitHub host keep
their text and lose their target, shown defanged (`evil[.]example`); raw HTML tags are escaped.
Code spans and fenced blocks are left as they are: GitHub links nothing inside them."""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit

ZWJ = "\u200d"  # between "@" and the name: reads the same, notifies nobody

_CODE = re.compile(
    r"^[ \t]*(?P<fence>`{3,}|~{3,})[^\n]*\n.*?(?:^[ \t]*(?P=fence)[^\n]*$|\Z)"  # fenced block
    r"|(?P<ticks>`+)(?:(?!(?P=ticks)).)+?(?P=ticks)",  # code span
    re.MULTILINE | re.DOTALL,
)
_PROSE = re.compile(
    r"(?P<link>(?P<bang>!?)\[(?P<text>[^\]\n]*)\]\(\s*<?(?P<target>[^)\s>]*)>?(?:\s+(?:\"[^\"]*\"|'[^']*'))?\s*\))"
    r"|<(?P<auto>(?:https?|ftp|mailto):[^>\s]+)>"
    r"|(?P<bare>(?:\b(?:https?|ftp)://|\bwww\.)[^\s<>()\[\]\"'`]+)"
    r"|(?<![A-Za-z0-9_`])@(?P<name>[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38})(?P<team>/[A-Za-z0-9_.-]+)?"
    r"|<(?P<tag>/?[A-Za-z][A-Za-z0-9-]*)",
    re.IGNORECASE,
)


def github_host(api_url: str) -> str:
    """The host people see the repository on: github.com for api.github.com, else the Enterprise
    server's own host (https://HOST/api/v3)."""
    host = (urlsplit(api_url).hostname or "").lower()
    return "github.com" if host == "api.github.com" else host


def neutralize(text: str, people: Iterable[str], host: str) -> str:
    """``text`` with mentions of anyone but ``people`` (logins on the pull request) broken and
    links to anywhere but ``host`` defanged."""
    allowed = {p.lower() for p in people if p}
    host = host.lower()
    out, last = [], 0
    for code in _CODE.finditer(text):
        out.append(_prose(text[last:code.start()], allowed, host))
        out.append(code.group(0))
        last = code.end()
    out.append(_prose(text[last:], allowed, host))
    return "".join(out)


def _prose(text: str, people: set[str], host: str) -> str:
    def one(m: re.Match) -> str:
        if m.group("link"):
            target = m.group("target")
            if _local(target, host):
                return m.group(0)
            what = "image from" if m.group("bang") else "link to"
            label = m.group("text").strip()
            return f"{label + ' ' if label else ''}({what} {_defang_host(target)} removed)"
        if m.group("auto"):
            url = m.group("auto")
            return m.group(0) if _local(url, host) else _defang(url)
        if m.group("bare"):
            url = m.group("bare")
            return url if _local(url, host) else _defang(url)
        if m.group("name"):
            name, team = m.group("name"), m.group("team")
            if not team and name.lower() in people:
                return m.group(0)
            return f"@{ZWJ}{name}{team or ''}"
        return f"&lt;{m.group('tag')}"  # raw HTML: no <a>, <img>, <picture>, … from the model

    return _PROSE.sub(one, text)


def _local(url: str, host: str) -> bool:
    """A relative link (on the repository's own GitHub) or an http(s) link to ``host``."""
    if url.startswith("www."):
        url = "http://" + url
    parts = urlsplit(url)
    if not parts.scheme and not parts.netloc and not url.startswith("//"):
        return True
    return parts.scheme.lower() in ("http", "https") and (parts.hostname or "").lower() == host


def _defang_host(url: str) -> str:
    parts = urlsplit("http://" + url[2:] if url.startswith("//") else url)
    return (parts.hostname or url.split("/", 1)[0] or "elsewhere").replace(".", "[.]")


def _defang(url: str) -> str:
    """Readable, not clickable: hxxps://evil[.]example/path."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    where, slash, path = rest.partition("/")
    shown = where.replace(".", "[.]") + slash + path
    return f"{scheme.lower().replace('t', 'x')}://{shown}" if scheme else shown
