"""dbt events on a worker: built only when read, with dbt's own handling of warnings intact.

`lazy_events.install()` changes dbt for the whole process, so each case runs in a fresh one.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap


def run_python(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_an_event_nobody_reads_is_never_built_and_one_read_later_says_what_dbt_says() -> None:
    out = run_python(
        """
        from dbt_common.events.event_manager_client import cleanup_event_logger
        from dbt_common.events.functions import fire_event
        from dbt.events.types import MainReportVersion
        from dbt_temporal.engine import lazy_events

        eager = MainReportVersion(version="1.2.3", log_version=3).message()
        cleanup_event_logger()
        lazy_events.install()
        event = MainReportVersion(version="1.2.3", log_version=3)
        fire_event(event)
        print("pb_msg" in event.__dict__, event.message() == eager, event.version)
        """
    )
    assert out == "False True 1.2.3"


def test_macro_log_lines_and_warnings_as_errors_still_reach_their_readers() -> None:
    out = run_python(
        """
        from dbt_common.events.event_manager_client import cleanup_event_logger
        from dbt_common.events.functions import fire_event, warn_or_error
        from dbt_common.events.types import Note
        from dbt_common.exceptions import EventCompilationError
        from dbt.events.types import JinjaLogInfo
        import dbt_common.events.functions as functions
        from dbt_temporal.engine import lazy_events

        cleanup_event_logger()
        lazy_events.install()
        seen = []
        lazy_events.add_callback(lambda msg: seen.append(msg.info.msg), {"JinjaLogInfo"})
        fire_event(JinjaLogInfo(msg="from a macro", node_info={}))
        fire_event(Note(msg="not read"))
        functions.WARN_ERROR = True
        try:
            warn_or_error(Note(msg="a warning"))
            raised = False
        except EventCompilationError:
            raised = True
        print(seen, raised)
        """
    )
    assert out == "['from a macro'] True"
