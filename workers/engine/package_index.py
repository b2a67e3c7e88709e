"""One package index for every Python installer in the setup sandbox. pip and uv follow
PIP_INDEX_URL / PIP_FIND_LINKS (workflow_setup.job_environment), but Poetry resolves against
pypi.org whatever pip is told (no setting names another default index), and PDM and Pipenv read
settings of their own. So in the setup sandbox:

* with the operator's index (QWENFIX_SANDBOX_PIP_INDEX_URL), each of them is pointed at it;
* with only the read-only package cache, its wheels/ are served as a simple index (PEP 503) on the
  setup sandbox's loopback while the setup runs, and each of them is pointed at that.

Poetry is pointed at the index by a plugin of a few lines, put on PYTHONPATH for the setup only
(Poetry loads the plugins its interpreter can see, wherever pip or pipx installed Poetry)."""

from __future__ import annotations

import shlex

TOOLS_DIR = "/tmp/qwenfix-tools"  # the Poetry plugin, on PYTHONPATH during the setup
INDEX_VARIABLE = "QWENFIX_PACKAGE_INDEX"

# Serves <wheels>/ as /simple/<project>/ pages linking /files/<name>; prints its port to <port file>.
_SERVER = """\
import http.server, os, re, sys
wheels, port_file = sys.argv[1], sys.argv[2]
def project(name):
    stem = name[:-4] if name.endswith('.whl') else re.sub(r'\\.(tar\\.gz|zip|tar\\.bz2)$', '', name)
    return re.sub(r'[-_.]+', '-', stem.split('-')[0] if name.endswith('.whl') else stem.rsplit('-', 1)[0]).lower()
files = {}
for name in sorted(os.listdir(wheels)):
    files.setdefault(project(name), []).append(name)
class Index(http.server.SimpleHTTPRequestHandler):
    def do_GET(self):
        parts = [p for p in self.path.split('?')[0].split('/') if p]
        if parts[:1] == ['files'] and len(parts) == 2 and parts[1] in os.listdir(wheels):
            with open(os.path.join(wheels, parts[1]), 'rb') as f:
                return self.send(f.read(), 'application/octet-stream')
        if parts[:1] == ['simple'] and len(parts) <= 2:
            names = files.get(re.sub(r'[-_.]+', '-', parts[1]).lower()) if len(parts) == 2 else None
            if len(parts) == 2 and names is None:
                return self.send_error(404)
            links = [f'<a href="/files/{n}">{n}</a>' for n in names] if names else \\
                [f'<a href="/simple/{p}/">{p}</a>' for p in files]
            page = '<!DOCTYPE html><html><body>' + '<br>'.join(links) + '</body></html>'
            return self.send(page.encode(), 'text/html')
        self.send_error(404)
    def send(self, body, content_type):
        self.send_response(200)
        self.send_header('Content-Type', content_type)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Index)
with open(port_file + '.new', 'w') as f:
    f.write(str(server.server_address[1]))
os.rename(port_file + '.new', port_file)
server.serve_forever()
"""

_PLUGIN = f"""\
import os

from poetry.plugins.plugin import Plugin


class PackageIndex(Plugin):
    \"\"\"qwenfix's setup sandbox: PyPI's place in the pool is taken by the operator's package index.\"\"\"

    def activate(self, poetry, io):
        url = os.environ.get({INDEX_VARIABLE!r})
        if not url or not poetry.pool.has_repository("pypi"):
            return
        from poetry.repositories.legacy_repository import LegacyRepository
        from poetry.repositories.repository_pool import Priority

        poetry.pool.remove_repository("pypi")
        poetry.pool.add_repository(LegacyRepository("package-index", url, config=poetry.config),
                                   priority=Priority.PRIMARY)
"""

_PLUGIN_FILES = {
    "qwenfix_poetry_index.py": _PLUGIN,
    "qwenfix_poetry_index-1.dist-info/METADATA": "Metadata-Version: 2.1\nName: qwenfix-poetry-index\nVersion: 1\n",
    "qwenfix_poetry_index-1.dist-info/entry_points.txt":
        "[poetry.plugin]\nqwenfix-package-index = qwenfix_poetry_index:PackageIndex\n",
}


def _write_files(directory: str, files: dict[str, str]) -> str:
    lines = [f"mkdir -p {shlex.quote(directory)}/qwenfix_poetry_index-1.dist-info"]
    lines += [f"printf %s {shlex.quote(text)} > {shlex.quote(directory + '/' + name)}" for name, text in files.items()]
    return "\n".join(lines)


def setup_preamble(index_url: str, wheels: str | None) -> str:
    """Shell lines that start the setup script: the index every installer uses, served from
    `wheels` (a directory in the sandbox) when the operator gives no index URL. Empty when the
    setup has neither (installers then use the network the setup may have)."""
    if not index_url and not wheels:
        return ""
    lines = [_write_files(TOOLS_DIR, _PLUGIN_FILES)]
    if index_url:
        lines.append(f"export {INDEX_VARIABLE}={shlex.quote(index_url)}")
    else:
        port_file = f"{TOOLS_DIR}/index-port"
        lines += [
            f"if [ -d {shlex.quote(wheels)} ]; then",
            f"  python3 -c {shlex.quote(_SERVER)} {shlex.quote(wheels)} {port_file} </dev/null >/dev/null 2>&1 &",
            "  qwenfix_index_server=$!",
            "  trap 'kill $qwenfix_index_server 2>/dev/null' EXIT",
            f"  for _ in $(seq 100); do [ -s {port_file} ] && break; sleep 0.05; done",
            f'  [ -s {port_file} ] && export {INDEX_VARIABLE}="http://127.0.0.1:$(cat {port_file})/simple/"',
            "fi",
        ]
    lines.append(f'if [ -n "${{{INDEX_VARIABLE}:-}}" ]; then')
    lines.append(f'  export PYTHONPATH="{TOOLS_DIR}${{PYTHONPATH:+:$PYTHONPATH}}"')
    lines.append(f'  export PDM_PYPI_URL="${INDEX_VARIABLE}" PIPENV_PYPI_MIRROR="${INDEX_VARIABLE}"')
    lines.append("fi")
    return "\n".join(lines) + "\n"
