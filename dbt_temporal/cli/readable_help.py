"""Help text that names each value (`--env KEY=VALUE`, `WORKFLOW_ID`) instead of typer's `<str>` and `{name}`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer
from typer.core import TyperCommand

if TYPE_CHECKING:
    from typer._click import HelpFormatter  # typer's own copy of click, which it does not re-export


class ReadableCommand(TyperCommand):
    """Gives every value-taking parameter a metavar (its name unless set) and shows arguments by it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:
            if param.metavar is None and not getattr(param, "is_flag", False):
                param.metavar = (param.name or "value").strip("_").upper()

    def collect_usage_pieces(self, ctx: typer.Context) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if param.param_type_name == "argument":
                pieces.append(param.metavar if param.required else f"[{param.metavar}]")
        return pieces

    def format_options(self, ctx: typer.Context, formatter: HelpFormatter) -> None:
        arguments, options = [], []
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is None:
                continue
            if param.param_type_name == "argument":
                arguments.append((str(param.metavar), record[1]))
            else:
                options.append(record)
        for title, rows in (("Arguments", arguments), ("Options", options)):
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)


class DbttTyper(typer.Typer):
    """Every command gets the readable help, including commands added later."""

    def command(self, *args: Any, cls: type[TyperCommand] = ReadableCommand, **kwargs: Any) -> Any:
        return super().command(*args, cls=cls, **kwargs)
