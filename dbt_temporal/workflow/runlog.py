"""dbt-CLI-style run log lines and the bounded memo views of a run.

Pure functions of plain data: the workflow calls them, tests check them.
"""

from __future__ import annotations

from collections import Counter

from dbt_temporal.contract import NodeResult, NodeStatus, PlannedNode

LOG_MEMO_LINES = 200
NODE_STATUS_MEMO_ENTRIES = 500
LINE_WIDTH = 80


def _dotted(left: str, right: str) -> str:
    dots = "." * max(1, LINE_WIDTH - len(left) - 1)
    return f"{left} {dots} {right}"


def header_lines(version: str, project_summary: str, threads: int, target: str, total: int) -> list[str]:
    return [
        f"Running with dbtt={version}",
        f"Found {project_summary}" if project_summary else "Found nothing to run",
        f"Concurrency: {threads} threads (target='{target}')",
        f"{total} nodes selected",
        "",
    ]


def start_line(index: int, total: int, node: PlannedNode) -> str:
    return _dotted(f"{index} of {total} START {node.description}", "[RUN]")


def _verb(node: PlannedNode, result: NodeResult) -> str:
    dbt_status = result.dbt_status
    if node.resource_type in ("test", "unit_test"):
        word = dbt_status.upper()
        if dbt_status in ("fail", "warn") and result.failures is not None:
            word = f"{word} {result.failures}"
        return f"{word} {node.name}"
    if result.status == NodeStatus.error:
        return f"ERROR creating {node.description}"
    if node.resource_type == "seed":
        return f"OK loaded {node.description}"
    if node.resource_type == "snapshot":
        return f"OK snapshotted {node.description}"
    if dbt_status == "no-op":
        return f"NO-OP {node.description}"
    return f"OK created {node.description}"


def finish_line(index: int, total: int, node: PlannedNode, result: NodeResult) -> str:
    if result.status == NodeStatus.skipped:
        return f"{index} of {total} SKIP {node.description}"
    if result.status == NodeStatus.cancelled:
        return f"{index} of {total} CANCEL {node.description}"
    if node.resource_type in ("test", "unit_test"):
        label = result.dbt_status.upper()
    elif result.status == NodeStatus.error:
        label = "ERROR"
    else:
        label = str(result.adapter_response.get("_message") or result.dbt_status.upper())
    return _dotted(f"{index} of {total} {_verb(node, result)}", f"[{label} in {result.execution_time:.2f}s]")


def counts_of(results: list[NodeResult]) -> Counter[str]:
    """dbt's summary buckets: PASS, WARN, ERROR, SKIP, NO-OP, plus CANCELLED."""
    counts: Counter[str] = Counter()
    for result in results:
        if result.status == NodeStatus.cancelled:
            counts["CANCELLED"] += 1
        elif result.status == NodeStatus.skipped:
            counts["SKIP"] += 1
        elif result.status == NodeStatus.error:
            counts["ERROR"] += 1
        elif result.dbt_status == "warn":
            counts["WARN"] += 1
        elif result.dbt_status == "no-op":
            counts["NO-OP"] += 1
        else:
            counts["PASS"] += 1
    return counts


def done_line(results: list[NodeResult]) -> str:
    counts = counts_of(results)
    parts = [f"{key}={counts[key]}" for key in ("PASS", "WARN", "ERROR", "SKIP", "NO-OP")]
    if counts["CANCELLED"]:
        parts.append(f"CANCELLED={counts['CANCELLED']}")
    parts.append(f"TOTAL={len(results)}")
    return "Done. " + " ".join(parts)


def footer_lines(results: list[NodeResult], elapsed: float) -> list[str]:
    return ["", f"Finished running {len(results)} nodes in {elapsed:.2f}s.", done_line(results)]


def bounded_log(lines: list[str], limit: int = LOG_MEMO_LINES, earlier: int = 0) -> list[str]:
    """The last lines of the log; `earlier` counts lines already dropped (by a previous workflow run)."""
    if len(lines) <= limit and not earlier:
        return list(lines)
    kept = lines[-(limit - 1) :]
    return [f"... {earlier + len(lines) - len(kept)} earlier lines omitted"] + kept


def bounded_node_status(status: dict[str, NodeStatus], limit: int = NODE_STATUS_MEMO_ENTRIES) -> dict[str, str]:
    """Every node's status for runs up to `limit` nodes; beyond, only the ones worth a look.

    The memo is rewritten in full on each update and every update stays in the
    history, so a big run lists only running, failed, skipped and cancelled
    nodes (at most `limit`); `progress` keeps the exact counts.
    """
    if len(status) <= limit:
        return {uid: str(s) for uid, s in status.items()}
    priority = {NodeStatus.running: 0, NodeStatus.error: 1, NodeStatus.cancelled: 2, NodeStatus.skipped: 3}
    notable = sorted((item for item in status.items() if item[1] in priority), key=lambda item: priority[item[1]])
    return {uid: str(s) for uid, s in notable[:limit]}


def progress(status: dict[str, NodeStatus]) -> dict[str, int]:
    """Exact counts per status, so a bounded node_status still shows true progress."""
    counts = Counter(str(s) for s in status.values())
    return {"total": len(status), **{str(s): counts.get(str(s), 0) for s in NodeStatus}}
