"""Record the workflow histories that tests/test_replay.py replays against the current workflow code.

Run from the repository root when a workflow change is meant to be incompatible with runs in flight
(after versioning it with `workflow.patched`, keep the old histories and add new ones):

    python -m tests.record_histories [SCENARIO ...]    # all of them when none is named
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from dbt_temporal.client.devserver import DevServer
from dbt_temporal.contract import DbtRunInput
from tests.test_workflow_logic import OUTLIVING_PLAN, PLAN, STORING_PLAN, Script, planned, run_with_history

HISTORIES = Path(__file__).resolve().parent / "histories"

READY_ORDER_PLAN = PLAN.model_copy(
    update={"nodes": [planned("a"), planned("r"), planned("a1", 0), planned("s", 1), planned("t", 1)]}
)
# A plan long enough that a low event budget makes the run hand over (continue-as-new).
LONG_PLAN = PLAN.model_copy(update={"nodes": [planned(f"m{i}", *([i - 1] if i else [])) for i in range(30)]})

SCENARIOS: dict[str, tuple[Script, DbtRunInput]] = {
    "success_with_project_hooks": (Script(), DbtRunInput()),
    "failure_with_fail_fast": (Script(failing_nodes={"model.p.a"}), DbtRunInput(fail_fast=True)),
    "start_hook_fails_and_skips_nodes": (
        Script(plan=PLAN.model_copy(update={"skip_nodes_if_on_run_start_fails": True}), start_hook_status="error"),
        DbtRunInput(),
    ),
    "continue_as_new": (Script(plan=LONG_PLAN), DbtRunInput(continue_as_new_after_events=100)),
    "stores_artifacts": (Script(plan=STORING_PLAN), DbtRunInput()),
    # Several nodes ready at once on two threads, started in plan (dbt's) order.
    "starts_ready_nodes_in_plan_order": (Script(plan=READY_ORDER_PLAN), DbtRunInput()),
}
# Recorded by workflow code that hands over with nodes still running: the first run (it hands over)
# and the last (it takes the slow node's result by signal). Names are the scenario's plus _first/_last.
HANDOVER_SCENARIOS: dict[str, tuple[Script, DbtRunInput]] = {
    "hands_over_running_nodes": (
        Script(plan=OUTLIVING_PLAN, outliving_nodes={"model.p.slow"}),
        DbtRunInput(continue_as_new_after_events=100),
    ),
}


def without_stack_traces(value: Any) -> Any:
    """Failures carry the recording machine's file paths; replay never reads them."""
    if isinstance(value, dict):
        return {key: "" if key == "stackTrace" else without_stack_traces(item) for key, item in value.items()}
    if isinstance(value, list):
        return [without_stack_traces(item) for item in value]
    return value


def write(name: str, history: str) -> None:
    cleaned = without_stack_traces(json.loads(history))
    (HISTORIES / f"{name}.json").write_text(json.dumps(cleaned, indent=2) + "\n")
    print(f"recorded {name}")


async def record(address: str, names: set[str]) -> None:
    HISTORIES.mkdir(exist_ok=True)
    for name, (script, run_input) in SCENARIOS.items():
        if not names or name in names:
            write(name, (await run_with_history(address, script, run_input))[1])
    for name, (script, run_input) in HANDOVER_SCENARIOS.items():
        if not names or name in names:
            write(f"{name}_first", (await run_with_history(address, script, run_input))[1])
            script = Script(plan=script.plan, outliving_nodes=script.outliving_nodes)
            write(f"{name}_last", (await run_with_history(address, script, run_input, last_run=True))[1])


def main() -> None:
    server = DevServer(ui=False).start()
    try:
        asyncio.run(record(server.address, set(sys.argv[1:])))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
