"""The worker side: activities that drive the dbt engine, the worker's main loop, health and tuning."""
