"""The exposure buffer: ``/v1/assign`` queues exposures here and never waits for Redis.

A background task writes what is queued in pipelined batches every
``flush_interval_s``; what is left is written on shutdown. The buffer is bounded:
once ``max_pending`` rows wait (Redis slow or down), new ones are refused and
counted in ``refused`` — the assignment itself is still answered. Nothing is
dropped without being counted: ``accepted == written + failed + lost + pending``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from redis.exceptions import RedisError

from service.store.exposures import ExposureLog, ExposureRow

__all__ = ["ExposureBuffer", "ExposureStats"]

log = logging.getLogger("sharpen.exposures")

_BATCH = 2_000
_MAX_BACKOFF_S = 2.0
_WARN_EVERY_S = 10.0


@dataclass(frozen=True, slots=True)
class ExposureStats:
    """Counters since start: accepted rows end up written, failed (Redis refused the
    command), lost (still queued when shutdown gave up) or pending."""

    accepted: int
    written: int
    refused: int
    failed: int
    lost: int
    pending: int


class ExposureBuffer:
    """A component: :meth:`offer` from the request path, flushed by its own task."""

    def __init__(
        self,
        log_: ExposureLog,
        *,
        flush_interval_s: float,
        max_pending: int,
        shutdown_timeout_s: float = 10.0,
        on_written: Callable[[list[ExposureRow]], None] | None = None,
    ) -> None:
        self._log = log_
        self._on_written = on_written  # metrics: assignments per experiment and variant
        self._interval = flush_interval_s
        self._max = max_pending
        self._shutdown_timeout_s = shutdown_timeout_s
        self._pending: deque[ExposureRow] = deque()
        self._wake = asyncio.Event()
        self._stop_requested = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._in_flight = 0
        self._stopping = False
        self._closed = False
        self._warned_at = 0.0
        self.accepted = 0
        self.written = 0
        self.refused = 0
        self.failed = 0
        self.lost = 0

    def offer(self, row: ExposureRow) -> bool:
        """Queue one exposure; ``False`` (and ``refused`` + 1) when full or closed. Never blocks."""
        pending = self._pending
        if len(pending) + self._in_flight >= self._max or self._closed:
            self._refuse()
            return False
        pending.append(row)
        self.accepted += 1
        wake = self._wake
        if not wake.is_set():
            wake.set()
        return True

    def stats(self) -> ExposureStats:
        return ExposureStats(
            accepted=self.accepted,
            written=self.written,
            refused=self.refused,
            failed=self.failed,
            lost=self.lost,
            pending=len(self),
        )

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="exposure-flush")

    async def stop(self) -> None:
        """Write everything queued (retrying for ``shutdown_timeout_s``), then close."""
        self._stopping = True
        self._stop_requested.set()
        self._wake.set()
        task, self._task = self._task, None
        if task is not None:
            try:
                await asyncio.wait_for(task, self._shutdown_timeout_s)
            except TimeoutError:
                pass
        self._closed = True
        if self._pending:
            self.lost += len(self._pending)
            log.error(
                "shutdown: %d exposures could not be written to Redis and are lost",
                len(self._pending),
            )
            self._pending.clear()

    async def flush(self) -> int:
        """Write everything queued now; return how many rows were written."""
        before = self.written
        await self._drain()
        return self.written - before

    async def _run(self) -> None:
        backoff = self._interval
        while True:
            await self._wake.wait()
            if not self._stopping:
                # Let a batch gather (cut short by stop()).
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop_requested.wait(), self._interval)
            self._wake.clear()
            try:
                await self._drain()
                backoff = self._interval
            except (RedisError, OSError) as exc:
                log.warning("exposure flush failed (%d pending, retrying): %s", len(self), exc)
                backoff = min(max(backoff * 2, 0.01), _MAX_BACKOFF_S)
                await asyncio.sleep(backoff)
                self._wake.set()
                continue
            except Exception:
                log.exception("exposure flush failed")
                await asyncio.sleep(_MAX_BACKOFF_S)
                self._wake.set()
                continue
            if self._stopping and not self._pending:
                return

    def __len__(self) -> int:
        """Rows accepted and not yet written (queued or being written)."""
        return len(self._pending) + self._in_flight

    async def _drain(self) -> None:
        pending = self._pending
        while pending:
            batch = [pending.popleft() for _ in range(min(_BATCH, len(pending)))]
            self._in_flight += len(batch)
            try:
                result = await self._log.append(batch)
            except BaseException:
                # Not known to be written: back to the front, in order, for the next try.
                pending.extendleft(reversed(batch))
                raise
            finally:
                self._in_flight -= len(batch)
            self.written += result.written
            if self._on_written is not None and not result.failed:
                self._on_written(batch)
            if result.failed:
                self.failed += result.failed
                log.error(
                    "redis refused %d exposures (not retried): %s",
                    result.failed,
                    result.first_error,
                )

    def _refuse(self) -> None:
        self.refused += 1
        now = time.monotonic()
        if now - self._warned_at >= _WARN_EVERY_S:
            self._warned_at = now
            log.warning(
                "exposure buffer full (%d pending) or closed: refused %d so far",
                len(self._pending),
                self.refused,
            )
