"""Temporal activities: planning and running nodes on the worker's warm sessions.

dbt is synchronous; each activity hands its work to the worker's node thread
pool and heartbeats while it waits, so a dead worker is noticed quickly and
cancellation reaches the node.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import socket
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from dbt_common.exceptions import DbtBaseException
from temporalio import activity
from temporalio.common import RawValue
from temporalio.exceptions import ApplicationError

from dbt_temporal.engine.executor import run_node
from dbt_temporal.engine.planner import plan_selection
from dbt_temporal.engine.pool import SessionPool, UnknownProject
from dbt_temporal.models import PLAN_ACTIVITY, NodeRequest, NodeResult, Plan, PlanRequest

HEARTBEAT_EVERY_SECONDS = 5.0
T = TypeVar("T")


def configuration_error(err: Exception) -> ApplicationError:
    """A failure no retry can fix, carrying dbt's own message."""
    if isinstance(err, UnknownProject):
        return ApplicationError(str(err), type="ProjectNotFound", non_retryable=True)
    message = str(err).strip() or type(err).__name__
    return ApplicationError(message, type="Configuration", non_retryable=True)


class DbtActivities:
    def __init__(self, pool: SessionPool, threads: int) -> None:
        self.pool = pool
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="dbt-node")
        # Temporal's own default worker identity, so per-node results name the same process.
        self.identity = f"{os.getpid()}@{socket.gethostname()}"

    async def _in_thread(self, work: Callable[[], T]) -> T:
        """Run blocking dbt work on a node thread, heartbeating until it returns."""
        loop = asyncio.get_running_loop()
        context = contextvars.copy_context()
        future = loop.run_in_executor(self.executor, context.run, work)
        while True:
            done, _ = await asyncio.wait({future}, timeout=HEARTBEAT_EVERY_SECONDS)
            if done:
                return future.result()
            activity.heartbeat()

    @activity.defn(name=PLAN_ACTIVITY)
    async def plan_project(self, request: PlanRequest) -> Plan:
        def plan() -> Plan:
            session = self.pool.get(request.session)
            return plan_selection(session, request)

        try:
            return await self._in_thread(plan)
        except (UnknownProject, DbtBaseException) as err:
            raise configuration_error(err) from None

    @activity.defn(dynamic=True)
    async def execute_node(self, args: Sequence[RawValue]) -> NodeResult:
        request = activity.payload_converter().from_payload(args[0].payload, NodeRequest)

        def execute() -> NodeResult:
            session = self.pool.get(request.session)
            outcome = run_node(session, request.command, request.unique_id, request.index, request.total)
            return outcome.result

        try:
            result = await self._in_thread(execute)
        except (UnknownProject, DbtBaseException) as err:
            raise configuration_error(err) from None
        return result.model_copy(update={"worker": self.identity})

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.pool.close()
