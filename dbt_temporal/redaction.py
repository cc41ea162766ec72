"""Keeping a run's env override values out of everything dbtt writes for people to read."""

from __future__ import annotations

from collections.abc import Iterable

MASK = "****"
# Shorter values ("1", "us") would mangle unrelated text and reveal little.
MIN_SECRET_LENGTH = 4


def redact(text: str, secret_values: Iterable[str]) -> str:
    """`text` with every env override value replaced by a mask, longest first."""
    # Longest first, then alphabetical: the same text is masked the same way on every replay.
    for value in sorted({v for v in secret_values if len(v) >= MIN_SECRET_LENGTH}, key=lambda v: (-len(v), v)):
        text = text.replace(value, MASK)
    return text
