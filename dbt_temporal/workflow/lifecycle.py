"""Lifecycle hooks: any Temporal workflow, in any language, before the first node and after the run.

Deterministic workflow code. Each hook is a child workflow on its own task
queue; hooks of one event run in list order. A `pre_run` hook may end the run
early (its result is a skip sentinel) or add env values for the run
(`extra_env`). What a failing hook does is its `on_error` policy: `fail`,
`warn` (recorded in the output's `hook_errors` and the run log) or `ignore`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ChildWorkflowError, TimeoutError, WorkflowAlreadyStartedError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from dbt_temporal.config.project_config import HookSpec, LifecycleHooks
    from dbt_temporal.contract import HookRun


@dataclass
class PreRunOutcome:
    skip: bool = False
    skip_reason: str | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    # Why the run must not go on: a `fail` hook failed.
    abort: str | None = None


def skip_requested(result: Any) -> tuple[bool, str | None]:
    """A pre_run result that says to skip the run: `false`, or `{"skip": true[, "reason": ...]}`."""
    if result is False:
        return True, None
    if isinstance(result, dict) and result.get("skip") is True:
        reason = result.get("reason")
        return True, str(reason) if reason is not None else None
    return False, None


def extra_env_of(result: Any) -> dict[str, str]:
    """The `extra_env` a pre_run hook returned; every value must be a string."""
    extra = result.get("extra_env") if isinstance(result, dict) else None
    if extra is None:
        return {}
    if not isinstance(extra, dict):
        raise ValueError("extra_env must be an object of string values")
    wrong = sorted(key for key, value in extra.items() if not isinstance(value, str))
    if wrong:
        raise ValueError(f"extra_env values must be strings; not so for {', '.join(wrong)}")
    return dict(extra)


class _HookFailed(Exception):
    pass


class LifecycleHookRunner:
    def __init__(self, hooks: LifecycleHooks, say: Callable[..., None], runs: list[HookRun], errors: list[str]):
        self.hooks = hooks
        self.say = say
        # What the run reports; carried over when the run continues as new.
        self.runs = runs
        self.errors = errors

    async def pre_run(self, payload: dict[str, Any]) -> PreRunOutcome:
        outcome = PreRunOutcome()
        for index, hook in enumerate(self.hooks.pre_run):
            try:
                result = await self._run("pre_run", index, hook, payload)
                skip, reason = skip_requested(result)
                if skip and not hook.fire_and_forget:
                    self.runs[-1].outcome = "skipped-run"
                    because = f": {reason}" if reason else ""
                    self.say(f"pre_run hook {hook.workflow_type} asked to skip the run{because}")
                    return PreRunOutcome(skip=True, skip_reason=reason)
                outcome.extra_env.update(extra_env_of(result))
            except (_HookFailed, ValueError) as err:
                message = self._record_failure("pre_run", hook, str(err))
                if hook.on_error == "fail":
                    outcome.abort = message
                    return outcome
        return outcome

    async def post_run(self, event: str, payload: dict[str, Any]) -> bool:
        """Run the hooks of `on_success` or `on_failure`; False when a `fail` hook failed."""
        succeeded = True
        for index, hook in enumerate(getattr(self.hooks, event)):
            try:
                await self._run(event, index, hook, payload)
            except _HookFailed as err:
                self._record_failure(event, hook, str(err))
                succeeded = succeeded and hook.on_error != "fail"
        return succeeded

    async def _run(self, event: str, index: int, hook: HookSpec, payload: dict[str, Any]) -> Any:
        info = workflow.info()
        child_id = f"{info.workflow_id}-{event}-{index}-{info.run_id[:8]}"
        record = HookRun(event=event, workflow_type=hook.workflow_type, workflow_id=child_id, outcome="started")
        self.runs.append(record)
        arg = hook.input if hook.input is not None else {**payload, "event": event}
        timeout = timedelta(seconds=hook.timeout_secs)
        try:
            if hook.fire_and_forget:
                await workflow.start_child_workflow(
                    hook.workflow_type,
                    arg,
                    id=child_id,
                    task_queue=hook.task_queue,
                    execution_timeout=timeout,
                    parent_close_policy=ParentClosePolicy.ABANDON,
                )
                self.say(f"{event} hook {hook.workflow_type} started ({child_id}), not awaited")
                return None
            result = await workflow.execute_child_workflow(
                hook.workflow_type, arg, id=child_id, task_queue=hook.task_queue, execution_timeout=timeout
            )
        except (ChildWorkflowError, WorkflowAlreadyStartedError) as err:
            raise _HookFailed(_failure_text(err)) from err
        record.outcome = "completed"
        self.say(f"{event} hook {hook.workflow_type} completed ({child_id})")
        return result

    def _record_failure(self, event: str, hook: HookSpec, reason: str) -> str:
        message = f"{event} hook {hook.workflow_type} failed: {reason}"
        if self.runs and self.runs[-1].workflow_type == hook.workflow_type:
            self.runs[-1].outcome = "failed"
            self.runs[-1].error = reason
        if hook.on_error != "ignore":
            self.errors.append(message)
            self.say(message)
        return message


def _failure_text(err: BaseException) -> str:
    """The innermost message: what the hook workflow itself said, or that it timed out."""
    while err.__cause__ is not None:
        err = err.__cause__
    if isinstance(err, TimeoutError):
        return "timed out"
    return str(err) or type(err).__name__
