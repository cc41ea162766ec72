"""A plan must travel as one payload: refuse one that would not, saying why.

Temporal rejects payloads over 2 MiB (PayloadsTooLarge), and the activity would
be retried on a failure that is the same every time. The bound leaves room for
the rest of the event the plan travels in.
"""

from __future__ import annotations

from temporalio.exceptions import ApplicationError

from dbt_temporal.client.codec import encoded_size
from dbt_temporal.contract import Plan

PLAN_LIMIT_BYTES = 3 * 1024 * 1024 // 2
PLAN_TOO_LARGE = "PlanTooLarge"
MIB = 1024 * 1024


def ensure_plan_fits(plan: Plan, limit: int = PLAN_LIMIT_BYTES) -> Plan:
    """The plan itself, or a non-retryable error naming its size when it is too big to send."""
    size = encoded_size(plan)
    if size <= limit:
        return plan
    edges = sum(len(node.parents) for node in plan.nodes)
    raise ApplicationError(
        f"the plan of {len(plan.nodes):,} nodes and {edges:,} dependency edges is {size / MIB:.2f} MiB encoded, "
        f"over the {limit / MIB:.2f} MiB one Temporal payload may safely hold; select fewer nodes "
        "(--select/--exclude) and run the project in parts",
        type=PLAN_TOO_LARGE,
        non_retryable=True,
    )
