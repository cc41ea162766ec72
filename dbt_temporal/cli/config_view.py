"""`dbtt config`: the settings every command would use here, and where each came from."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from dbt_temporal.cli import app as cli
from dbt_temporal.cli.safe_text import plain
from dbt_temporal.config.effective import effective_settings
from dbt_temporal.config.settings import WorkerSettings


def config(
    address: str = cli.AddressOption,
    namespace: str = cli.NamespaceOption,
    task_queue: str = cli.TaskQueueOption,
    output: cli.OutputFormat = cli.OutputOption,
) -> None:
    """Print the effective settings (environment, then these flags), where each came from; secrets masked."""
    flags = {"temporal_address": address, "temporal_namespace": namespace, "temporal_task_queue": task_queue}
    given = {field: value for field, value in flags.items() if value is not None}
    rows = effective_settings(cli.load_settings(WorkerSettings, **given), set(given))
    if output == cli.OutputFormat.json:
        print(json.dumps([row.model_dump(exclude={"description"}) for row in rows], indent=2))
        raise typer.Exit(cli.EXIT_OK)
    table = Table(header_style="bold", box=None, pad_edge=False)
    for column in ("variable", "value", "from"):
        table.add_column(column)
    for row in rows:
        shown = "" if row.value is None else json.dumps(row.value) if not isinstance(row.value, str) else row.value
        table.add_row(row.name, plain(shown), row.source, style="dim" if row.source == "default" else "")
    cli.console.print(table)
