"""Write the JSON schema of what `--output json` prints: `python -m dbt_temporal.client.schema [FILE]`.

The committed copy, docs/run-output.schema.json, is checked against the models by the tests.
"""

from __future__ import annotations

import sys
from pathlib import Path

from dbt_temporal.client.runs import run_report_schema

DEFAULT_FILE = Path(__file__).resolve().parents[2] / "docs" / "run-output.schema.json"

if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_FILE
    target.write_text(run_report_schema())
    print(f"wrote {target}")
