"""Hook workflows for the lifecycle hook tests: what teams plug in before and after a dbt run.

Kept in a module of its own: the workflow sandbox re-imports the module that defines a workflow.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError


@workflow.defn(name="sources_not_ready")
class SourcesNotReady:
    @workflow.run
    async def run(self, payload: dict[str, Any]) -> dict[str, Any]:
        return {"skip": True, "reason": f"sources not ready for {payload['invocation_id']}"}


@workflow.defn(name="plain_false")
class PlainFalse:
    @workflow.run
    async def run(self, payload: dict[str, Any]) -> bool:
        return False


@workflow.defn(name="go_ahead")
class GoAhead:
    @workflow.run
    async def run(self, payload: dict[str, Any]) -> dict[str, Any]:
        return {"skip": False, "seen_event": payload["event"], "had_output": payload["output"] is not None}


@workflow.defn(name="resolve_credentials")
class ResolveCredentials:
    @workflow.run
    async def run(self, payload: dict[str, Any]) -> dict[str, Any]:
        return {"extra_env": dict(payload.get("extra_env_to_give") or {"HOOK_TOKEN": "from-the-hook-1234"})}


@workflow.defn(name="broken_hook")
class BrokenHook:
    @workflow.run
    async def run(self, payload: Any) -> None:
        raise ApplicationError("catalog unreachable", non_retryable=True)


@workflow.defn(name="lingering_hook")
class LingeringHook:
    """Still running long after the run that started it ended."""

    @workflow.run
    async def run(self, payload: Any) -> str:
        await workflow.sleep(timedelta(seconds=3))
        return "done"


@workflow.defn(name="slow_hook")
class SlowHook:
    @workflow.run
    async def run(self, payload: Any) -> None:
        await workflow.sleep(timedelta(seconds=30))


HOOK_WORKFLOWS = [SourcesNotReady, PlainFalse, GoAhead, ResolveCredentials, BrokenHook, LingeringHook, SlowHook]
