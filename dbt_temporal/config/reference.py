"""Write docs/configuration.md from the settings model: `python -m dbt_temporal.config.reference [FILE]`.

Every variable dbtt reads is a field of `WorkerSettings` (client commands read the `Settings` part);
the page is made from them, and a test fails when the committed copy differs.
"""

from __future__ import annotations

import sys
from pathlib import Path

from pydantic import SecretStr

from dbt_temporal.config.settings import Settings, WorkerSettings

DEFAULT_FILE = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
HEADER = """# Configuration reference

Generated from the settings model (`dbt_temporal/config/settings.py`) by
`python -m dbt_temporal.config.reference`; a test checks it is current. Environment variables come
first, command-line flags on top; `dbtt config` prints the values in effect and where each came from.

"""


def _default(field: str) -> str:
    info = WorkerSettings.model_fields[field]
    if info.default_factory is not None:
        value = info.default_factory()  # type: ignore[call-arg]
    else:
        value = info.default
    if value is None or value == {} or isinstance(value, SecretStr):
        return "–"
    return f"`{str(value).lower() if isinstance(value, bool) else value}`"


def _table(fields: list[str]) -> list[str]:
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    for field in fields:
        description = (WorkerSettings.model_fields[field].description or "").replace("|", "\\|")
        lines.append(f"| `{Settings.env_name(field)}` | {_default(field)} | {description} |")
    return lines


def configuration_markdown() -> str:
    common = list(Settings.model_fields)
    worker_only = [field for field in WorkerSettings.model_fields if field not in Settings.model_fields]
    sections = [
        HEADER,
        "## Every command\n",
        *_table(common),
        "\n## Workers only (`dbtt worker`, `dbtt dev`)\n",
        *_table(worker_only),
    ]
    return "\n".join(sections) + "\n"


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_FILE
    target.write_text(configuration_markdown())
    print(f"wrote {target}")
