"""Lifecycle hooks: Temporal workflows started before the first node and after the run.

The run's workflow is the real one; its nodes are stand-ins (tests/test_workflow_logic.py) and its
hooks are real workflows (tests/hook_workflows.py) on the same real dev server.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError
from temporalio.worker import Worker

from dbt_temporal.client.codec import data_converter
from dbt_temporal.config.project_config import ProjectConfigFileError, load_project_config
from dbt_temporal.contract import DbtRunInput, DbtRunOutput
from tests.hook_workflows import HOOK_WORKFLOWS
from tests.test_workflow_logic import PLAN, Script, run_with_history


def hooked_run(temporal, hooks: dict[str, Any], script: Script | None = None) -> tuple[DbtRunOutput, Script]:  # noqa: ANN001
    """Run with `hooks`; a hook that names no task queue runs on this run's own worker."""
    queue = f"hooks-{uuid.uuid4().hex[:8]}"
    hooks = {event: [{"task_queue": queue, **hook} for hook in event_hooks] for event, event_hooks in hooks.items()}
    script = script or Script()
    running = run_with_history(
        temporal.address, script, DbtRunInput(hooks=hooks), queue=queue, extra_workflows=HOOK_WORKFLOWS
    )
    output, _ = asyncio.run(running)
    return output, script


def hook(workflow_type: str, **options: Any) -> dict[str, Any]:
    return {"workflow_type": workflow_type, **options}


def test_a_pre_run_hook_skips_the_run_with_its_reason(temporal) -> None:  # noqa: ANN001
    output, script = hooked_run(temporal, {"pre_run": [hook("sources_not_ready"), hook("go_ahead")]})

    assert output.success and output.skipped
    assert output.skip_reason == f"sources not ready for {output.invocation_id}"
    assert output.node_results == [] and script.node_requests == [] and script.hook_requests == []
    assert [(run.workflow_type, run.outcome) for run in output.hook_runs] == [("sources_not_ready", "skipped-run")]


def test_false_from_a_pre_run_hook_skips_without_a_reason(temporal) -> None:  # noqa: ANN001
    output, _ = hooked_run(temporal, {"pre_run": [hook("plain_false")]})

    assert output.skipped and output.skip_reason is None


@pytest.mark.parametrize(
    ("on_error", "runs_nodes", "success", "errors"),
    [("fail", False, False, 1), ("warn", True, True, 1), ("ignore", True, True, 0)],
)
def test_on_error_policy_of_a_pre_run_hook(temporal, on_error, runs_nodes, success, errors) -> None:  # noqa: ANN001
    output, script = hooked_run(temporal, {"pre_run": [hook("broken_hook", on_error=on_error)]})

    assert bool(script.node_requests) is runs_nodes
    assert output.success is success
    assert len(output.hook_errors) == errors
    if errors:
        assert "pre_run hook broken_hook failed: catalog unreachable" in output.hook_errors[0]
    assert output.hook_runs[0].outcome == "failed"


def test_a_failing_post_hook_with_fail_turns_success_false(temporal) -> None:  # noqa: ANN001
    output, _ = hooked_run(temporal, {"on_success": [hook("broken_hook", on_error="fail"), hook("go_ahead")]})

    assert not output.success
    assert [run.outcome for run in output.hook_runs] == ["failed", "completed"]


def test_on_failure_runs_only_when_the_run_failed(temporal) -> None:  # noqa: ANN001
    hooks = {"on_success": [hook("go_ahead")], "on_failure": [hook("go_ahead")]}
    ok, _ = hooked_run(temporal, hooks)
    failed, _ = hooked_run(temporal, hooks, Script(failing_nodes={"model.p.a"}))

    assert [run.event for run in ok.hook_runs] == ["on_success"]
    assert [run.event for run in failed.hook_runs] == ["on_failure"]


def test_a_hook_that_times_out_is_an_error(temporal) -> None:  # noqa: ANN001
    output, _ = hooked_run(temporal, {"on_success": [hook("slow_hook", timeout_secs=1)]})

    assert output.success  # warn, the default policy
    assert output.hook_errors == [output.hook_errors[0]] and "timed out" in output.hook_errors[0]


def test_extra_env_from_a_pre_run_hook_reaches_every_node_and_stays_secret(temporal) -> None:  # noqa: ANN001
    output, script = hooked_run(temporal, {"pre_run": [hook("resolve_credentials", on_error="fail")]})

    assert output.success
    assert {session.env.get("HOOK_TOKEN") for session in script.node_sessions} == {"from-the-hook-1234"}
    assert "from-the-hook-1234" not in output.model_dump_json()


def test_extra_env_values_must_be_strings(temporal) -> None:  # noqa: ANN001
    given = {"extra_env_to_give": {"PORT": 5432}}
    output, script = hooked_run(temporal, {"pre_run": [hook("resolve_credentials", input=given, on_error="fail")]})

    assert not output.success and script.node_requests == []
    assert "extra_env values must be strings; not so for PORT" in output.hook_errors[0]


def test_a_fire_and_forget_hook_outlives_the_run(temporal) -> None:  # noqa: ANN001
    output, _ = hooked_run(temporal, {"on_success": [hook("lingering_hook", fire_and_forget=True)]})

    assert output.success and output.hook_runs[0].outcome == "started"

    async def child_status() -> WorkflowExecutionStatus | None:
        client = await Client.connect(temporal.address, data_converter=data_converter)
        return (await client.get_workflow_handle(output.hook_runs[0].workflow_id).describe()).status

    assert asyncio.run(child_status()) == WorkflowExecutionStatus.RUNNING


def test_a_hook_can_start_dbt_run_itself_with_hooks_off(temporal) -> None:  # noqa: ANN001
    child_input = {"command": "build", "select": "a", "hooks": {}}
    output, script = hooked_run(temporal, {"pre_run": [hook("dbt_run", input=child_input, on_error="fail")]})

    assert output.success and output.hook_runs[0].outcome == "completed"
    assert len({request.invocation.invocation_id for request in script.node_requests}) == 2  # child and parent


def test_a_hook_starting_dbt_run_with_the_same_hooks_is_refused(temporal, tmp_path: Path) -> None:  # noqa: ANN001
    script = Script()
    with pytest.raises(WorkflowFailureError) as failure:
        hooked_run(temporal, {"pre_run": [hook("dbt_run", input={"command": "build"})]}, script)

    assert "would start it again without end" in str(failure.value.cause)
    assert script.node_requests == []  # the run never planned

    (tmp_path / "dbt_temporal.yml").write_text("hooks:\n  on_success:\n    - {workflow_type: dbt_run, task_queue: q}\n")
    with pytest.raises(ProjectConfigFileError, match="would start it again without end"):
        load_project_config(tmp_path)


def test_the_plans_hooks_apply_unless_the_run_brings_its_own(temporal) -> None:  # noqa: ANN001
    queue_hooks = {"pre_run": [{"workflow_type": "sources_not_ready", "task_queue": "unused-queue"}]}
    plan = PLAN.model_copy(update={"lifecycle_hooks": queue_hooks})
    script = Script(plan=plan)
    output, _ = hooked_run(temporal, {"pre_run": []}, script)  # empty lists turn the project's hooks off

    assert output.success and not output.skipped and output.hook_runs == []


def test_extra_env_reaches_env_var_and_profiles_yml_on_a_real_worker(shop: Path, tmp_path: Path, start_worker) -> None:
    """`dbtt submit --hooks`: a pre_run hook points the run at another DuckDB file and sets a model's value."""
    from tests.support import dbtt, table_rows

    (shop / "models" / "hook_label.sql").write_text("select '{{ env_var('HOOK_LABEL', 'none') }}' as label\n")
    worker = start_worker(shop)
    hook_queue = f"hooks-{uuid.uuid4().hex[:8]}"
    elsewhere = tmp_path / "chosen-by-the-hook.duckdb"
    give = {"extra_env_to_give": {"SHOP_DUCKDB_PATH": str(elsewhere), "HOOK_LABEL": "label-from-hook"}}
    hooks = {"pre_run": [{"workflow_type": "resolve_credentials", "task_queue": hook_queue, "input": give}]}

    async def main() -> tuple[int, str, str]:
        client = await Client.connect(worker.address, data_converter=data_converter)
        async with Worker(client, task_queue=hook_queue, workflows=HOOK_WORKFLOWS):
            done = await asyncio.to_thread(
                dbtt, "submit", "-s", "hook_label", "--hooks", json.dumps(hooks), "--output", "json",
                env={"TEMPORAL_ADDRESS": worker.address, "TEMPORAL_TASK_QUEUE": worker.task_queue},
            )  # fmt: skip
            return done.returncode, done.stdout, done.stderr

    code, stdout, stderr = asyncio.run(main())

    assert code == 0, stderr
    report = json.loads(stdout)
    assert [run["outcome"] for run in report["hook_runs"]] == ["completed"]
    worker.stop()  # DuckDB lets one process hold a file
    assert table_rows(elsewhere, "hook_label") == [("label-from-hook",)]
    default = shop / "shop.duckdb"
    tables = "(select table_name from duckdb_tables())"
    assert not default.exists() or ("hook_label",) not in table_rows(default, tables)
