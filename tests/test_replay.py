"""Recorded histories replay against the current workflow code: runs in flight survive a deploy.

A failure here means a workflow change would break runs already started: version the change with
`workflow.patched(...)` (keeping the old path), then record new histories with
`python -m tests.record_histories` beside the old ones.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from dbt_temporal.client.codec import data_converter
from dbt_temporal.workflow.dbt_run import DbtRunWorkflow
from tests.incompatible_workflow import SkipsProjectHooks

HISTORIES = sorted((Path(__file__).resolve().parent / "histories").glob("*.json"))


def replay(workflow_class: type, history_file: Path) -> None:
    history = WorkflowHistory.from_json(history_file.stem, history_file.read_text())
    replayer = Replayer(workflows=[workflow_class], data_converter=data_converter)
    asyncio.run(replayer.replay_workflow(history))


def test_histories_are_recorded() -> None:
    assert len(HISTORIES) >= 4


@pytest.mark.parametrize("history_file", HISTORIES, ids=[path.stem for path in HISTORIES])
def test_recorded_history_replays_on_the_current_workflow(history_file: Path) -> None:
    replay(DbtRunWorkflow, history_file)


def test_an_incompatible_change_fails_replay() -> None:
    with pytest.raises(workflow.NondeterminismError):
        replay(SkipsProjectHooks, HISTORIES[[p.stem for p in HISTORIES].index("success_with_project_hooks")])
