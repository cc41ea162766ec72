"""How a node's outcome reaches its workflow, even once the run that started it has handed over.

A workflow run that hands over to a fresh run (continue-as-new) closes, and a closed run takes no
activity result. Holding the handover until every running node is done would idle the free
threads for as long as the slowest node runs (one 20-minute model stalls the whole run), so the
run hands over once the nodes it started last have settled (workflow/dbt_run.py, HANDOVER_SETTLE)
and the nodes still running report to the workflow id, which always names the chain's current run:

- a node completes its activity itself, through the client, so that it learns the answer: the
  server says NOT_FOUND when the run that started it has closed, and the outcome then goes to
  the current run by signal (`NodeReport`);
- a node that learns while it runs that its run has closed (its heartbeat finds no run) asks the
  current run whether it awaits the node (AWAITS_NODE_QUERY). If so, it says by signal every
  PING_SECONDS that it is still running, so the new run can tell it from a node lost with its
  worker, which it starts again. If not (the run was reset, terminated or cancelled), it stops,
  its query cancelled, as nodes of a closed run always did.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import NoReturn, TypeVar

from temporalio import activity
from temporalio.client import AsyncActivityHandle, WorkflowQueryFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from dbt_temporal.contract import AWAITS_NODE_QUERY, NODE_REPORT_SIGNAL, NodeReport, NodeResult, NodeStatus

# A handed-over node says it still runs this often; the new run gives up on it after
# workflow.dbt_run.HANDED_OVER_SILENCE without a word.
PING_SECONDS = 15.0
# How long a node whose workflow has gone may take to stop once its query was cancelled.
STOP_GRACE_SECONDS = 30.0
T = TypeVar("T")
log = logging.getLogger("dbtt.worker")


def run_has_closed() -> bool:
    """Whether the activity was cancelled because its workflow run is gone (a heartbeat found none)."""
    details = activity.cancellation_details()
    return bool(details and details.not_found)


async def complete(result: NodeResult) -> NoReturn:
    """End the activity with its result, by signal to the current run if its own has closed."""
    unique_id = activity.info().activity_id
    await _respond(lambda handle: handle.complete(result), NodeReport(unique_id=unique_id, result=result))


async def fail(err: ApplicationError) -> NoReturn:
    """End the activity with a failure; after a handover, a retryable one asks the new run for a new attempt."""
    unique_id = activity.info().activity_id
    if err.non_retryable:
        failed = NodeResult(unique_id=unique_id, status=NodeStatus.error, dbt_status="error", message=err.message)
        report = NodeReport(unique_id=unique_id, result=failed)
    else:
        report = NodeReport(unique_id=unique_id, retry=True)
    await _respond(lambda handle: handle.fail(err), report)


async def _respond(respond: Callable[[AsyncActivityHandle], Awaitable[None]], after_handover: NodeReport) -> NoReturn:
    handle = activity.client().get_async_activity_handle(task_token=activity.info().task_token)
    try:
        await respond(handle)
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise
        await _last_word(after_handover)
    activity.raise_complete_async()


async def outlive_handover(future: asyncio.Future[T], on_cancel: Callable[[], None] | None) -> T:
    """Keep a node running after its run handed over, saying so to the new run until it is done."""
    if not await _awaited():
        await _stop(future, on_cancel)
        raise asyncio.CancelledError
    while True:
        try:
            await _signal(NodeReport(unique_id=activity.info().activity_id))
        except RPCError:
            await _stop(future, on_cancel)
            raise asyncio.CancelledError from None
        done, _ = await asyncio.wait({future}, timeout=PING_SECONDS)
        if done:
            return future.result()


async def _awaited() -> bool:
    info = activity.info()
    try:
        handle = activity.client().get_workflow_handle(info.workflow_id)
        return bool(await handle.query(AWAITS_NODE_QUERY, info.activity_id, result_type=bool))
    except (RPCError, WorkflowQueryFailedError):
        return False


async def _stop(future: asyncio.Future[object], on_cancel: Callable[[], None] | None) -> None:
    """No workflow waits for the node any more: cancel its query and let it wind down."""
    info = activity.info()
    log.warning("run %s: %s stopped, its workflow run has ended", info.workflow_id, info.activity_id)
    if on_cancel is not None:
        await asyncio.to_thread(on_cancel)
    await asyncio.wait({future}, timeout=STOP_GRACE_SECONDS)


async def _last_word(report: NodeReport) -> None:
    """Signal a handed-over node's outcome; a workflow that has ended by now no longer needs it."""
    try:
        await _signal(report)
    except RPCError as err:
        info = activity.info()
        log.warning(
            "run %s: %s ended after its workflow had; outcome dropped (%s)", info.workflow_id, info.activity_id, err
        )


async def _signal(report: NodeReport) -> None:
    workflow_id = activity.info().workflow_id
    await activity.client().get_workflow_handle(workflow_id).signal(NODE_REPORT_SIGNAL, report)
