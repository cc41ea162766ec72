"""A plan too big for one payload fails at once, naming its size."""

from __future__ import annotations

import pytest
from temporalio.exceptions import ApplicationError

from dbt_temporal.client.codec import encoded_size
from dbt_temporal.contract import Plan, PlannedNode
from dbt_temporal.worker.plan_size import ensure_plan_fits
from dbt_temporal.workflow.dbt_run import NON_RETRYABLE


def chain(size: int) -> Plan:
    nodes = [
        PlannedNode(
            unique_id=f"model.p.m{i}", name=f"m{i}", resource_type="model", description=f"sql table model main.m{i}",
            parents=[i - 1] if i else [],
        )
        for i in range(size)
    ]  # fmt: skip
    return Plan(project="p", target="dev", threads=4, nodes=nodes)


def test_a_plan_within_the_limit_passes_unchanged() -> None:
    plan = chain(100)
    assert ensure_plan_fits(plan) is plan


def test_a_plan_over_the_limit_fails_without_retries_and_says_how_big_it_is() -> None:
    plan = chain(2_000)
    limit = encoded_size(plan) - 1

    with pytest.raises(ApplicationError) as raised:
        ensure_plan_fits(plan, limit=limit)

    error = raised.value
    assert error.non_retryable and error.type in NON_RETRYABLE
    assert "\n" not in error.message
    assert error.message.startswith("the plan of 2,000 nodes and 1,999 dependency edges is 0.")
    assert "--select" in error.message
