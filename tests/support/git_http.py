"""Real git smart HTTP for tests: `git http-backend` (CGI) behind a small ASGI app.

    app = git_http_app(repos_root, authorize=lambda token: token in tokens)
    fastapi_app.mount("/git", app)          # clone URL: http://127.0.0.1:PORT/git/owner/repo.git

Repositories live at ``repos_root/owner/repo.git`` (bare). Every request's Basic (or Bearer /
``token``) Authorization header is decoded and ``authorize(token_or_None)`` decides; a refusal is
``401`` with ``WWW-Authenticate: Basic`` so git reports an authentication failure. Pushes work
(``http.receivepack`` is enabled; ``REMOTE_USER`` is set for authenticated requests).

Helpers: :func:`make_bare_repo`, :func:`push_commit`, :func:`repo_file_at`, :func:`repo_ref`.
Fixture: ``git_server`` (function scope) runs the app with uvicorn on 127.0.0.1 in a thread.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import zlib
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

Authorize = Callable[[str | None], bool]
Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

_CHUNK = 64 * 1024


# --------------------------------------------------------------------------------------------
# request log
# --------------------------------------------------------------------------------------------


@dataclass
class GitRequest:
    """One HTTP request seen by the git endpoint (recorded after the response is sent)."""

    method: str
    path: str  # relative to the mount point, e.g. "/owner/repo.git/info/refs"
    query: str
    token: str | None  # the token from the Authorization header (None when absent)
    status: int = 0
    bytes_in: int = 0  # request body size
    bytes_out: int = 0  # response body size
    command: str | None = None  # protocol v2 command in the body: "ls-refs", "fetch", ...
    _head: bytes = field(default=b"", repr=False)  # first bytes of the request body
    _gzipped: bool = field(default=False, repr=False)

    def _body_start(self) -> bytes | None:
        if not self._gzipped:
            return self._head
        try:
            return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(self._head)
        except zlib.error:
            return None

    def _note_body(self, chunk: bytes, gzipped: bool) -> None:
        self._gzipped = gzipped
        if len(self._head) < 8192:
            self._head += chunk[: 8192 - len(self._head)]
        data = self._body_start()
        if data is None:
            return
        # first pkt-line: 4 hex digits of length (including themselves), then "command=NAME\n"
        try:
            size = int(data[:4], 16)
        except ValueError:
            return
        match = re.match(rb"command=([A-Za-z0-9_-]+)", data[4:size])
        if match:
            self.command = match.group(1).decode()

    @property
    def ref_updates(self) -> list[tuple[str, str, str]]:
        """(old sha, new sha, ref) for each ref a push asked to update: the pkt-line commands
        at the start of a ``git-receive-pack`` POST, before the pack."""
        if not (self.method == "POST" and self.service == "git-receive-pack"):
            return []
        data, out, pos = self._body_start() or b"", [], 0
        while pos + 4 <= len(data):
            try:
                size = int(data[pos : pos + 4], 16)
            except ValueError:
                break
            if size < 4:  # flush-pkt: the commands are over
                break
            command = data[pos + 4 : pos + size].split(b"\0", 1)[0].decode("utf-8", "replace").strip()
            old, _, rest = command.partition(" ")
            new, _, ref = rest.partition(" ")
            out.append((old, new, ref))
            pos += size
        return out

    @property
    def repo(self) -> str | None:
        """'owner/repo' for '/owner/repo.git/...' paths."""
        parts = self.path.strip("/").split("/")
        if len(parts) >= 2 and parts[1].endswith(".git"):
            return f"{parts[0]}/{parts[1][:-4]}"
        return None

    @property
    def service(self) -> str | None:
        """'git-upload-pack' (clone/fetch) or 'git-receive-pack' (push), else None."""
        for name in ("git-upload-pack", "git-receive-pack"):
            if self.path.endswith("/" + name) or f"service={name}" in self.query:
                return name
        return None

    @property
    def is_pack_request(self) -> bool:
        """A POST that transfers objects or commands (not the ref advertisement)."""
        return self.method == "POST" and self.service is not None


# --------------------------------------------------------------------------------------------
# ASGI app
# --------------------------------------------------------------------------------------------


def token_from_authorization(value: str | None) -> str | None:
    """The token carried by an Authorization header: Basic (password part), Bearer or token."""
    if not value:
        return None
    scheme, _, rest = value.strip().partition(" ")
    rest = rest.strip()
    scheme = scheme.lower()
    if scheme == "basic":
        try:
            decoded = base64.b64decode(rest, validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            return None
        user, sep, password = decoded.partition(":")
        return password if sep else user
    if scheme in ("bearer", "token"):
        return rest or None
    return None


def _route_path(scope: Scope) -> str:
    """The request path below the mount point (Starlette keeps the full path + root_path)."""
    path = scope.get("path", "/")
    root = scope.get("root_path", "") or ""
    if root and (path == root or path.startswith(root.rstrip("/") + "/")):
        path = path[len(root.rstrip("/")) :]
    return path or "/"


def git_http_app(
    repos_root: Path,
    authorize: Authorize,
    on_request: Callable[[GitRequest], None] | None = None,
) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """An ASGI app serving the bare repositories under ``repos_root`` over git smart HTTP."""
    repos_root = Path(repos_root).resolve()
    git = shutil.which("git") or "git"

    async def _respond(send: Send, status: int, body: bytes, headers: list | None = None) -> None:
        hdrs = [(b"content-type", b"text/plain; charset=utf-8")] + (headers or [])
        hdrs.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": hdrs})
        await send({"type": "http.response.body", "body": body})

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return

        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        path = _route_path(scope)
        query = scope.get("query_string", b"").decode("latin-1")
        token = token_from_authorization(headers.get("authorization"))
        record = GitRequest(method=scope["method"], path=path, query=query, token=token)
        try:
            if ".." in path.split("/"):
                record.status = 400
                await _respond(send, 400, b"bad path\n")
                return
            if not authorize(token):
                record.status = 401
                await _respond(
                    send,
                    401,
                    b"authentication required\n",
                    [(b"www-authenticate", b'Basic realm="qwenfix-test-git"')],
                )
                return
            await _run_backend(scope, receive, send, headers, path, query, token, record)
        finally:
            if on_request is not None:
                on_request(record)

    async def _run_backend(scope, receive, send, headers, path, query, token, record) -> None:
        env = {
            "PATH": os.environ.get("PATH", os.defpath),
            "HOME": str(repos_root),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": "/dev/null",
            "GIT_PROJECT_ROOT": str(repos_root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "GIT_HTTP_MAX_REQUEST_BUFFER": str(100 * 1024 * 1024),
            # command-scope config for the backend and the upload-pack/receive-pack it runs
            "GIT_CONFIG_COUNT": "4",
            "GIT_CONFIG_KEY_0": "http.receivepack",
            "GIT_CONFIG_VALUE_0": "true",
            "GIT_CONFIG_KEY_1": "http.uploadpack",
            "GIT_CONFIG_VALUE_1": "true",
            "GIT_CONFIG_KEY_2": "uploadpack.allowReachableSHA1InWant",  # like GitHub
            "GIT_CONFIG_VALUE_2": "true",
            "GIT_CONFIG_KEY_3": "safe.directory",
            "GIT_CONFIG_VALUE_3": "*",
            "GATEWAY_INTERFACE": "CGI/1.1",
            "SERVER_PROTOCOL": "HTTP/" + scope.get("http_version", "1.1"),
            "SERVER_SOFTWARE": "qwenfix-test-git",
            "REQUEST_METHOD": scope["method"],
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "REMOTE_ADDR": (scope.get("client") or ("127.0.0.1", 0))[0],
        }
        if token is not None:
            env["REMOTE_USER"] = "x-access-token"
            env["AUTH_TYPE"] = "Basic"
        if "content-type" in headers:
            env["CONTENT_TYPE"] = headers["content-type"]
        if "content-length" in headers:
            env["CONTENT_LENGTH"] = headers["content-length"]
        for name, value in headers.items():
            if name in ("authorization", "content-type", "content-length"):
                continue
            env["HTTP_" + name.upper().replace("-", "_")] = value

        proc = await asyncio.create_subprocess_exec(
            git,
            "http-backend",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            cwd=str(repos_root),
        )

        gzipped = "gzip" in headers.get("content-encoding", "")

        async def feed() -> None:
            assert proc.stdin is not None
            try:
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        break
                    body = message.get("body", b"")
                    if body:
                        record.bytes_in += len(body)
                        record._note_body(body, gzipped)
                        proc.stdin.write(body)
                        await proc.stdin.drain()
                    if not message.get("more_body", False):
                        break
            except (BrokenPipeError, ConnectionResetError):
                pass
            finally:
                try:
                    proc.stdin.close()
                except Exception:  # pragma: no cover - already closed
                    pass

        async def drain_stderr() -> bytes:
            assert proc.stderr is not None
            return await proc.stderr.read()

        feeder = asyncio.ensure_future(feed())
        errors = asyncio.ensure_future(drain_stderr())
        assert proc.stdout is not None
        buffer = b""
        while b"\r\n\r\n" not in buffer and b"\n\n" not in buffer:
            chunk = await proc.stdout.read(_CHUNK)
            if not chunk:
                break
            buffer += chunk
        crlf, lf = buffer.find(b"\r\n\r\n"), buffer.find(b"\n\n")
        if crlf >= 0 and (lf < 0 or crlf < lf):
            head, rest = buffer[:crlf], buffer[crlf + 4 :]
        elif lf >= 0:
            head, rest = buffer[:lf], buffer[lf + 2 :]
        else:
            await feeder
            await proc.wait()
            stderr = await errors
            record.status = 500
            await _respond(send, 500, b"git http-backend failed\n" + stderr[-2000:])
            return

        status = 200
        out_headers: list[tuple[bytes, bytes]] = []
        for line in head.replace(b"\r\n", b"\n").split(b"\n"):
            name, _, value = line.partition(b":")
            name, value = name.strip(), value.strip()
            if not name:
                continue
            if name.lower() == b"status":
                status = int(value.split()[0])
            else:
                out_headers.append((name.lower(), value))
        record.status = status
        await send({"type": "http.response.start", "status": status, "headers": out_headers})
        if rest:
            record.bytes_out += len(rest)
            await send({"type": "http.response.body", "body": rest, "more_body": True})
        while True:
            chunk = await proc.stdout.read(_CHUNK)
            if not chunk:
                break
            record.bytes_out += len(chunk)
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        await feeder
        await errors
        await proc.wait()

    return app


# --------------------------------------------------------------------------------------------
# repository helpers (local git, no HTTP)
# --------------------------------------------------------------------------------------------

_HELPER_ENV = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_AUTHOR_NAME": "Test Author",
    "GIT_AUTHOR_EMAIL": "author@example.com",
    "GIT_COMMITTER_NAME": "Test Author",
    "GIT_COMMITTER_EMAIL": "author@example.com",
    "LC_ALL": "C",
}


def _git(*args: str, cwd: Path | None = None, input: bytes | None = None, strip: bool = True) -> str:
    env = {"PATH": os.environ.get("PATH", os.defpath), "HOME": tempfile.gettempdir()}
    env.update(_HELPER_ENV)
    proc = subprocess.run(
        ["git", "-c", "core.hooksPath=/dev/null", "-c", "commit.gpgsign=false", *args],
        cwd=cwd,
        env=env,
        input=input,
        capture_output=True,
        timeout=300,
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"git {' '.join(args)} failed ({proc.returncode}): {proc.stderr.decode(errors='replace')}"
        )
    out = proc.stdout.decode("utf-8", errors="replace")
    return out.strip() if strip else out


def bare_repo_path(root: Path, full_name: str) -> Path:
    owner, _, name = full_name.partition("/")
    if not owner or not name or "/" in name or ".." in (owner, name):
        raise ValueError(f"expected 'owner/repo', got {full_name!r}")
    return Path(root) / owner / f"{name}.git"


@dataclass(frozen=True)
class Symlink:
    """A file committed as a symbolic link (mode 120000) to ``target``, as `ln -s` and git do."""

    target: str


def _write_files(work: Path, files: Mapping[str, str | bytes | Symlink]) -> None:
    for rel, content in files.items():
        target = work / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Symlink):
            if target.exists() or target.is_symlink():
                target.unlink()
            target.symlink_to(content.target)
        elif isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content, encoding="utf-8")


def make_bare_repo(
    root: Path,
    full_name: str,
    files: Mapping[str, str | bytes],
    branch: str = "main",
    message: str = "Initial commit",
) -> str:
    """Create ``root/owner/repo.git`` with one commit holding ``files``; return its sha."""
    bare = bare_repo_path(root, full_name)
    if bare.exists():
        raise FileExistsError(bare)
    bare.parent.mkdir(parents=True, exist_ok=True)
    _git("init", "--quiet", "--bare", f"--initial-branch={branch}", str(bare))
    with tempfile.TemporaryDirectory(prefix="qwenfix-mkrepo-") as tmp:
        work = Path(tmp) / "work"
        _git("init", "--quiet", f"--initial-branch={branch}", str(work))
        _write_files(work, files)
        _git("add", "-A", cwd=work)
        _git("commit", "--quiet", "--allow-empty", "-m", message, cwd=work)
        _git("push", "--quiet", str(bare), f"HEAD:refs/heads/{branch}", cwd=work)
        return _git("rev-parse", "HEAD", cwd=work)


def push_commit(
    root: Path,
    full_name: str,
    branch: str,
    files: Mapping[str, str | bytes],
    message: str = "Update",
    parent_branch: str | None = None,
    delete: Iterable[str] = (),
) -> str:
    """Commit ``files`` (and delete ``delete``) on top of ``parent_branch`` (default: ``branch``
    itself; a new root commit when neither exists), move ``branch`` there, return the sha."""
    bare = bare_repo_path(root, full_name)
    base = parent_branch or branch
    with tempfile.TemporaryDirectory(prefix="qwenfix-push-") as tmp:
        work = Path(tmp) / "work"
        _git("clone", "--quiet", "--no-checkout", str(bare), str(work))
        has_base = bool(_git("ls-remote", "--heads", str(bare), f"refs/heads/{base}", cwd=work))
        if has_base:
            _git("checkout", "--quiet", "--detach", f"origin/{base}", cwd=work)
        else:
            _git("checkout", "--quiet", "--orphan", "qwenfix-tmp", cwd=work)
        for rel in delete:
            path = work / rel
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists() or path.is_symlink():
                path.unlink()
        _write_files(work, files)
        _git("add", "-A", cwd=work)
        _git("commit", "--quiet", "--allow-empty", "-m", message, cwd=work)
        _git("push", "--quiet", "--force", str(bare), f"HEAD:refs/heads/{branch}", cwd=work)
        return _git("rev-parse", "HEAD", cwd=work)


def repo_ref(root: Path, full_name: str, ref: str) -> str | None:
    """The sha ``ref`` (e.g. 'main', 'refs/pull/1/head') points to in the bare repo, or None."""
    bare = bare_repo_path(root, full_name)
    try:
        return _git("--git-dir", str(bare), "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    except RuntimeError:
        return None


def repo_file_at(root: Path, full_name: str, ref: str, path: str) -> str:
    """The content of ``path`` at ``ref`` in the bare repository (KeyError when absent)."""
    bare = bare_repo_path(root, full_name)
    try:
        return _git("--git-dir", str(bare), "show", f"{ref}:{path}", strip=False)  # content exactly
    except RuntimeError as exc:
        raise KeyError(f"{full_name}@{ref}:{path}") from exc


def repo_commit_message(root: Path, full_name: str, ref: str) -> str:
    """The full message of the commit at ``ref`` in the bare repository."""
    return _git("--git-dir", str(bare_repo_path(root, full_name)), "log", "-1", "--format=%B", ref, strip=False)


def set_ref(root: Path, full_name: str, ref: str, sha: str) -> None:
    """Point ``ref`` (e.g. 'refs/pull/7/head') at ``sha`` in the bare repository."""
    _git("--git-dir", str(bare_repo_path(root, full_name)), "update-ref", ref, sha)


# --------------------------------------------------------------------------------------------
# uvicorn in a thread + the fixture
# --------------------------------------------------------------------------------------------


class ServerThread:
    """Run an ASGI app with uvicorn on 127.0.0.1 (free port) in a daemon thread."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # accepted connections inherit it: without it a response written in two parts waits
        # ~40 ms for the client's delayed ACK (Nagle), on every request
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app, log_level="warning", access_log=False, lifespan="off", loop="asyncio"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    def start(self) -> ServerThread:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()


@dataclass
class GitServer:
    """What the ``git_server`` fixture yields."""

    url: str  # http://127.0.0.1:PORT  (clone URLs: f"{url}/{owner}/{repo}.git")
    root: Path  # directory of bare repositories: root/owner/repo.git
    valid_tokens: set[str] = field(default_factory=set)
    requests: list[GitRequest] = field(default_factory=list)
    token: str = ""  # one valid token, ready to use (also in valid_tokens)
    allow_anonymous: bool = False  # let requests without a token through

    def authorize(self, token: str | None) -> bool:
        if token is None:
            return self.allow_anonymous
        return token in self.valid_tokens

    def clone_url(self, full_name: str) -> str:
        return f"{self.url}/{full_name}.git"

    def make_repo(
        self, full_name: str, files: Mapping[str, str | bytes], branch: str = "main"
    ) -> str:
        return make_bare_repo(self.root, full_name, files, branch=branch)

    def push_commit(
        self,
        full_name: str,
        branch: str,
        files: Mapping[str, str | bytes],
        message: str = "Update",
        parent_branch: str | None = None,
        delete: Iterable[str] = (),
    ) -> str:  # noqa: E501
        return push_commit(self.root, full_name, branch, files, message, parent_branch, delete)

    def file_at(self, full_name: str, ref: str, path: str) -> str:
        return repo_file_at(self.root, full_name, ref, path)

    def ref(self, full_name: str, ref: str) -> str | None:
        return repo_ref(self.root, full_name, ref)

    def pack_requests(
        self, full_name: str | None = None, service: str = "git-upload-pack"
    ) -> list[GitRequest]:  # noqa: E501
        """Recorded POSTs of ``service`` (clone/fetch by default), optionally for one repo."""
        return [
            r
            for r in list(self.requests)
            if r.is_pack_request
            and r.service == service
            and (full_name is None or r.repo == full_name)
        ]

    def fetches(self, full_name: str | None = None) -> list[GitRequest]:
        """Recorded protocol-v2 ``fetch`` commands (clone or fetch that negotiated objects)."""
        return [r for r in self.pack_requests(full_name) if r.command == "fetch"]


@pytest.fixture
def git_server(tmp_path_factory: pytest.TempPathFactory):
    """A git smart-HTTP server on 127.0.0.1 serving bare repos from a fresh directory."""
    root = tmp_path_factory.mktemp("git-repos")
    server = GitServer(url="", root=root, token="ghs_" + secrets.token_hex(18))
    server.valid_tokens.add(server.token)
    app = git_http_app(root, server.authorize, on_request=server.requests.append)
    thread = ServerThread(app).start()
    server.url = thread.url
    try:
        yield server
    finally:
        thread.stop()
