"""A deliberately incompatible copy of the `dbt_run` workflow, for tests/test_replay.py.

Kept in a module of its own: the workflow sandbox re-imports the module that defines a workflow.
"""

from __future__ import annotations

from temporalio import workflow

from dbt_temporal.contract import WORKFLOW_TYPE, DbtRunInput, DbtRunOutput, NodeResult
from dbt_temporal.workflow.dbt_run import DbtRunWorkflow


@workflow.defn(name=WORKFLOW_TYPE, sandboxed=False)
class SkipsProjectHooks(DbtRunWorkflow):
    """The change: project hooks no longer run, so the commands of a recorded run no longer match."""

    @workflow.run
    async def run(self, run: DbtRunInput) -> DbtRunOutput:
        return await super().run(run)

    async def _project_hooks(self, *args: object) -> list[NodeResult]:
        return []
