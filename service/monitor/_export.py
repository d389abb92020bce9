"""Feed the app's experiment collector from Redis before each scrape of ``GET /metrics``."""

from __future__ import annotations

import logging
import time

from service.metrics import ExperimentSnapshot
from service.monitor._snapshot import load_snapshot
from service.runtime import Runtime
from service.spec import ENDED
from service.store.connection import RedisError
from service.store.monitor_state import MonitorState

__all__ = ["refresh_experiment_metrics"]

log = logging.getLogger("sharpen.metrics")


async def refresh_experiment_metrics(runtime: Runtime, now: float | None = None) -> None:
    """Statuses of every experiment, and the snapshots of running ones and of those that
    ended within ``metrics_ended_retention_s``. On a Redis error the last view stays."""
    now = time.time() if now is None else now
    retention = runtime.settings.metrics_ended_retention_s
    try:
        records = await runtime.experiments.list()
        shown = [
            r.key
            for r in records
            if r.status == "running"
            or (r.status in ENDED and r.ended_at is not None and now - r.ended_at <= retention)
        ]
        raws = await MonitorState(runtime.redis).snapshots(shown)
    except (RedisError, OSError) as exc:
        log.warning("metrics: experiment view not refreshed: %s", exc)
        return
    snapshots: list[ExperimentSnapshot] = []
    for key, raw in raws.items():
        try:
            snapshots.append(load_snapshot(raw)[0])
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("metrics: unreadable snapshot of %s: %s", key, exc)
    runtime.metrics.experiments.update(
        {r.key: r.status for r in records},
        snapshots,
        {r.key: r.started_at for r in records if r.started_at is not None},
    )
