"""A git server on loopback for tests: `git http-backend` (git's own smart-HTTP CGI) behind a small HTTP server.

With a token, every request must carry it as HTTP basic auth (any user name), as GitHub accepts one.
"""

from __future__ import annotations

import base64
import os
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from dbt_temporal.client.devserver import free_port

COMMITTER = {
    "GIT_AUTHOR_NAME": "dbtt tests",
    "GIT_AUTHOR_EMAIL": "tests@dbtt.invalid",
    "GIT_COMMITTER_NAME": "dbtt tests",
    "GIT_COMMITTER_EMAIL": "tests@dbtt.invalid",
}


def git(*args: str, cwd: Path) -> str:
    done = subprocess.run(
        ["git", *args], cwd=cwd, env={**os.environ, **COMMITTER}, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


class GitHttpServer:
    def __init__(self, root: Path, token: str | None = None) -> None:
        self.root = root
        self.token = token
        self.port = free_port()
        self.refused = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())

    def url(self, repository: str) -> str:
        return f"http://127.0.0.1:{self.port}/{repository}"

    def start(self) -> GitHttpServer:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _authorized(self, header: str | None) -> bool:
        if self.token is None:
            return True
        if not header or not header.startswith("Basic "):
            return False
        _, _, password = base64.b64decode(header.removeprefix("Basic ")).decode().partition(":")
        return password == self.token

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                self._backend()

            def do_POST(self) -> None:  # noqa: N802
                self._backend()

            def _backend(self) -> None:
                if not server._authorized(self.headers.get("Authorization")):
                    server.refused += 1
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="git"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                path, _, query = self.path.partition("?")
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                env = {
                    **os.environ,
                    "GIT_PROJECT_ROOT": str(server.root),
                    "GIT_HTTP_EXPORT_ALL": "1",
                    "PATH_INFO": path,
                    "QUERY_STRING": query,
                    "REQUEST_METHOD": self.command,
                    "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                    "CONTENT_LENGTH": str(len(body)),
                    "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
                    "REMOTE_ADDR": "127.0.0.1",
                }
                done = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True)
                head, _, payload = done.stdout.partition(b"\r\n\r\n")
                headers = [line.split(": ", 1) for line in head.decode().split("\r\n") if ": " in line]
                status = next((int(v.split()[0]) for k, v in headers if k.lower() == "status"), 200)
                self.send_response(status)
                for name, value in headers:
                    if name.lower() != "status":
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        return Handler
