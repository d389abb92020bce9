"""Results and plans of stored experiments (reads Redis through the stores)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

from service.errors import Gone
from service.results._build import build_results
from service.results._plan import observed_daily_units, spec_plan
from service.runtime import Runtime
from service.store.aggregates import AggregateStore
from service.store.retention import StateRetention

__all__ = ["experiment_plan", "experiment_results"]


def _aggregates(runtime: Runtime) -> AggregateStore:
    if runtime.aggregates is None:
        runtime.aggregates = AggregateStore(runtime.redis)
    return runtime.aggregates


async def _not_deleted(runtime: Runtime, key: str) -> None:
    """410 once retention deleted the statistics: never zeros in their place."""
    deleted = await StateRetention(runtime.redis).deleted(key)
    if deleted is not None:
        when = datetime.fromtimestamp(deleted.at, UTC).strftime("%Y-%m-%d %H:%M UTC")
        raise Gone(
            f"the statistics of {key!r} were deleted on {when}, "
            f"SHARPEN_EXPERIMENT_STATE_RETENTION_S after it ended; its journal entry "
            f"(GET /v1/journal/{key}) keeps its final results"
        )


async def experiment_results(
    runtime: Runtime, key: str, now: float | None = None
) -> dict[str, Any]:
    """The results document (docs/results.md) of experiment ``key``."""
    record = await runtime.experiments.get(key)
    await _not_deleted(runtime, key)
    cells = await _aggregates(runtime).read(
        key,
        [m.name for m in record.spec.metrics],
        cell_seconds=record.spec.analysis.cell_seconds,
    )
    # CPU-bound (tens of ms for large experiments): keep it off the event loop.
    return await asyncio.to_thread(
        build_results, record, cells, time.time() if now is None else now
    )


async def experiment_plan(runtime: Runtime, key: str, now: float | None = None) -> dict[str, Any]:
    """The power analysis of ``key``: at expected traffic, or observed traffic once running."""
    record = await runtime.experiments.get(key)
    observed: float | None = None
    if record.started_at is not None:
        cells = await _aggregates(runtime).read(key, [record.spec.primary.name])
        total = sum(cells.units(None).values())
        observed = observed_daily_units(record, total, time.time() if now is None else now)
    plan = await asyncio.to_thread(spec_plan, record.spec, observed)
    return {"experiment": key, "status": record.status, **plan}
