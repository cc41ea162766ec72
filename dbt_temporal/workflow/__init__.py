"""Deterministic workflow code only: the `dbt_run` workflow, its scheduler and its run log.

Nothing here imports dbt, the worker or the client: the Temporal sandbox loads it.
"""
