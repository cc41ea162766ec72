"""Keep Python's cyclic garbage collector away from parsed manifests.

A parsed project is a few hundred thousand long-lived objects (nodes, macros, their
configs). Every full collection walks all of them again, and dbt's node runs allocate
enough to trigger one every second or so: on the 499-node bench, collections took 2.0 s
of the worker's interpreter lock in a 10 s run. Freezing the heap once a parse is done
moves everything alive at that point out of the collector's reach (gc.freeze); the run
then spent 1.1 s collecting and finished about 9 % sooner.

Frozen objects are still freed when their reference count drops; only cycles among them
would stay. So the heap is thawed whenever a session is dropped, which lets the next
collection reclaim it, and frozen again after the next parse.
"""

from __future__ import annotations

import gc


def freeze_after_parse() -> None:
    """Collect the parse's garbage, then keep every object alive now out of later collections."""
    gc.collect()
    gc.freeze()


def thaw() -> None:
    """Hand frozen objects back to the collector (a dropped session's cycles must be reclaimable)."""
    gc.unfreeze()
