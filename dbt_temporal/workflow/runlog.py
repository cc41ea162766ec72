"""dbt-CLI-style run log lines and the bounded memo views of a run.

Pure functions of plain data: the workflow calls them, tests check them.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

from dbt_temporal.contract import NodeResult, NodeStatus, PlannedNode
from dbt_temporal.redaction import redact

# Every memo update is a history event holding the whole memo: these keep it within
# contract.MEMO_BYTES_BOUND, a small share of a big run's history.
LOG_MEMO_LINES = 100
NODE_STATUS_MEMO_ENTRIES = 100
LINE_WIDTH = 80


_DOTTED_LINE = re.compile(r"^(.*) \.+ (\[[^\]]*\])$")


def _dotted(left: str, right: str) -> str:
    dots = "." * max(1, LINE_WIDTH - len(left) - 1)
    return f"{left} {dots} {right}"


def masked_line(line: str, secret_values: Iterable[str]) -> str:
    """A log line with secrets masked, its dots counted after masking: their number must not tell a length."""
    dotted = _DOTTED_LINE.match(line)
    if dotted is None:
        return redact(line, secret_values)
    return _dotted(redact(dotted.group(1), secret_values), redact(dotted.group(2), secret_values))


def reparsed_line(seconds: float) -> str:
    return f"project changed; re-parsed in {seconds:.2f} s"


def state_line(location: str, defer: bool) -> str:
    deferring = "; unbuilt parents read from its relations" if defer else ""
    return f"State: comparing with {location}{deferring}"


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


def _subject(node: PlannedNode) -> str:
    """The description without its leading kind: what dbt names after PASS, WARN or `snapshotted`."""
    return node.description.split(" ", 1)[-1]


def _test_word(result: NodeResult) -> str:
    """PASS, or FAIL/WARN with the number of failing rows, as dbt prints a test's outcome."""
    word = result.dbt_status.upper()
    if result.dbt_status in ("fail", "warn") and result.failures is not None:
        word = f"{word} {result.failures}"
    return word


# dbt's words for a source's freshness: "error" means the source is stale, "runtime error" the check failed.
_FRESHNESS_WORDS = {"pass": "PASS", "warn": "WARN", "error": "ERROR STALE", "runtime error": "ERROR"}


def _verb(node: PlannedNode, result: NodeResult) -> str:
    dbt_status = result.dbt_status
    if node.resource_type in ("test", "unit_test"):
        return f"{_test_word(result)} {_subject(node)}"
    if node.resource_type == "source":
        return f"{_FRESHNESS_WORDS.get(dbt_status, dbt_status.upper())} {node.description}"
    if node.resource_type == "macro":
        return f"{'ERROR running' if result.status == NodeStatus.error else 'OK ran'} {node.description}"
    if result.status == NodeStatus.error:
        return f"ERROR creating {node.description}"
    if node.resource_type == "seed":
        return f"OK loaded {node.description}"
    if node.resource_type == "snapshot":
        return f"OK snapshotted {_subject(node)}"
    if dbt_status == "no-op":
        return f"NO-OP {node.description}"
    return f"OK created {node.description}"


def finish_line(index: int, total: int, node: PlannedNode, result: NodeResult) -> str:
    if result.status == NodeStatus.skipped:
        return f"{index} of {total} SKIP {node.description}"
    if result.status == NodeStatus.cancelled:
        return f"{index} of {total} CANCEL {node.description}"
    if node.resource_type in ("test", "unit_test"):
        label = _test_word(result)
    elif node.resource_type == "source":
        label = _FRESHNESS_WORDS.get(result.dbt_status, result.dbt_status.upper())
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


def hook_name(unique_id: str) -> str:
    """dbt's name for a project hook: operation.pkg.pkg-on-run-start-0 -> pkg.on-run-start.0."""
    _, package, rest = unique_id.split(".", 2)
    kind, _, number = rest.rpartition("-")
    return f"{package}.{kind.removeprefix(package + '-')}.{number}"


def hook_lines(results: list[NodeResult]) -> list[str]:
    """The log of one type of project hooks, as dbt prints it: a blank line around them."""
    total = len(results)
    lines = [""]
    for index, result in enumerate(results, start=1):
        name = hook_name(result.unique_id)
        word = {NodeStatus.success: "OK", NodeStatus.skipped: "SKIP"}.get(result.status, "ERROR")
        lines.append(_dotted(f"{index} of {total} {word} hook: {name}", f"[{word} in {result.execution_time:.2f}s]"))
    return lines + [""]


def _duration(elapsed: float) -> str:
    minutes, seconds = divmod(elapsed, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{int(hours)} hours {int(minutes)} minutes and {seconds:0.2f} seconds ({elapsed:.2f}s)"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _summary_line(errors: int, partial: int, warnings: int) -> str:
    partials = f"{partial} partial {'success' if partial == 1 else 'successes'}"
    if errors:
        return f"Completed with {_plural(errors, 'error')}, {partials}, and {_plural(warnings, 'warning')}:"
    if partial:
        return f"Completed with {partials} and {_plural(warnings, 'warning')}"
    if warnings:
        return f"Completed with {_plural(warnings, 'warning')}:"
    return "Completed successfully"


def _problem_lines(result: NodeResult, kind: str, name: str, warning: bool) -> list[str]:
    heading = f"{'Warning' if warning else 'Failure'} in {kind} {name}"
    return ["", heading, *(result.message or f"Status: {result.dbt_status}").splitlines()]


def footer_lines(results: list[NodeResult], elapsed: float, stat_line: str, nodes: dict[str, PlannedNode]) -> list[str]:
    """dbt's end of run: what ran and how long, the failures and warnings in full, the counts."""
    errors = [r for r in results if r.dbt_status in ("error", "fail", "runtime error")]
    warnings = [r for r in results if r.dbt_status == "warn"]
    partial = sum(1 for r in results if r.dbt_status == "partial success")
    lines = ["", f"Finished running {stat_line or _plural(len(results), 'node')} in {_duration(elapsed)}."]
    lines += ["", _summary_line(len(errors), partial, len(warnings))]
    for result, warning in [(r, False) for r in errors] + [(r, True) for r in warnings]:
        node = nodes.get(result.unique_id)
        kind, name = (node.resource_type, _subject(node)) if node else ("hook", hook_name(result.unique_id))
        lines += _problem_lines(result, kind, name, warning)
    return lines + ["", done_line(results)]


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
