"""Keeping a run's env override values out of everything dbtt writes for people to read.

Pure functions: the workflow masks its run log with them too, so they must give the same text on
every replay.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

MASK = "****"
# Shorter values ("1", "us") would mangle unrelated text and reveal little; `dbtt submit` refuses them.
MIN_SECRET_LENGTH = 4
# A copy cut short (a database's error context shows the first part of a long literal) is masked
# once this many of its first characters show.
PREFIX_CHARS = 12
# Words the run log prints on its own. A secret that is, or is part of, one of them cannot be
# masked without the mask's position telling where it is (`START sql **** model`), so it is left
# alone and `dbtt submit` warns about it.
RUN_LOG_WORDS = tuple(
    """Running with dbtt Found Concurrency threads target nodes selected START RUN OK created loaded
    snapshotted ERROR creating PASS FAIL WARN SKIP NO-OP in Finished running Done TOTAL Completed
    successfully warning error sql table view incremental ephemeral materialized model models seed seeds
    test tests data unit snapshot snapshots operation hook hooks project analysis source sources exposure
    saved query semantic metric function microbatch batch skipped because""".split()
)


def revealed_by_mask(value: str) -> bool:
    """Whether masking `value` would point at it: it is part of a word the run log prints anyway."""
    lowered = value.lower()
    return any(lowered in word.lower() for word in RUN_LOG_WORDS)


def redact(text: str, secret_values: Iterable[str]) -> str:
    """`text` with every env override value masked: exact, re-indented or cut-short copies alike."""
    # Longest first, then alphabetical: the same text is masked the same way on every replay.
    for value in sorted(set(secret_values), key=lambda v: (-len(v), v)):
        if len(value.strip()) >= MIN_SECRET_LENGTH and not revealed_by_mask(value.strip()):
            text = _whitespace_tolerant(value).sub(MASK, text)
            if len(value) > PREFIX_CHARS:
                text = _mask_cut_copies(text, value)
    return text


@lru_cache(maxsize=256)
def _whitespace_tolerant(value: str) -> re.Pattern[str]:
    """The value, with each run of whitespace matching any other: dbt re-indents multi-line messages."""
    return re.compile(r"\s+".join(re.escape(part) for part in value.split()))


def _mask_cut_copies(text: str, value: str) -> str:
    """Mask every copy of the value's first PREFIX_CHARS characters, with as much of the rest as follows."""
    head = value[:PREFIX_CHARS]
    pieces: list[str] = []
    position = 0
    while (start := text.find(head, position)) != -1:
        end = start + len(head)
        while end < len(text) and end - start < len(value) and text[end] == value[end - start]:
            end += 1
        pieces += [text[position:start], MASK]
        position = end
    return "".join(pieces) + text[position:]
