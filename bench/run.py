"""Benchmark entry point: `python -m bench --sizes 100,500` (see bench/README.md)."""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench import approaches
from bench.approaches import DbtBuild, DbttRun, PerNode
from bench.dag import BuildDag, load_build_dag
from bench.metrics import (
    activity_spans,
    execution_seconds,
    history_megabytes,
    largest_event_bytes,
    longest_ready_wait,
    overheads,
    plan_payload_bytes,
    plan_seconds,
    workflow_tasks,
)
from bench.plan import measure_plan
from bench.project import DagSpec, RealSpec, UnevenSpec, generate_layered, generate_real, generate_uneven
from bench.report import (
    DbttDetail,
    HandoverResult,
    Report,
    Row,
    SizeResult,
    UnevenResult,
    evaluate_targets,
    render,
    write_json,
)
from dbt_temporal.client.devserver import DevServer
from tests.support import copy_project

APPROACHES = ("plan", "dbt", "warm", "cold", "subprocess", "runner")
KINDS = ("layered", "real")
RESULTS = Path(__file__).resolve().parent / "results"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description="dbtt benchmark harness (issue #4)")
    parser.add_argument(
        "--sizes", default="100,500", help="node counts (seed+models+tests; models with --kind real), e.g. 100,500,2000"
    )
    parser.add_argument(
        "--kind", choices=KINDS, default="layered", help="layered DAG, or shaped like real projects (see README)"
    )
    parser.add_argument("--threads", type=int, default=4, help="dbt --threads, profile threads and dbtt run threads")
    parser.add_argument("--depth", type=int, default=10, help="layers of the generated DAG")
    parser.add_argument("--fan-in", type=int, default=2, help="parents per model below the first layer")
    parser.add_argument("--tests-per-model", type=int, default=1, choices=(0, 1, 2), help="not_null, then unique")
    parser.add_argument("--approaches", default=",".join(APPROACHES), help=f"subset of {','.join(APPROACHES)}")
    parser.add_argument("--per-node-sample", type=int, default=12, help="nodes timed per per-node approach")
    parser.add_argument("--per-node-full-upto", type=int, default=0, help="time every node at sizes up to this")
    parser.add_argument("--no-uneven", action="store_true", help="skip the uneven-DAG scenario")
    parser.add_argument(
        "--append-models",
        action="store_true",
        help="append-only incremental models (each gets a commit marker; compare with COMMIT_MARKERS=false)",
    )
    parser.add_argument("--slow-seconds", type=float, default=5.0, help="sleep of the uneven DAG's slow model")
    parser.add_argument("--chain", type=int, default=30, help="models in the uneven DAG's fast chain")
    parser.add_argument("--no-handover", action="store_true", help="skip the forced-handover scenario")
    parser.add_argument(
        "--handover-slow-seconds", type=float, default=60.0, help="sleep of the slow model while the run hands over"
    )
    parser.add_argument(
        "--handover-after-events", type=int, default=150, help="continue_as_new_after_events of that run"
    )
    parser.add_argument("--profile", action="store_true", help="record the warm worker with py-spy into bench/results/")
    parser.add_argument("--workdir", type=Path, help="where project copies go (default: a temp dir, removed)")
    parser.add_argument("--output", type=Path, default=RESULTS / "latest.json", help="JSON results file")
    return parser.parse_args(argv)


def say(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _ratio(wall: float | None, base: float | None) -> float | None:
    return wall / base if wall is not None and base else None


def dbtt_detail(run: DbttRun, dag: BuildDag) -> DbttDetail:
    spans = activity_spans(run.events)
    return DbttDetail(
        ok=run.ok,
        error=run.error,
        plan_seconds=plan_seconds(spans),
        history_events=len(run.events),
        history_mb=history_megabytes(run.events),
        worker_ready_seconds=run.worker_ready_seconds,
        worker_peak_mb=run.worker_peak_mb,
        exec_seconds=execution_seconds(run.output),
        workflow_tasks=workflow_tasks(run.events),
        overheads=overheads(run.output, spans, dag) if run.output else None,
        nodes=len(dag.names),
        plan_payload_bytes=plan_payload_bytes(run.events),
        largest_event_bytes=largest_event_bytes(run.events),
    )


def _dbtt_note(run: DbttRun) -> str:
    done = len(run.output.node_results) if run.output else 0
    return "ok" if run.ok else f"FAILED ({done} node results): {(run.error or '')[:80]}"


def per_node_rows(label: str, measured: PerNode, base: float | None, threads: int) -> list[Row]:
    how = (
        f"extrapolated from {len(measured.seconds)} of {measured.total_nodes} nodes"
        if measured.sampled
        else f"measured, all {measured.total_nodes} nodes"
    )
    if measured.setup_seconds:
        how += f", +{measured.setup_seconds:.1f}s parse once"
    if measured.failed:
        how += f", {len(measured.failed)} failed"
    parallel = min(threads, os.cpu_count() or 1)
    projected = measured.serial_seconds / parallel
    return [
        Row(f"{label} (serial)", measured.serial_seconds, _ratio(measured.serial_seconds, base), how),
        Row(f"{label} (/{parallel})", projected, _ratio(projected, base), f"serial / {parallel}: optimistic"),
    ]


def warm_row(source: Path, args: argparse.Namespace, server: DevServer, base: DbtBuild | None) -> tuple[Row, DbttRun]:
    profile = RESULTS / f"py-spy-warm-{source.parent.name}.txt" if args.profile else None
    run = approaches.dbtt_run(server.address, copy_project(source, source.parent / "warm"), args.threads, True, profile)
    elapsed = run.output.elapsed_time if run.output else None
    row = Row("dbtt warm", run.wall_seconds, _ratio(run.wall_seconds, base and base.wall_seconds), _dbtt_note(run))
    row.elapsed_seconds, row.elapsed_ratio = elapsed, _ratio(elapsed, base and base.elapsed_seconds)
    return row, run


def cold_row(source: Path, args: argparse.Namespace, server: DevServer, base: float | None) -> Row:
    run = approaches.dbtt_run(server.address, copy_project(source, source.parent / "cold"), args.threads, False)
    total = run.worker_ready_seconds + run.wall_seconds
    note = f"worker start {run.worker_ready_seconds:.1f}s + run {run.wall_seconds:.1f}s; {_dbtt_note(run)}"
    return Row("dbtt cold", total, _ratio(total, base), note)


def generate(size: int, args: argparse.Namespace, root: Path) -> tuple[Path, int]:
    """The project of one size, and its model count."""
    if args.kind == "real":
        spec = RealSpec(models=size, depth=args.depth, fan_in=args.fan_in, threads=args.threads)
        return generate_real(root, spec), size
    layered = DagSpec(size, args.depth, args.fan_in, args.tests_per_model, args.threads, append=args.append_models)
    return generate_layered(root, layered), layered.models


def bench_size(size: int, args: argparse.Namespace, server: DevServer, work: Path, chosen: set[str]) -> SizeResult:
    source, models = generate(size, args, work / f"n{size}" / "source")
    baseline = copy_project(source, work / f"n{size}" / "dbt")
    result = SizeResult(size=size, models=models, nodes=0, kind=args.kind)
    if "plan" in chosen:
        say(f"size {size}: {models} models; planning build in-process")
        result.plan = measure_plan(copy_project(source, work / f"n{size}" / "plan"))
    base: DbtBuild | None = None
    if "dbt" in chosen:
        say(f"size {size}: {models} models; plain dbt build")
        base = approaches.dbt_build(baseline, args.threads)
        result.dbt_exec_seconds = sum(base.execution_times.values())
        result.rows.append(
            Row("dbt build", base.wall_seconds, 1.0, "ok" if base.ok else "FAILED", base.elapsed_seconds, 1.0)
        )
    else:
        approaches.dbt_parse(baseline)
    dag = load_build_dag(baseline / "target" / "manifest.json")
    result.nodes = len(dag.names)
    base_wall = base.wall_seconds if base else None
    if "warm" in chosen:
        say(f"size {size}: dbtt warm")
        row, warm = warm_row(source, args, server, base)
        result.rows.append(row)
        result.dbtt = dbtt_detail(warm, dag)
    if "cold" in chosen:
        say(f"size {size}: dbtt cold")
        result.rows.append(cold_row(source, args, server, base_wall))
    limit = len(dag.names) if size <= args.per_node_full_upto else args.per_node_sample
    for name, label, measure in (
        ("subprocess", "per-node subprocess", approaches.per_node_subprocess),
        ("runner", "per-node dbtRunner", approaches.per_node_dbt_runner),
    ):
        if name in chosen:
            say(f"size {size}: {label} ({min(limit, len(dag.names))} nodes)")
            measured = measure(copy_project(source, work / f"n{size}" / name), dag, limit)
            result.rows += per_node_rows(label, measured, base_wall, args.threads)
    return result


def bench_uneven(args: argparse.Namespace, server: DevServer, work: Path) -> UnevenResult:
    spec = UnevenSpec(slow_seconds=args.slow_seconds, chain=args.chain, threads=args.threads)
    source = generate_uneven(work / "uneven" / "source", spec)
    say("uneven DAG: plain dbt build")
    base = approaches.dbt_build(copy_project(source, work / "uneven" / "dbt"), args.threads)
    dag = load_build_dag(work / "uneven" / "dbt" / "target" / "manifest.json")
    dbt_path, _ = dag.critical_path(base.execution_times)
    say("uneven DAG: dbtt warm")
    run = approaches.dbtt_run(server.address, copy_project(source, work / "uneven" / "warm"), args.threads, warm=True)
    times = {r.unique_id: r.execution_time for r in run.output.node_results} if run.output else {}
    dbtt_path, nodes = dag.critical_path(times) if times else (None, [])
    return UnevenResult(
        nodes=len(dag.names),
        slow_seconds=args.slow_seconds,
        dbt_build_wall=base.wall_seconds,
        dbt_build_elapsed=base.elapsed_seconds,
        dbt_critical_path=dbt_path,
        dbtt_wall=run.wall_seconds if run.ok else None,
        dbtt_critical_path=dbtt_path,
        critical_path_nodes=[dag.names[uid] for uid in nodes],
        dbtt=dbtt_detail(run, dag),
    )


def bench_handover(args: argparse.Namespace, server: DevServer, work: Path) -> HandoverResult:
    """The uneven DAG again, its slow model made to run through several handovers (continue-as-new)."""
    spec = UnevenSpec(slow_seconds=args.handover_slow_seconds, chain=args.chain, threads=args.threads)
    source = generate_uneven(work / "handover" / "source", spec)
    parsed = copy_project(source, work / "handover" / "parsed")
    approaches.dbt_parse(parsed)
    dag = load_build_dag(parsed / "target" / "manifest.json")
    say(f"handover: dbtt warm, continue_as_new_after_events={args.handover_after_events}")
    project = copy_project(source, work / "handover" / "warm")
    run = approaches.dbtt_run(server.address, project, args.threads, warm=True, after_events=args.handover_after_events)
    return HandoverResult(
        nodes=len(dag.names),
        slow_seconds=args.handover_slow_seconds,
        after_events=args.handover_after_events,
        runs=1 + sum(event.HasField("workflow_execution_continued_as_new_event_attributes") for event in run.events),
        dbtt_wall=run.wall_seconds if run.ok else None,
        longest_ready_wait=longest_ready_wait(run.output, dag, args.threads) if run.output else None,
    )


def machine() -> dict[str, object]:
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    chosen = {a.strip() for a in args.approaches.split(",")} & set(APPROACHES)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="dbtt-bench-"))
    report = Report(
        machine={**machine(), "threads": args.threads, "depth": args.depth, "fan_in": args.fan_in, "kind": args.kind}
    )
    say(f"temporal dev server; work dir {work}")
    server = DevServer(ui=False).start()
    try:
        for size in sizes:
            report.sizes.append(bench_size(size, args, server, work, chosen))
            write_json(report, args.output)
        if not args.no_uneven:
            report.uneven = bench_uneven(args, server, work)
        if not args.no_handover:
            report.handover = bench_handover(args, server, work)
    finally:
        server.stop()
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    report.targets = evaluate_targets(report)
    write_json(report, args.output)
    print(render(report))
    say(f"results written to {args.output}")
    return 0
