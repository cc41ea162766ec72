"""dbtt: run dbt projects as Temporal workflows, one activity per dbt node."""

__version__ = "0.1.0"
