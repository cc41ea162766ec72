"""dbt's spelling of selections on the command line, which click alone does not parse.

dbt takes several values after one flag (`-s a b c`) and unions repeated flags
(`-s a -s b`); click options take exactly one value. Before click sees the
arguments, every selection flag's values are joined into one space-separated
value, which is how the workflow input carries a selection anyway.
"""

from __future__ import annotations

SELECTION_FLAGS = {"-s": "--select", "--select": "--select", "--exclude": "--exclude"}
# Subcommands that take a selection; other subcommands' arguments are left alone.
SELECTING_COMMANDS = ("submit", "dev", "schedule")


def join_selection_values(argv: list[str]) -> list[str]:
    """`submit -s a b --exclude c -s d` -> `submit --select 'a b d' --exclude c`."""
    subcommand = next((token for token in argv if not token.startswith("-")), None)
    if subcommand not in SELECTING_COMMANDS:
        return argv
    rest: list[str] = []
    values: dict[str, list[str]] = {}
    position = 0
    while position < len(argv):
        token = argv[position]
        position += 1
        if token == "--":
            rest += argv[position - 1 :]
            break
        flag, sep, inline = token.partition("=")
        if flag not in SELECTION_FLAGS or (sep and flag == "-s"):
            rest.append(token)
            continue
        taken = [inline] if sep else []
        while not sep and position < len(argv) and not argv[position].startswith("-"):
            taken.append(argv[position])
            position += 1
        if not taken:  # a flag without a value: let click report it
            rest.append(token)
            continue
        values.setdefault(SELECTION_FLAGS[flag], []).extend(taken)
    joined = [part for flag, taken in values.items() for part in (flag, " ".join(taken))]
    # The selection goes before a trailing `--`, where options are still options.
    if "--" in rest:
        cut = rest.index("--")
        return rest[:cut] + joined + rest[cut:]
    return rest + joined
