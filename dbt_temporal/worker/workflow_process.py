"""The worker's second process: it runs workflow tasks, and nothing of dbt.

Each node that finishes waits for the workflow's turn before its children
start. In the process that runs dbt, that turn competes with the node threads
for Python's interpreter lock: measured at 500 nodes, a workflow task took
26 ms at the median there. In a process of its own it has a core to itself,
and the dbt process serves activities only. `dbtt worker` starts it, passes it
its own settings through the environment (never argv: they may hold secrets),
and stops it on the way out; it stops by itself if the worker dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys

from temporalio.client import Client
from temporalio.worker import Worker

from dbt_temporal.config.settings import Settings
from dbt_temporal.worker.tuning import worker_options
from dbt_temporal.workflow.dbt_run import DbtRunWorkflow

STOP_TIMEOUT_SECONDS = 10.0

log = logging.getLogger("dbtt.worker")


def settings_env(settings: Settings) -> dict[str, str]:
    """The settings as the environment variables that produce them again."""
    env: dict[str, str] = {}
    for field, value in settings.model_dump(exclude_none=True).items():
        env[Settings.env_name(field)] = json.dumps(value) if isinstance(value, dict | list) else str(value)
    return env


async def start_workflow_process(settings: Settings) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        __name__,
        env={**os.environ, **settings_env(settings)},
    )


async def stop_workflow_process(process: asyncio.subprocess.Process) -> None:
    if process.returncode is not None:
        return
    process.terminate()
    try:
        await asyncio.wait_for(process.wait(), STOP_TIMEOUT_SECONDS)
    except TimeoutError:
        process.kill()
        await process.wait()


async def serve_workflows(client: Client, settings: Settings, stop: asyncio.Event) -> None:
    """Poll workflow tasks until `stop` is set or the worker that started this process is gone."""
    parent = os.getppid()
    worker = Worker(
        client, task_queue=settings.temporal_task_queue, workflows=[DbtRunWorkflow], **worker_options(settings)
    )
    async with worker:
        log.info("workflow tasks: polling %s/%s", settings.temporal_namespace, settings.temporal_task_queue)
        while not stop.is_set() and os.getppid() == parent:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)


def main() -> None:
    """Entry point of the process; settings come from the environment the worker gave it."""
    import signal

    from dbt_temporal.client.connect import connect

    settings = Settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Ctrl-C reaches the whole process group; the worker stops this process once its nodes are done.
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    async def serve() -> None:
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await serve_workflows(await connect(settings), settings, stop)

    asyncio.run(serve())
    # As the CLI does: the Temporal client's Rust threads can crash CPython's teardown
    # (temporalio/sdk-python#300); everything is stopped by now, so skip it.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
