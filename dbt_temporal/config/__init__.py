"""Configuration: the settings every subcommand reads, project discovery, and `dbt_temporal.yml`."""
