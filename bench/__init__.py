"""Benchmark harness for dbtt (issue #4): synthetic DuckDB projects, dbt vs dbtt vs per-node dbt."""
