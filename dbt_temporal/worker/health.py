"""Worker health: a file touched while the worker can really work, an HTTP probe, and its check."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

from temporalio.client import Client

from dbt_temporal.worker.health_file import check_file

log = logging.getLogger("dbtt.health")
REFRESH_SECONDS = 15.0
SERVER_CHECK_TIMEOUT_SECONDS = 5.0


async def _worker_can_poll(client: Client, is_running: bool) -> bool:
    """The worker is up and the server answers: the conditions under which it takes work."""
    if not is_running:
        return False
    try:
        return await asyncio.wait_for(client.service_client.check_health(), SERVER_CHECK_TIMEOUT_SECONDS)
    except Exception:  # noqa: BLE001 - any failure means not healthy now
        return False


async def keep_fresh(client: Client, worker_running: Callable[[], bool], path: Path) -> None:
    """Touch `path` every 15 s while the worker can poll; a wedged loop or lost server stops it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    reported_unhealthy = False
    while True:
        if await _worker_can_poll(client, worker_running()):
            path.touch()
            if reported_unhealthy:
                log.info("health check passes again; refreshing %s", path)
                reported_unhealthy = False
        elif worker_running() and not reported_unhealthy:
            # Said once per change; a worker still starting (or stopping) is no news.
            log.warning("health check failed; not refreshing %s", path)
            reported_unhealthy = True
        await asyncio.sleep(REFRESH_SECONDS)


HEALTH_PATH = "/health"
REQUEST_LINE_LIMIT = 8 * 1024
READ_TIMEOUT_SECONDS = 5.0


async def serve(host: str, port: int, path: Path) -> asyncio.Server:
    """A tiny HTTP endpoint: `GET /health` answers 200 while the health file is fresh, 503 otherwise.

    It says only `healthy` or `unhealthy` (the file's path and age are for `dbtt healthcheck`), and
    a request it cannot parse, or a client that goes away, costs a short answer and no log line:
    anyone who reaches the port must not be able to flood the worker's log.
    """

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request_line = await asyncio.wait_for(reader.readline(), READ_TIMEOUT_SECONDS)
            status, body = _response(request_line, path)
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except (TimeoutError, ConnectionError, ValueError, asyncio.IncompleteReadError):
            pass  # a slow, oversized or vanished request: nothing to answer, nothing to log
        finally:
            writer.close()

    return await asyncio.start_server(answer, host, port, limit=REQUEST_LINE_LIMIT)


def _response(request_line: bytes, path: Path) -> tuple[str, bytes]:
    method, target, *_ = request_line.decode("latin-1").split(" ") + ["", ""]
    if method != "GET":
        return "405 Method Not Allowed", b"only GET /health\n"
    if target.split("?", 1)[0] != HEALTH_PATH:
        return "404 Not Found", b"only GET /health\n"
    healthy, _ = check_file(path)
    return ("200 OK", b"healthy\n") if healthy else ("503 Service Unavailable", b"unhealthy\n")
