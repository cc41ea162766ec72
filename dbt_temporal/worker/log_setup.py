"""The worker's log: one line per event, as text or JSON, on stderr, Temporal's own lines included.

Lines carry no colour (a log shipper would store the escape codes), so NO_COLOR holds as is.
Temporal Core's lines, which it would print itself with colours, are forwarded here instead.
A node failure that dbtt reports in its own line does not also get the SDK's traceback.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Literal

from temporalio.runtime import LogForwardingConfig, LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter

LogFormat = Literal["text", "json"]
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonLines(logging.Formatter):
    """One JSON object per line: time, level, logger, message (and the exception's first line)."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info and record.exc_info[1] is not None:
            line["error"] = str(record.exc_info[1]).splitlines()[0] if str(record.exc_info[1]) else ""
        return json.dumps(line)


class ReportedFailures(logging.Filter):
    """Drop the SDK's traceback for activity failures: the activity logged its own line already."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.getMessage() == "Completing activity as failed":
            record.exc_info = None
            return record.levelno >= logging.ERROR
        return True


def configure(log_format: LogFormat, level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLines() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    handler.addFilter(ReportedFailures())
    logging.basicConfig(level=level, handlers=[handler], force=True)


def worker_runtime() -> Runtime:
    """A Temporal runtime whose Core logs go through Python logging (so through the format above)."""
    return Runtime(
        telemetry=TelemetryConfig(
            logging=LoggingConfig(
                filter=TelemetryFilter(core_level="WARN", other_level="WARN"),
                forwarding=LogForwardingConfig(logger=logging.getLogger("temporalio.core")),
            )
        )
    )
