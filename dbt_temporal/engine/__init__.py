"""The dbt engine: warm, in-process dbt sessions that plan and run single nodes.

Only activities import this package; workflow code never does.
"""
