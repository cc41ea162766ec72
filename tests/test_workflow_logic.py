"""The `dbt_run` workflow's own logic, in-process, with stand-in activities instead of dbt.

A real Temporal dev server (the session's) runs the real workflow code; the
activities answer from a script, so each case takes well under a second and
covers orderings that are slow or awkward to provoke with real dbt nodes.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from temporalio import activity
from temporalio.client import Client, WorkflowFailureError
from temporalio.common import RawValue
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from dbt_temporal.client.codec import data_converter
from dbt_temporal.contract import (
    PLAN_ACTIVITY,
    PROJECT_HOOKS_ACTIVITY,
    SESSION_QUERY,
    STORE_ARTIFACTS_ACTIVITY,
    ArtifactOptions,
    DbtRunInput,
    DbtRunOutput,
    NodeRequest,
    NodeResult,
    NodeStatus,
    Plan,
    PlannedNode,
    PlanRequest,
    ProjectHooksRequest,
    SessionSpec,
    StoreArtifactsRequest,
    StoredArtifacts,
)
from dbt_temporal.worker import node_report
from dbt_temporal.workflow.dbt_run import DbtRunWorkflow
from tests.support import memo_of

START_HOOK = "operation.p.p-on-run-start-0"
END_HOOK = "operation.p.p-on-run-end-0"


def planned(name: str, *parents: int) -> PlannedNode:
    return PlannedNode(
        unique_id=f"model.p.{name}",
        name=name,
        resource_type="model",
        description=f"sql table model main.{name}",
        parents=list(parents),
    )


PLAN = Plan(
    project="p",
    target="dev",
    threads=2,
    nodes=[planned("a"), planned("b", 0), planned("c")],
    stat_line="3 table models, 2 project hooks",
    start_hooks=1,
    end_hooks=1,
)


@dataclass
class Script:
    """What the stand-in activities answer, and what they were asked."""

    plan: Plan = field(default_factory=lambda: PLAN)
    failing_nodes: set[str] = field(default_factory=set)
    start_hook_status: str = "success"
    hook_requests: list[ProjectHooksRequest] = field(default_factory=list)
    node_requests: list[NodeRequest] = field(default_factory=list)
    # The session each node got: asked of the run, as a worker does (node requests leave it out).
    node_sessions: list[SessionSpec] = field(default_factory=list)
    store_requests: list[StoreArtifactsRequest] = field(default_factory=list)
    store_unreachable: bool = False
    # Nodes that keep running until their run has handed over (continue-as-new) and every other node is
    # done; each of them then fails once with a retryable error when it is in `fail_once`.
    outliving_nodes: set[str] = field(default_factory=set)
    fail_once: set[str] = field(default_factory=set)
    # Whether each outliving node saw the rest of the run finish while it ran.
    others_finished_meanwhile: dict[str, bool] = field(default_factory=dict)
    finished: set[str] = field(default_factory=set)

    def activities(self) -> list:
        @activity.defn(name=PLAN_ACTIVITY)
        async def plan_project(request: PlanRequest) -> Plan:
            return self.plan

        @activity.defn(name=PROJECT_HOOKS_ACTIVITY)
        async def project_hooks(request: ProjectHooksRequest) -> list[NodeResult]:
            self.hook_requests.append(request)
            start = request.hook_type == "on-run-start"
            status = self.start_hook_status if start else "success"
            return [
                NodeResult(
                    unique_id=START_HOOK if start else END_HOOK,
                    status=NodeStatus.success if status == "success" else NodeStatus.error,
                    dbt_status=status,
                )
            ]

        @activity.defn(dynamic=True)
        async def execute_node(args: Sequence[RawValue]) -> NodeResult:
            request = activity.payload_converter().from_payload(args[0].payload, NodeRequest)
            self.node_requests.append(request)
            handle = activity.client().get_workflow_handle(activity.info().workflow_id)
            self.node_sessions.append(request.session or await handle.query(SESSION_QUERY, result_type=SessionSpec))
            uid = request.unique_id
            if uid in self.outliving_nodes and uid not in self.others_finished_meanwhile:
                self.others_finished_meanwhile[uid] = await self._outlive_the_run(uid)
                if uid in self.fail_once:
                    await node_report.fail(ApplicationError("connection reset by the warehouse"))
            failed = uid in self.failing_nodes
            self.finished.add(uid)
            await node_report.complete(
                NodeResult(
                    unique_id=uid,
                    status=NodeStatus.error if failed else NodeStatus.success,
                    dbt_status="error" if failed else "success",
                )
            )

        @activity.defn(name=STORE_ARTIFACTS_ACTIVITY)
        async def store_artifacts(request: StoreArtifactsRequest) -> StoredArtifacts:
            self.store_requests.append(request)
            if self.store_unreachable:
                raise ApplicationError(f"cannot reach the artifact store {request.options.store}", non_retryable=True)
            place = f"{request.options.store}/{request.workflow_id}"
            return StoredArtifacts(artifacts=[f"{place}/run_results.json"], log_path=f"{place}/log.txt")

        return [plan_project, project_hooks, execute_node, store_artifacts]

    async def _outlive_the_run(self, uid: str) -> bool:
        """Wait (10 s at most) until the run that started this node has handed over and the others are done."""
        info = activity.info()
        others = {node.unique_id for node in self.plan.nodes} - self.outliving_nodes
        handle = activity.client().get_workflow_handle(info.workflow_id)
        for _ in range(100):
            handed_over = (await handle.describe()).run_id != info.workflow_run_id
            if handed_over and others <= self.finished:
                return True
            await asyncio.sleep(0.1)
        return False


async def run_with_history(
    address: str,
    script: Script,
    run_input: DbtRunInput,
    queue: str | None = None,
    extra_workflows: Sequence = (),
    last_run: bool = False,
) -> tuple[DbtRunOutput, str]:
    """Run the workflow against the stand-in activities; its output and the history of its first
    workflow run (or, with `last_run`, of the last one after any handover) as JSON."""
    client = await Client.connect(address, data_converter=data_converter)
    queue = queue or f"logic-{uuid.uuid4().hex[:8]}"
    workflows = [DbtRunWorkflow, *extra_workflows]
    async with Worker(client, task_queue=queue, workflows=workflows, activities=script.activities()):
        handle = await client.start_workflow(
            "dbt_run",
            run_input,
            id=queue,
            task_queue=queue,
            result_type=DbtRunOutput,
            # A bug in workflow code retries its task forever; end the test instead.
            execution_timeout=timedelta(seconds=60),
        )
        try:
            output = await handle.result()
        except WorkflowFailureError as err:
            if not getattr(err.cause, "details", None):
                raise  # failed before it had an output (bad input)
            output = DbtRunOutput.model_validate(err.cause.details[0])
        run_id = None if last_run else handle.first_execution_run_id
        history = await client.get_workflow_handle(queue, run_id=run_id).fetch_history()
    return output, history.to_json()


def run(temporal, script: Script, run_input: DbtRunInput | None = None) -> DbtRunOutput:  # noqa: ANN001
    output, _ = asyncio.run(run_with_history(temporal.address, script, run_input or DbtRunInput()))
    return output


def statuses(output: DbtRunOutput) -> list[tuple[str, str]]:
    return [(result.unique_id, result.dbt_status) for result in output.node_results]


def test_project_hooks_come_first_and_last_and_nodes_share_the_run_invocation(temporal) -> None:  # noqa: ANN001
    script = Script()
    workflow_id = f"logic-{uuid.uuid4().hex[:8]}"
    output, _ = asyncio.run(run_with_history(temporal.address, script, DbtRunInput(), queue=workflow_id))

    assert output.success
    assert statuses(output)[0] == (START_HOOK, "success")
    assert statuses(output)[-1] == (END_HOOK, "success")
    assert output.selected == ["model.p.a", "model.p.b", "model.p.c"]
    assert {request.invocation.invocation_id for request in script.node_requests} == {output.invocation_id}
    end = next(request for request in script.hook_requests if request.hook_type == "on-run-end")
    assert sorted(result.unique_id for result in end.results) == output.selected  # on-run-end sees the results
    live = memo_of(temporal.address, workflow_id)
    assert live["node_status"][START_HOOK] == live["node_status"][END_HOOK] == "success"  # the live view lists hooks


def test_a_failing_start_hook_leaves_the_nodes_running_by_default(temporal) -> None:  # noqa: ANN001
    output = run(temporal, Script(start_hook_status="error"))

    assert not output.success
    listed = statuses(output)
    assert listed[0] == (START_HOOK, "error") and listed[-1] == (END_HOOK, "success")
    # Nodes are listed as they finished: a and c run at once, so in either order.
    assert sorted(listed[1:-1]) == [("model.p.a", "success"), ("model.p.b", "success"), ("model.p.c", "success")]


def test_the_project_flag_skips_every_node_when_a_start_hook_fails(temporal) -> None:  # noqa: ANN001
    plan = PLAN.model_copy(update={"skip_nodes_if_on_run_start_fails": True})
    script = Script(plan=plan, start_hook_status="error")
    output = run(temporal, script)

    assert [status for _, status in statuses(output)] == ["error", "skipped", "skipped", "skipped", "success"]
    assert script.node_requests == []


@pytest.mark.parametrize("fail_fast", [False, True])
def test_a_failed_node_skips_its_children_and_fail_fast_the_rest(temporal, fail_fast: bool) -> None:  # noqa: ANN001
    # One thread, so `c` has not started when `a` fails.
    plan = PLAN.model_copy(update={"threads": 1, "start_hooks": 0, "end_hooks": 0})
    output = run(temporal, Script(plan=plan, failing_nodes={"model.p.a"}), DbtRunInput(fail_fast=fail_fast))

    assert dict(statuses(output)) == {
        "model.p.a": "error",
        "model.p.b": "skipped",
        "model.p.c": "skipped" if fail_fast else "success",
    }


STORING_PLAN = PLAN.model_copy(update={"artifacts": ArtifactOptions(store="s3://runs", dbt_artifacts=True)})


def test_the_run_keeps_its_record_after_the_end_hooks_with_every_result_and_the_whole_log(temporal) -> None:  # noqa: ANN001
    script = Script(plan=STORING_PLAN)
    output = run(temporal, script)

    assert output.success
    [request] = script.store_requests
    assert output.artifacts == [f"s3://runs/{request.workflow_id}/run_results.json"]
    assert output.log_path == f"s3://runs/{request.workflow_id}/log.txt"
    assert [r.unique_id for r in request.results] == [r.unique_id for r in output.node_results]
    assert request.log[-1].startswith("Done. PASS=5")


def test_an_unreachable_store_fails_the_run_and_keeps_the_node_results(temporal) -> None:  # noqa: ANN001
    output = run(temporal, Script(plan=STORING_PLAN, store_unreachable=True))

    assert not output.success
    assert all(result.status == NodeStatus.success for result in output.node_results)
    assert output.store_error == "cannot reach the artifact store s3://runs"
    assert output.artifacts == [] and output.log_path is None


# One slow node beside a chain long enough that a low event budget makes the run hand over while it runs.
OUTLIVING_PLAN = PLAN.model_copy(
    update={
        "nodes": [planned("slow"), *(planned(f"m{i}", *([i] if i else [])) for i in range(30))],
        "start_hooks": 0,
        "end_hooks": 0,
    }
)


@pytest.mark.parametrize("fails_once", [False, True])
def test_a_handover_leaves_running_nodes_running_and_the_next_run_takes_their_outcome(temporal, fails_once) -> None:  # noqa: ANN001
    slow = "model.p.slow"
    script = Script(plan=OUTLIVING_PLAN, outliving_nodes={slow}, fail_once={slow} if fails_once else set())
    output = run(temporal, script, DbtRunInput(continue_as_new_after_events=100))

    assert output.success
    assert len(output.node_results) == 31
    # The chain went on through the handover while the slow node ran: nothing waited for it.
    assert script.others_finished_meanwhile == {slow: True}
    # A retryable failure reported after the handover is a new attempt in the new run.
    assert [request.unique_id for request in script.node_requests].count(slow) == (2 if fails_once else 1)
