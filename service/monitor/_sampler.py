"""Copy in-process counters that other parts keep (the exposure buffer) into the metrics.

Runs in every process that serves assignments, once a second, so that multiprocess mode
sums every worker's buffer; the parts themselves stay free of metric calls on the hot path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from service.runtime import Runtime

__all__ = ["ProcessSampler"]

log = logging.getLogger("sharpen.metrics")


class ProcessSampler:
    def __init__(self, runtime: Runtime, interval_s: float = 1.0) -> None:
        self._runtime = runtime
        self._interval_s = interval_s
        self._seen = {"failed": 0, "lost": 0, "busy": 0, "unavailable": 0}
        self._task: asyncio.Task[None] | None = None

    def sample(self) -> None:
        assigner = self._runtime.assigner
        if assigner is None:
            return
        stats = assigner.buffer.stats()
        metrics = self._runtime.metrics
        metrics.exposure_buffer_size.set(stats.pending)
        for counter, reason, total in (
            (metrics.exposure_buffer_dropped, "failed", stats.failed),
            (metrics.exposure_buffer_dropped, "lost", stats.lost),
            (metrics.exposures_refused, "busy", stats.refused_busy),
            (metrics.exposures_refused, "unavailable", stats.refused_unavailable),
        ):
            delta = total - self._seen[reason]
            if delta > 0:
                counter.labels(reason).inc(delta)
                self._seen[reason] = total

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="sharpen-metrics-sampler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.sample()

    async def _run(self) -> None:
        while True:
            try:
                self.sample()
            except Exception:
                log.exception("sampling in-process metrics failed")
            await asyncio.sleep(self._interval_s)
