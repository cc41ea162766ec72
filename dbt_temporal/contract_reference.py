"""Write docs/contract.md from the wire models: `python -m dbt_temporal.contract_reference [FILE]`.

The `dbt_run` workflow's input and output are the pydantic models of contract.py; the page lists
their fields as the models define them, and a test fails when the committed copy differs.
"""

from __future__ import annotations

import sys
from pathlib import Path

from pydantic import BaseModel

from dbt_temporal.client.devserver import SEARCH_ATTRIBUTES
from dbt_temporal.contract import WORKFLOW_TYPE, DbtRunInput, DbtRunOutput, HookRun, NodeResult

DEFAULT_FILE = Path(__file__).resolve().parents[1] / "docs" / "contract.md"
# What the workflow keeps in its memo, for watchers (`dbtt status`, the Temporal UI).
MEMO = {
    "command": "the run's input, env values left out (keys only)",
    "node_status": "each node's status (small runs whole; large runs only nodes not pending or successful)",
    "progress": "node counts per status, and the total",
    "log": "the dbt-style run log's last 100 lines, the first line counting those left out",
}
SEARCH_ATTRIBUTE_MEANING = {
    "DbtProject": "the project's name",
    "DbtCommand": "the dbt command",
    "DbtTarget": "the profile target",
    "DbtStatus": "running, then success, failed, skipped or cancelled",
}
HEADER = f"""# The `{WORKFLOW_TYPE}` workflow contract

Generated from the models in `dbt_temporal/contract.py` by `python -m dbt_temporal.contract_reference`;
a test checks it is current. Any Temporal client can start a run: workflow type `{WORKFLOW_TYPE}`, one
argument (the input below, as JSON), on the workers' task queue. The JSON that `dbtt` prints with
`--output json` is described by [run-output.schema.json](run-output.schema.json).
"""


def _fields(model: type[BaseModel]) -> list[str]:
    lines = ["| field | type | default |", "|---|---|---|"]
    for name, info in model.model_fields.items():
        default = "required" if info.is_required() else f"`{info.get_default(call_default_factory=True)!r}`"
        lines.append(f"| `{name}` | `{_type_name(info.annotation)}` | {default} |")
    return lines


def _type_name(annotation: object) -> str:
    text = annotation.__name__ if isinstance(annotation, type) else str(annotation)
    return text.replace("typing.", "").replace("dbt_temporal.contract.", "").replace("|", "\\|")


def contract_markdown() -> str:
    sections = [HEADER, "## Input: `DbtRunInput`\n", *_fields(DbtRunInput)]
    sections += ["\n## Output: `DbtRunOutput`\n", *_fields(DbtRunOutput)]
    sections += ["\n### `NodeResult`\n", *_fields(NodeResult)]
    sections += ["\n### `HookRun`\n", *_fields(HookRun)]
    sections += ["\n## Memo\n", "| key | holds |", "|---|---|"]
    sections += [f"| `{key}` | {meaning} |" for key, meaning in MEMO.items()]
    sections += ["\n## Search attributes (keyword)\n", "| name | value |", "|---|---|"]
    sections += [f"| `{name}` | {SEARCH_ATTRIBUTE_MEANING[name]} |" for name in SEARCH_ATTRIBUTES]
    sections.append("\nRuns started by a schedule also carry Temporal's own `TemporalScheduledById`.")
    return "\n".join(sections) + "\n"


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_FILE
    target.write_text(contract_markdown())
    print(f"wrote {target}")
