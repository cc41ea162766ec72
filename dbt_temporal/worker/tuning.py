"""Worker tuning: dbtt's WORKER_* settings as the Temporal SDK's worker options."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio.common import VersioningBehavior, WorkerDeploymentVersion
from temporalio.worker import ResourceBasedSlotConfig, WorkerDeploymentConfig, WorkerTuner

from dbt_temporal.config.settings import WorkerSettings


def worker_options(settings: WorkerSettings) -> dict[str, Any]:
    options: dict[str, Any] = {
        # Heartbeats are how a cancellation reaches a running node: send them every 2 s at
        # most (the SDK's default throttle would hold them for 80 % of the 10 s timeout).
        "max_heartbeat_throttle_interval": timedelta(seconds=2),
        "default_heartbeat_throttle_interval": timedelta(seconds=2),
        "max_cached_workflows": settings.worker_max_cached_workflows,
        "sticky_queue_schedule_to_start_timeout": timedelta(seconds=settings.worker_sticky_queue_timeout_secs),
        "nonsticky_to_sticky_poll_ratio": settings.worker_nonsticky_to_sticky_poll_ratio,
        "max_activities_per_second": settings.worker_max_activities_per_second,
        "max_task_queue_activities_per_second": settings.worker_max_task_queue_activities_per_second,
        "graceful_shutdown_timeout": timedelta(seconds=settings.worker_graceful_shutdown_secs),
    }
    if settings.worker_tuner == "resource-based":
        options["tuner"] = WorkerTuner.create_resource_based(
            target_memory_usage=settings.worker_resource_target_mem,
            target_cpu_usage=settings.worker_resource_target_cpu,
            activity_config=ResourceBasedSlotConfig(
                minimum_slots=settings.worker_resource_activity_min_slots,
                maximum_slots=settings.worker_resource_activity_max_slots,
            ),
        )
    else:
        options["max_concurrent_workflow_tasks"] = settings.worker_max_concurrent_workflow_tasks
        options["max_concurrent_activities"] = settings.worker_max_concurrent_activities
        options["max_concurrent_local_activities"] = settings.worker_max_concurrent_local_activities
    if settings.worker_deployment_name and settings.worker_build_id:
        # Pinned: a run stays, nodes and all, on the version of the workers that started it, so a
        # rolling deploy never hands half a run to another dbtt or project version.
        options["deployment_config"] = WorkerDeploymentConfig(
            version=WorkerDeploymentVersion(settings.worker_deployment_name, settings.worker_build_id),
            use_worker_versioning=True,
            default_versioning_behavior=VersioningBehavior.PINNED,
        )
    return options


def node_threads(settings: WorkerSettings) -> int:
    """Threads for running nodes: as many as activities may run at once on this worker."""
    if settings.worker_tuner == "resource-based":
        return settings.worker_resource_activity_max_slots
    return settings.worker_max_concurrent_activities
