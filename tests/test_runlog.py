"""Run log lines and memo bounding."""

from __future__ import annotations

from dbt_temporal.contract import NodeResult, NodeStatus, PlannedNode
from dbt_temporal.workflow import runlog

MODEL = PlannedNode(
    unique_id="model.p.orders", name="orders", resource_type="model", description="sql table model main.orders"
)
TEST = PlannedNode(
    unique_id="test.p.t", name="unique_orders_id", resource_type="test", description="test unique_orders_id"
)


def result(status: NodeStatus, dbt_status: str, **extra) -> NodeResult:
    return NodeResult(unique_id="x", status=status, dbt_status=dbt_status, execution_time=0.5, **extra)


def test_lines_read_like_dbt() -> None:
    assert runlog.start_line(1, 3, MODEL).startswith("1 of 3 START sql table model main.orders ...")
    ok = runlog.finish_line(1, 3, MODEL, result(NodeStatus.success, "success", adapter_response={"_message": "OK"}))
    assert ok.startswith("1 of 3 OK created sql table model main.orders") and ok.endswith("[OK in 0.50s]")
    fail = runlog.finish_line(2, 3, TEST, result(NodeStatus.error, "fail", failures=4))
    assert fail.startswith("2 of 3 FAIL 4 unique_orders_id") and fail.endswith("[FAIL 4 in 0.50s]")
    assert (
        runlog.finish_line(3, 3, MODEL, result(NodeStatus.skipped, "skipped"))
        == "3 of 3 SKIP sql table model main.orders"
    )


def test_done_line_counts_like_dbt() -> None:
    results = [
        result(NodeStatus.success, "success"),
        result(NodeStatus.success, "pass"),
        result(NodeStatus.success, "warn"),
        result(NodeStatus.error, "fail"),
        result(NodeStatus.skipped, "skipped"),
        result(NodeStatus.cancelled, "cancelled"),
    ]
    assert runlog.done_line(results) == "Done. PASS=2 WARN=1 ERROR=1 SKIP=1 NO-OP=0 CANCELLED=1 TOTAL=6"


def test_log_memo_keeps_the_tail_and_says_what_it_dropped() -> None:
    lines = [f"line {i}" for i in range(500)]
    bounded = runlog.bounded_log(lines, limit=200)
    assert len(bounded) == 200
    assert bounded[0] == "... 301 earlier lines omitted"
    assert bounded[-1] == "line 499"
    # After a handover the previous run's dropped lines still count.
    assert runlog.bounded_log(lines[-10:], limit=200, earlier=490)[0] == "... 490 earlier lines omitted"


def test_node_status_memo_lists_small_runs_whole_and_big_runs_by_exception() -> None:
    small = {f"model.p.m{i}": NodeStatus.success for i in range(500)}
    assert runlog.bounded_node_status(small, limit=500) == {uid: "success" for uid in small}

    status = {f"model.p.m{i}": NodeStatus.success for i in range(3000)}
    status |= {f"model.p.wait{i}": NodeStatus.pending for i in range(3000)}
    status |= {f"model.p.skip{i}": NodeStatus.skipped for i in range(600)}
    status["model.p.broken"] = NodeStatus.error
    status["model.p.busy"] = NodeStatus.running

    bounded = runlog.bounded_node_status(status, limit=500)

    assert len(bounded) == 500
    assert bounded["model.p.busy"] == "running" and bounded["model.p.broken"] == "error"
    assert set(bounded.values()) == {"running", "error", "skipped"}
    assert runlog.progress(status) == {
        "total": 6602, "pending": 3000, "running": 1, "success": 3000, "error": 1, "skipped": 600, "cancelled": 0,
    }  # fmt: skip


def test_footer_reads_like_dbt_with_warnings_and_hooks() -> None:
    warned = TEST.model_copy(update={"unique_id": "test.p.t"})
    hook = NodeResult(
        unique_id="operation.p.p-on-run-end-0", status=NodeStatus.success, dbt_status="success", execution_time=0.01
    )
    results = [
        NodeResult(unique_id="model.p.orders", status=NodeStatus.success, dbt_status="success"),
        NodeResult(unique_id="test.p.t", status=NodeStatus.success, dbt_status="warn", failures=1, message="Got 1"),
        hook,
    ]
    lines = runlog.footer_lines(
        results, 65.5, "1 project hook, 1 table model, 1 data test", {"model.p.orders": MODEL, "test.p.t": warned}
    )
    assert lines[1] == (
        "Finished running 1 project hook, 1 table model, 1 data test in 0 hours 1 minutes and 5.50 seconds (65.50s)."
    )
    assert lines[3] == "Completed with 1 warning:"
    assert lines[5:7] == ["Warning in test unique_orders_id", "Got 1"]
    assert lines[-1] == "Done. PASS=2 WARN=1 ERROR=0 SKIP=0 NO-OP=0 TOTAL=3"
    assert runlog.hook_lines([hook])[1].startswith("1 of 1 OK hook: p.on-run-end.0 ...")
    assert runlog.hook_lines([hook])[1].endswith("[OK in 0.01s]")


def test_footer_of_a_clean_run_says_completed_successfully() -> None:
    ok = NodeResult(unique_id="model.p.orders", status=NodeStatus.success, dbt_status="success")
    assert runlog.footer_lines([ok], 1.0, "1 table model", {"model.p.orders": MODEL})[3] == "Completed successfully"
