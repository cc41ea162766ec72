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
    while True:
        if await _worker_can_poll(client, worker_running()):
            path.touch()
        else:
            log.warning("health check failed; not refreshing %s", path)
        await asyncio.sleep(REFRESH_SECONDS)


async def serve(port: int, path: Path) -> asyncio.Server:
    """A tiny HTTP endpoint: 200 while the health file is fresh, 503 otherwise."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await asyncio.wait_for(reader.readline(), 5)
        except (TimeoutError, ConnectionError):
            writer.close()
            return
        healthy, line = check_file(path)
        status = "200 OK" if healthy else "503 Service Unavailable"
        body = (line + "\n").encode()
        writer.write(
            f"HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        writer.close()

    return await asyncio.start_server(answer, "0.0.0.0", port)
