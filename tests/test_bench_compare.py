"""bench.compare's verdict: which nodes and relations it reports as different (pure logic, real DuckDB files)."""

from __future__ import annotations

from pathlib import Path

import duckdb

from bench.compare import Side, compare, relations_of, render


def _database(project: Path, rows: list[tuple[int, str]]) -> Path:
    project.mkdir()
    with duckdb.connect(str(project / "bench.duckdb")) as connection:
        connection.execute("create table orders (id integer, status varchar)")
        connection.executemany("insert into orders values (?, ?)", rows)
        connection.execute("create view open_orders as select * from orders where status = 'open'")
    return project


def _side(statuses: dict[str, str]) -> Side:
    return Side(ok=True, wall_seconds=2.0, elapsed_seconds=1.0, statuses=statuses, messages=dict.fromkeys(statuses, ""))


def test_same_rows_in_another_order_match(tmp_path: Path) -> None:
    a = relations_of(_database(tmp_path / "a", [(1, "open"), (2, "shipped")]))
    b = relations_of(_database(tmp_path / "b", [(2, "shipped"), (1, "open")]))
    result = compare(_side({"model.p.orders": "success"}), _side({"model.p.orders": "success"}), a, b)
    assert result.matches
    assert result.relations == 2


def test_values_moved_between_rows_are_a_difference_naming_no_single_column(tmp_path: Path) -> None:
    a = relations_of(_database(tmp_path / "a", [(1, "open"), (2, "shipped")]))
    b = relations_of(_database(tmp_path / "b", [(1, "shipped"), (2, "open")]))
    result = compare(_side({}), _side({}), a, b)
    differing = {d["relation"]: d["columns"] for d in result.relation_differences}
    assert differing == {"bench.duckdb/main.orders": [], "bench.duckdb/main.open_orders": ["id"]}


def test_changed_column_and_status_and_missing_node_are_reported(tmp_path: Path) -> None:
    a = relations_of(_database(tmp_path / "a", [(1, "open")]))
    b = relations_of(_database(tmp_path / "b", [(1, "closed")]))
    dbt = _side({"model.p.orders": "success", "operation.p.p-on-run-end-0": "success"})
    dbtt = _side({"model.p.orders": "error"})
    result = compare(dbt, dbtt, a, b)
    assert not result.matches
    assert [(d["unique_id"], d["dbt"], d["dbtt"]) for d in result.status_differences] == [
        ("model.p.orders", "success", "error")
    ]
    assert result.dbt_only == ["operation.p.p-on-run-end-0"]
    differing = {d["relation"]: d for d in result.relation_differences}
    assert differing["bench.duckdb/main.orders"]["columns"] == ["status"]
    assert differing["bench.duckdb/main.open_orders"]["dbtt_rows"] == 0
    assert result.speed["elapsed_ratio"] == 1.0


def test_same_columns_in_another_order_match_and_are_listed(tmp_path: Path) -> None:
    a = relations_of(_database(tmp_path / "a", [(1, "open")]))
    b_dir = tmp_path / "b"
    b_dir.mkdir()
    with duckdb.connect(str(b_dir / "bench.duckdb")) as connection:
        connection.execute("create table orders as select 'open' as status, 1 as id")
        connection.execute("create view open_orders as select id, status from orders where status = 'open'")
    result = compare(_side({"model.p.orders": "success"}), _side({"model.p.orders": "success"}), a, relations_of(b_dir))
    assert result.matches
    assert result.column_order_differences == ["bench.duckdb/main.orders"]


def test_ignored_columns_leave_the_comparison(tmp_path: Path) -> None:
    a = relations_of(_database(tmp_path / "a", [(1, "open"), (2, "open")]), frozenset({"status"}))
    b = relations_of(_database(tmp_path / "b", [(1, "shipped"), (2, "open")]), frozenset({"status"}))
    result = compare(_side({}), _side({}), a, b)
    assert [d["relation"] for d in result.relation_differences] == ["bench.duckdb/main.open_orders"]


def test_relations_unreadable_on_both_sides_are_listed_as_not_compared(tmp_path: Path) -> None:
    sides = []
    for name in ("a", "b"):
        project = _database(tmp_path / name, [(1, "open")])
        with duckdb.connect(str(project / "bench.duckdb")) as connection:
            connection.execute("create table gone as select 1 as id")
            connection.execute("create view reads_gone as select * from gone")
            connection.execute("drop table gone")
        sides.append(relations_of(project))
    result = compare(_side({"model.p.orders": "success"}), _side({"model.p.orders": "success"}), *sides)
    assert result.unreadable == ["bench.duckdb/main.reads_gone"]
    assert "unreadable on both sides, not compared: 1" in render(result, _side({}), _side({}))


def test_two_runs_that_ran_nothing_are_no_match() -> None:
    assert not compare(_side({}), _side({}), {}, {}).matches


def test_a_models_unit_tests_that_failed_in_another_order_are_no_difference() -> None:
    """dbt skips a model's other unit tests after the first failure, and its order is random."""
    first, second = "unit_test.p.orders.keeps_ids", "unit_test.p.orders.renames"
    dbt = _side({first: "fail", second: "skipped", "unit_test.p.customers.counts": "pass"})
    same_outcomes = _side({first: "skipped", second: "fail", "unit_test.p.customers.counts": "pass"})
    other_outcomes = _side({first: "fail", second: "fail", "unit_test.p.customers.counts": "pass"})

    reordered = compare(dbt, same_outcomes, {}, {})
    assert reordered.matches
    assert reordered.unit_tests_in_another_order == ["p.orders"]
    assert "unit tests of p.orders: the same outcomes" in render(reordered, dbt, same_outcomes)

    different = compare(dbt, other_outcomes, {}, {})
    assert not different.matches
    assert [d["unique_id"] for d in different.status_differences] == [second]
