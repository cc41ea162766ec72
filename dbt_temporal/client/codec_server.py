"""`dbtt codec-server`: lets the Temporal UI (and `temporal --codec-endpoint`) show encrypted payloads.

The UI posts `{"payloads": [...]}` (protobuf JSON) to `<endpoint>/decode` or `/encode` and shows
what comes back. The server holds the payload keys, so whoever reaches it can read runs' inputs:
it binds to loopback by default and, with CODEC_SERVER_TOKEN set, answers only requests that
carry `Authorization: Bearer <token>` (the UI sends the user's access token when told to).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads
from temporalio.converter import PayloadCodec

from dbt_temporal.client.payload_keys import PayloadKeyError

log = logging.getLogger("dbtt.codec_server")
MAX_BODY_BYTES = 16 * 1024 * 1024
ALLOWED_HEADERS = "Content-Type, X-Namespace, Authorization"


def codec_server(
    codec: PayloadCodec, host: str, port: int, token: str | None, origins: list[str]
) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer((host, port), _handler(codec, token, origins))
    server.daemon_threads = True
    return server


def _handler(codec: PayloadCodec, token: str | None, origins: list[str]) -> Callable[..., BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_OPTIONS(self) -> None:  # noqa: N802 - the browser's CORS preflight
            self._reply(HTTPStatus.OK, b"")

        def do_POST(self) -> None:  # noqa: N802
            operation = self.path.rstrip("/").rsplit("/", 1)[-1]
            if operation not in ("encode", "decode"):
                return self._reply(HTTPStatus.NOT_FOUND, b"only /encode and /decode\n")
            if not self._authorized():
                return self._reply(HTTPStatus.UNAUTHORIZED, b"missing or wrong bearer token\n")
            length = int(self.headers.get("Content-Length") or 0)
            if not 0 < length <= MAX_BODY_BYTES:
                return self._reply(HTTPStatus.BAD_REQUEST, b"a JSON body of payloads is needed\n")
            try:
                payloads = json_format.Parse(self.rfile.read(length), Payloads())
                coded = asyncio.run(getattr(codec, operation)(list(payloads.payloads)))
            except (json_format.ParseError, UnicodeDecodeError):
                return self._reply(HTTPStatus.BAD_REQUEST, b'the body is not {"payloads": [...]}\n')
            except PayloadKeyError as err:
                return self._reply(HTTPStatus.UNPROCESSABLE_ENTITY, f"{err}\n".encode())
            body = json_format.MessageToJson(Payloads(payloads=coded), indent=None).encode()
            self._reply(HTTPStatus.OK, body, "application/json")

        def _authorized(self) -> bool:
            if token is None:
                return True
            given = self.headers.get("Authorization", "")
            return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())

        def _reply(self, status: HTTPStatus, body: bytes, content_type: str = "text/plain") -> None:
            self.send_response(status)
            origin = self.headers.get("Origin")
            if origin and origin in origins:
                self.send_header("Access-Control-Allow-Origin", origin)
                self.send_header("Access-Control-Allow-Credentials", "true")
                self.send_header("Access-Control-Allow-Methods", "POST, OPTIONS")
                self.send_header("Access-Control-Allow-Headers", ALLOWED_HEADERS)
                self.send_header("Vary", "Origin")
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
            log.debug("%s %s", self.address_string(), format % args)

    return Handler
