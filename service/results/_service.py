"""Results and plans of stored experiments (reads Redis through the stores)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from service.results._build import build_results
from service.results._plan import observed_daily_units, spec_plan
from service.runtime import Runtime
from service.store.aggregates import AggregateStore

__all__ = ["experiment_plan", "experiment_results"]


def _aggregates(runtime: Runtime) -> AggregateStore:
    if runtime.aggregates is None:
        runtime.aggregates = AggregateStore(runtime.redis)
    return runtime.aggregates


async def experiment_results(
    runtime: Runtime, key: str, now: float | None = None
) -> dict[str, Any]:
    """The results document (DESIGN.md, "Results") of experiment ``key``."""
    record = await runtime.experiments.get(key)
    cells = await _aggregates(runtime).read(key, [m.name for m in record.spec.metrics])
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
