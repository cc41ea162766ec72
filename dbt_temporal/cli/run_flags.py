"""dbt's flags beyond --select and --exclude, which `submit`, `dev` and `schedule create` all take.

Declared once here: `takes_run_flags` gives a command every one of them as a typer option and
hands them to it as one `flags: SelectionFlags` argument.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

import typer

from dbt_temporal.contract import INDIRECT_SELECTION_MODES


@dataclass
class SelectionFlags:
    """dbt's flags beyond --select and --exclude: selection, and how nodes run."""

    selector: str | None = None
    resource_types: list[str] = field(default_factory=list)
    exclude_resource_types: list[str] = field(default_factory=list)
    indirect_selection: str | None = None
    empty: bool = False
    store_failures: bool = False
    warn_error: bool = False
    warn_error_options: str | None = None
    state: str | None = None
    defer: bool = False
    args: str | None = None
    inline: str | None = None
    limit: int | None = None


SelectorOption = typer.Option(None, "--selector", metavar="NAME", help="A selector of the project's selectors.yml.")
ResourceTypeOption = typer.Option(
    [], "--resource-type", metavar="TYPE", help="Only nodes of this type (build, ls); repeatable."
)
ExcludeResourceTypeOption = typer.Option(
    [], "--exclude-resource-type", metavar="TYPE", help="No nodes of this type (build, ls); repeatable."
)
IndirectSelectionOption = typer.Option(
    None,
    "--indirect-selection",
    metavar="MODE",
    help=f"Which tests a selection brings along, as in dbt: {', '.join(INDIRECT_SELECTION_MODES)}.",
)
EmptyOption = typer.Option(
    False, "--empty", help="Build with refs and sources limited to zero rows (build, run, compile, snapshot)."
)
StoreFailuresOption = typer.Option(
    False, "--store-failures", help="Keep each failing test's rows in a table (build, test)."
)
WarnErrorOption = typer.Option(False, "--warn-error", help="Treat dbt's warnings as errors (warning tests fail).")
StateOption = typer.Option(
    None,
    "--state",
    metavar="RUN",
    help="The earlier run that state: selectors compare with: last-success, last (this project and target's "
    "latest runs kept in the artifact store), a workflow id, a store URL of a run, or a directory on the workers.",
)
InlineOption = typer.Option(None, "--inline", metavar="SQL", help="show: preview this query's rows instead of nodes'.")
LimitOption = typer.Option(None, "--limit", metavar="N", help="show: rows to preview (dbt's default 5; at most 1000).")
ArgsOption = typer.Option(None, "--args", metavar="YAML", help="run-operation's macro arguments, as in dbt.")
DeferOption = typer.Option(False, "--defer", help="Read unbuilt parents from the --state run's relations, as in dbt.")
WarnErrorOptionsOption = typer.Option(
    None,
    "--warn-error-options",
    metavar="YAML",
    help="Which warnings are errors, as in dbt: a YAML mapping of error, warn, silence to 'all' or event names.",
)


# Each flag's command-line parameter: (name, type, option), in SelectionFlags' field order.
_PARAMETERS: list[tuple[str, Any, Any]] = [
    ("selector", str, SelectorOption),
    ("resource_type", list[str], ResourceTypeOption),
    ("exclude_resource_type", list[str], ExcludeResourceTypeOption),
    ("indirect_selection", str, IndirectSelectionOption),
    ("empty", bool, EmptyOption),
    ("store_failures", bool, StoreFailuresOption),
    ("warn_error", bool, WarnErrorOption),
    ("warn_error_options", str, WarnErrorOptionsOption),
    ("state", str, StateOption),
    ("defer", bool, DeferOption),
    ("args", str, ArgsOption),
    ("inline", str, InlineOption),
    ("limit", int, LimitOption),
]


def takes_run_flags(command: Callable[..., Any]) -> Callable[..., Any]:
    """Give a typer command every run flag as an option; it receives them as `flags: SelectionFlags`."""
    names = [name for name, _, _ in _PARAMETERS]
    field_names = [f.name for f in fields(SelectionFlags)]

    @functools.wraps(command)
    def with_flags(**kwargs: Any) -> Any:
        flags = SelectionFlags(**{f: kwargs.pop(name) for name, f in zip(names, field_names, strict=True)})
        return command(flags=flags, **kwargs)

    own = [p for p in inspect.signature(command).parameters.values() if p.name != "flags"]
    added = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=kind)
        for name, kind, option in _PARAMETERS
    ]
    with_flags.__signature__ = inspect.Signature(own + added)  # type: ignore[attr-defined]
    annotations = {k: v for k, v in command.__annotations__.items() if k != "flags"}
    with_flags.__annotations__ = {**annotations, **{name: kind for name, kind, _ in _PARAMETERS}}
    return with_flags
