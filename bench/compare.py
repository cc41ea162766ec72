"""Node-for-node comparison of plain `dbt build` and dbtt on one real project (see bench/README.md).

python -m bench.compare PROJECT_DIR [--profiles-dir DIR] [--target T] [--command build] [--select ...]
                        [--vars YAML] [--ignore-column NAME ...] [--runs 2] [--json FILE]

The project is copied twice; copy A runs plain dbt, copy B a real `dbtt worker` on a Temporal dev
server. Each side gets its own DuckDB file through $BENCH_DUCKDB_PATH (the profile must read its `path`
from it). The worker serves a plan-only `ls` first, so every timed dbtt run is warm. Both sides run
`--runs` times (incremental models see the same history) and the last run of each is compared:
statuses per unique_id, every relation's row count and content hash, and speed. Exit 0 when statuses
and contents match, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import duckdb
import yaml

from bench import approaches
from bench.approaches import DbtBuild
from dbt_temporal.client.devserver import DevServer
from dbt_temporal.contract import DbtRunInput, DbtRunOutput
from tests.support import copy_project

# ---------------------------------------------------------------- running both sides


@dataclass
class Side:
    """One side's last run: status word and message per unique_id, timings."""

    ok: bool
    wall_seconds: float
    elapsed_seconds: float
    statuses: dict[str, str]
    messages: dict[str, str]
    error: str | None = None


def first_line(text: str | None) -> str:
    lines = (text or "").strip().splitlines()
    return lines[0][:200] if lines else ""


def run_dbt(project: Path, args: argparse.Namespace) -> Side:
    extra = [args.command, *_selection(args), *(["--target", args.target] if args.target else [])]
    extra += ["--vars", json.dumps(args.vars)] if args.vars else []
    build: DbtBuild | None = None
    for _ in range(args.runs):
        build = approaches.dbt_build(project, None, extra, args.profiles_dir)
    assert build is not None
    run_results = project / "target" / "run_results.json"
    if not run_results.is_file():  # dbt stopped before running anything (e.g. a parse error)
        error = f"dbt wrote no run_results.json; see {project / 'bench-dbt.log'}"
        return Side(False, build.wall_seconds, 0.0, {}, {}, error)
    results = json.loads(run_results.read_text())["results"]
    return Side(
        ok=build.ok,
        wall_seconds=build.wall_seconds,
        elapsed_seconds=build.elapsed_seconds,
        statuses={r["unique_id"]: r["status"] for r in results},
        messages={r["unique_id"]: first_line(r.get("message")) for r in results},
    )


def _selection(args: argparse.Namespace) -> list[str]:
    return ["--select", *args.select] if args.select else []


def run_dbtt(address: str, project: Path, args: argparse.Namespace) -> Side:
    env = {"DBT_PROFILES_DIR": str(args.profiles_dir)} if args.profiles_dir else {}
    worker, _ = approaches.start_worker(address, project, env)
    selection = " ".join(args.select) if args.select else None
    run = DbtRunInput(command=args.command, select=selection, target=args.target, vars=args.vars)
    try:
        # A plan-only run first, as bench's warm approach does: the worker parses the project once, untimed.
        asyncio.run(approaches.submit(worker, run.model_copy(update={"command": "ls"})))
        for _ in range(args.runs):
            wall, output, error, _events = asyncio.run(approaches.submit(worker, run))
    finally:
        worker.stop()
    return _dbtt_side(wall, output, error)


def _dbtt_side(wall: float, output: DbtRunOutput | None, error: str | None) -> Side:
    results = output.node_results if output else []
    return Side(
        ok=error is None and output is not None and output.success,
        wall_seconds=wall,
        elapsed_seconds=output.elapsed_time if output else 0.0,
        statuses={r.unique_id: r.dbt_status for r in results},
        messages={r.unique_id: first_line(r.message) for r in results},
        error=first_line(error),
    )


# ---------------------------------------------------------------- comparing


@dataclass
class Relation:
    rows: int | None
    content: str  # order-independent hash of all rows, or the error that prevented reading them
    columns: dict[str, str] = field(default_factory=dict)  # per-column hash, to name what differs


def relations_of(project: Path, ignored: frozenset[str] = frozenset()) -> dict[str, Relation]:
    """Every table and view in every DuckDB file of a project copy, keyed by file/schema.name.

    `ignored`: lower-case column names left out everywhere (values that differ between any two runs).
    """
    found: dict[str, Relation] = {}
    for database in sorted(project.rglob("*.duckdb")):
        with duckdb.connect(str(database), read_only=True) as connection:
            catalog = connection.execute("select current_database()").fetchone()[0]
            listed = connection.execute(
                "select table_schema, table_name from information_schema.tables where table_catalog = ?", [catalog]
            ).fetchall()
            for schema, name in listed:
                key = f"{database.relative_to(project)}/{schema}.{name}"
                found[key] = _relation(connection, f'"{catalog}"."{schema}"."{name}"', ignored)
    return found


def _relation(connection: duckdb.DuckDBPyConnection, relation: str, ignored: frozenset[str]) -> Relation:
    """Row count, sum of row hashes (sum, not xor, so duplicate rows still count) and a hash per column.

    Rows are hashed over the columns sorted by name: the column order is compared on its own, because
    dbt itself can vary it between processes (a Jinja `set` iterates in Python's per-process hash order).
    """
    try:
        described = connection.execute(f"describe {relation}").fetchall()
        names = [row[0] for row in described if row[0].lower() not in ignored]
        quoted = [f'"{name}"' for name in names]
        per_column = ", ".join(f"sum(hash({q})::hugeint)" for q in quoted)
        row_hash = f"sum(hash({', '.join(sorted(quoted))})::hugeint)" if quoted else "0"
        rows, content, *sums = connection.execute(
            f"select count(*), {row_hash}, {per_column or 0} from {relation}"
        ).fetchone()
    except duckdb.Error as error:
        return Relation(None, f"unreadable: {first_line(str(error))}")
    return Relation(rows, str(content), {name: str(value) for name, value in zip(names, sums, strict=False)})


@dataclass
class Comparison:
    status_differences: list[dict[str, str]]
    dbt_only: list[str]
    dbtt_only: list[str]
    dbt_counts: dict[str, int]
    dbtt_counts: dict[str, int]
    relation_differences: list[dict[str, object]]
    column_order_differences: list[str]
    relations: int
    # Unreadable on both sides alike (e.g. a view over a file the profile attaches): not compared.
    unreadable: list[str]
    speed: dict[str, float | None]
    # Models whose unit tests ended alike but not node for node: dbt runs a model's unit tests in
    # turn, skipping the rest after the first failure, and takes them in a set's order (random per
    # process), so which one failed first may differ. Not a difference.
    unit_tests_in_another_order: list[str] = field(default_factory=list)

    @property
    def matches(self) -> bool:
        """Same statuses and contents, and at least one node ran: two runs that both did nothing prove nothing."""
        differences = self.status_differences or self.dbt_only or self.dbtt_only or self.relation_differences
        return bool(self.dbt_counts) and not differences


def compare(
    dbt: Side, dbtt: Side, dbt_relations: dict[str, Relation], dbtt_relations: dict[str, Relation]
) -> Comparison:
    both = sorted(dbt.statuses.keys() & dbtt.statuses.keys())
    differing = [uid for uid in both if dbt.statuses[uid] != dbtt.statuses[uid]]
    reordered = _reordered_unit_tests(dbt, dbtt, differing)
    status_differences = [
        {
            "unique_id": uid,
            "dbt": dbt.statuses[uid],
            "dbtt": dbtt.statuses[uid],
            "dbt_message": dbt.messages[uid],
            "dbtt_message": dbtt.messages[uid],
        }
        for uid in differing
        if _unit_test_model(uid) not in reordered
    ]
    return Comparison(
        status_differences=status_differences,
        unit_tests_in_another_order=sorted(reordered),
        dbt_only=sorted(dbt.statuses.keys() - dbtt.statuses.keys()),
        dbtt_only=sorted(dbtt.statuses.keys() - dbt.statuses.keys()),
        dbt_counts=dict(Counter(dbt.statuses.values())),
        dbtt_counts=dict(Counter(dbtt.statuses.values())),
        relation_differences=_relation_differences(dbt_relations, dbtt_relations),
        column_order_differences=_column_orders(dbt_relations, dbtt_relations),
        relations=len(dbt_relations.keys() | dbtt_relations.keys()),
        unreadable=sorted(
            key
            for key in dbt_relations.keys() & dbtt_relations.keys()
            if dbt_relations[key].rows is None and dbtt_relations[key].rows is None
        ),
        speed=_speed(dbt, dbtt),
    )


def _unit_test_model(unique_id: str) -> str | None:
    """`unit_test.<package>.<model>.<name>` -> `<package>.<model>`; None for other nodes."""
    kind, _, rest = unique_id.partition(".")
    return rest.rpartition(".")[0] if kind == "unit_test" else None


def _reordered_unit_tests(dbt: Side, dbtt: Side, differing: list[str]) -> set[str]:
    """Models whose unit tests differ node for node but end with the same statuses on both sides."""
    models = {_unit_test_model(uid) for uid in differing} - {None}

    def outcomes(side: Side, model: str) -> list[str]:
        return sorted(status for uid, status in side.statuses.items() if _unit_test_model(uid) == model)

    return {model for model in models if model is not None and outcomes(dbt, model) == outcomes(dbtt, model)}


def _relation_differences(dbt: dict[str, Relation], dbtt: dict[str, Relation]) -> list[dict[str, object]]:
    differences: list[dict[str, object]] = []
    for key in sorted(dbt.keys() | dbtt.keys()):
        a, b = dbt.get(key), dbtt.get(key)
        if a is None or b is None:
            differences.append({"relation": key, "only_in": "dbt" if b is None else "dbtt"})
        elif (a.rows, a.content) != (b.rows, b.content) or a.columns.keys() != b.columns.keys():
            columns = sorted(c for c in a.columns.keys() | b.columns.keys() if a.columns.get(c) != b.columns.get(c))
            differences.append(
                {"relation": key, "dbt_rows": a.rows, "dbtt_rows": b.rows, "columns": columns}
                | ({"dbt_error": a.content} if a.rows is None else {})
                | ({"dbtt_error": b.content} if b.rows is None else {})
            )
    return differences


def _column_orders(dbt: dict[str, Relation], dbtt: dict[str, Relation]) -> list[str]:
    """Relations whose columns are the same but in another order (reported, not a mismatch: see `_relation`)."""
    both = sorted(dbt.keys() & dbtt.keys())
    return [
        key
        for key in both
        if list(dbt[key].columns) != list(dbtt[key].columns) and dbt[key].columns.keys() == dbtt[key].columns.keys()
    ]


def _speed(dbt: Side, dbtt: Side) -> dict[str, float | None]:
    def ratio(x: float, y: float) -> float | None:
        return round(x / y, 3) if y else None

    return {
        "dbt_elapsed_s": round(dbt.elapsed_seconds, 2),
        "dbtt_elapsed_s": round(dbtt.elapsed_seconds, 2),
        "elapsed_ratio": ratio(dbtt.elapsed_seconds, dbt.elapsed_seconds),
        "dbt_wall_s": round(dbt.wall_seconds, 2),
        "dbtt_wall_s": round(dbtt.wall_seconds, 2),
        "wall_ratio": ratio(dbtt.wall_seconds, dbt.wall_seconds),
    }


# ---------------------------------------------------------------- report


def render(comparison: Comparison, dbt: Side, dbtt: Side) -> str:
    lines = [
        f"dbt:  {'ok' if dbt.ok else 'FAILED'}; {len(dbt.statuses)} results {_counts(comparison.dbt_counts)}"
        + (f"; {dbt.error}" if dbt.error else ""),
        f"dbtt: {'ok' if dbtt.ok else 'FAILED'}; {len(dbtt.statuses)} results {_counts(comparison.dbtt_counts)}"
        + (f"; run error: {dbtt.error}" if dbtt.error else ""),
    ]
    for difference in comparison.status_differences:
        lines.append(f"  status  {difference['unique_id']}: dbt {difference['dbt']} / dbtt {difference['dbtt']}")
        for side in ("dbt", "dbtt"):
            if difference[f"{side}_message"]:
                lines.append(f"            {side}: {difference[f'{side}_message']}")
    lines += [
        f"  unit tests of {model}: the same outcomes, another one failed first (dbt's order is random)"
        for model in comparison.unit_tests_in_another_order
    ]
    lines += [f"  only in dbt   {uid} ({dbt.statuses[uid]})" for uid in comparison.dbt_only]
    lines += [f"  only in dbtt  {uid} ({dbtt.statuses[uid]})" for uid in comparison.dbtt_only]
    lines.append(f"relations: {comparison.relations}, differing: {len(comparison.relation_differences)}")
    lines += [f"  {json.dumps(difference)}" for difference in comparison.relation_differences]
    lines += [f"  same columns in another order: {key}" for key in comparison.column_order_differences]
    if comparison.unreadable:
        lines.append(f"unreadable on both sides, not compared: {len(comparison.unreadable)}")
        lines += [f"  {key}" for key in comparison.unreadable]
    speed = comparison.speed
    lines.append(
        f"speed: elapsed_time dbt {speed['dbt_elapsed_s']}s, dbtt {speed['dbtt_elapsed_s']}s "
        f"(x{speed['elapsed_ratio']}); wall dbt build {speed['dbt_wall_s']}s, dbtt submit {speed['dbtt_wall_s']}s "
        f"(x{speed['wall_ratio']})"
    )
    lines.append("MATCH" if comparison.matches else "DIFFERENT" if comparison.dbt_counts else "NOTHING RAN")
    return "\n".join(lines)


def _counts(counts: dict[str, int]) -> str:
    return "(" + ", ".join(f"{word} {n}" for word, n in sorted(counts.items())) + ")"


# ---------------------------------------------------------------- entry point


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.compare", description="plain dbt vs dbtt, node for node")
    parser.add_argument("project", type=Path, help="dbt project directory (left untouched: it is copied twice)")
    parser.add_argument("--profiles-dir", type=Path, help="where profiles.yml is (default: the project copy)")
    parser.add_argument("--target", help="profile target for both sides")
    parser.add_argument("--command", default="build", choices=("build", "run", "test", "seed", "snapshot"))
    parser.add_argument("--select", nargs="+", help="dbt selection, the same on both sides")
    parser.add_argument("--vars", type=_vars, help="YAML mapping of project vars, the same on both sides")
    parser.add_argument(
        "--ignore-column",
        nargs="+",
        metavar="NAME",
        help="columns left out of every content comparison (say why: e.g. filled from current_timestamp)",
    )
    parser.add_argument("--runs", type=int, default=2, help="runs per side; the last one is compared")
    parser.add_argument("--json", type=Path, help="also write the comparison as JSON here")
    parser.add_argument("--workdir", type=Path, help="where the two copies go (default: a new temp dir, kept)")
    args = parser.parse_args(argv)
    if not (args.project / "dbt_project.yml").is_file():
        parser.error(f"{args.project} has no dbt_project.yml: pass a dbt project directory")
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    args.project = args.project.resolve()
    args.profiles_dir = args.profiles_dir.resolve() if args.profiles_dir else None
    return args


def _vars(text: str) -> dict[str, object]:
    value = yaml.safe_load(text)
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"not a YAML mapping: {text!r} (e.g. '{{load_source_data: true}}')")
    return value


def say(message: str) -> None:
    print(f"[compare] {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="dbtt-compare-"))
    copy_a = copy_project(args.project, work / "dbt")
    copy_b = copy_project(args.project, work / "dbtt")
    say(f"copies in {work}; plain dbt {args.command} x{args.runs}")
    dbt = run_dbt(copy_a, args)
    say(f"dbtt {args.command} x{args.runs} on one warm worker")
    with DevServer(ui=False) as server:
        dbtt = run_dbtt(server.address, copy_b, args)
    ignored = frozenset(name.lower() for name in args.ignore_column or [])
    comparison = compare(dbt, dbtt, relations_of(copy_a, ignored), relations_of(copy_b, ignored))
    print(render(comparison, dbt, dbtt))
    if args.json:
        args.json.write_text(json.dumps({"project": str(args.project), **asdict(comparison)}, indent=2) + "\n")
    return 0 if comparison.matches else 1


if __name__ == "__main__":
    sys.exit(main())
