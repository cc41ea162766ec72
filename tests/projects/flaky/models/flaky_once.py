import os
from pathlib import Path


def model(dbt, session):
    # Fault injection for the retry tests: the first attempt loses its "connection";
    # the marker file remembers that it happened, so the next attempt succeeds.
    marker = Path(os.environ["FLAKY_MARKER"])
    if not marker.exists():
        marker.write_text("failed once")
        raise ConnectionResetError("connection reset by peer (injected by the test suite)")
    return session.sql("select 42 as answer")
