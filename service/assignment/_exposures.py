"""The exposure buffer: what stands between an ``in_experiment`` answer and its stream entry.

**Admission before the answer.** ``/v1/assign`` and ``/v1/assign/batch`` call
:meth:`ExposureBuffer.offer` / :meth:`ExposureBuffer.offer_many` *before* answering; when
the rows do not fit, the endpoint answers 429/503 with ``Retry-After`` (see
:meth:`ExposureBuffer.refusal`) instead of an assignment. A batch is admitted whole or
not at all. ``/v1/exposures`` goes through :meth:`ExposureBuffer.write`, which admits the
same way and answers once Redis has the rows. So every admitted row is written (at least
once: a retry after a lost reply may duplicate it, which the aggregator's per-unit state
absorbs), or is still queued, or — only if Redis stays unreachable through a graceful
shutdown — counted in ``lost`` and logged.

**Fair share.** Rows wait in one FIFO queue per experiment. The buffer holds at most
``max_pending`` rows (queued or being written), and one experiment may hold at most the
buffer's free space (a dynamic threshold: ``n`` rows are admitted to queue ``q`` iff,
afterwards, ``held(q) <= max_pending - held(all)``). Alone, a flooding experiment fills
half of the buffer; with ``k`` flooding, each holds ``1/(k+1)`` of it and as much stays
free for the others, so a flood to A never refuses B's assignments. The check is O(1)
and allocates nothing.

**Flushing.** One background task writes pipelines of up to ``_PIPELINE_ROWS`` rows,
taking up to ``_QUANTUM`` rows from each ready queue in turn (round robin), so B's rows
go out in the next pipeline however long A's queue is. A script error (Redis out of
memory, a key of the wrong type) holds back that experiment's queue only, retried with
backoff; a lost connection holds back all of them. ``stop`` refuses new rows, then writes
everything admitted (for at most ``shutdown_timeout_s``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from service.errors import RateLimited, SharpenServiceError, Unavailable
from service.store.connection import RedisError
from service.store.exposures import ExposureLog, ExposureRow

__all__ = ["ExposureBuffer", "ExposureStats"]

log = logging.getLogger("sharpen.exposures")

_PIPELINE_ROWS = 2_000
_QUANTUM = 500
_MAX_BACKOFF_S = 2.0
_WARN_EVERY_S = 10.0
_RETRY_AFTER_S = 1


@dataclass(frozen=True, slots=True)
class ExposureStats:
    """Counters since start. Every accepted row ends up written, failed (could not be
    encoded), lost (still queued when shutdown gave up) or pending. ``refused`` rows were
    never accepted: their requests were answered 429/503."""

    accepted: int
    written: int
    refused: int
    failed: int
    lost: int
    pending: int
    refused_busy: int = 0
    refused_unavailable: int = 0


class _Queue:
    """One experiment's rows, oldest first, and its share of the buffer."""

    __slots__ = ("admitted", "backoff", "confirmed", "held", "key", "ready", "retry_at", "rows")

    def __init__(self, key: str) -> None:
        self.key = key
        self.rows: deque[ExposureRow] = deque()
        self.held = 0  # queued + being written
        self.ready = False  # in the flush ring
        self.admitted = 0  # rows ever admitted (the sequence number of the last one)
        self.confirmed = 0  # rows ever settled, oldest first
        self.retry_at = 0.0
        self.backoff = 0.0


class ExposureBuffer:
    """A component (``start``/``stop``): admission from the request path, flushed by its task."""

    def __init__(
        self,
        log_: ExposureLog,
        *,
        flush_interval_s: float,
        max_pending: int,
        shutdown_timeout_s: float = 10.0,
        write_timeout_s: float = 5.0,
        on_written: Callable[[list[ExposureRow]], None] | None = None,
    ) -> None:
        self._log = log_
        self._on_written = on_written  # metrics: assignments per experiment and variant
        self._interval = flush_interval_s
        self._max = max_pending
        self._limit = max_pending  # 0 once closed: every admission fails the same check
        self._shutdown_timeout_s = shutdown_timeout_s
        self._write_timeout_s = write_timeout_s
        self._queues: dict[str, _Queue] = {}
        self._ring: deque[_Queue] = deque()
        self._held = 0
        self._waiters: dict[str, deque[tuple[int, asyncio.Future[None]]]] = {}
        self._wake = asyncio.Event()
        self._hurry = asyncio.Event()  # stop, or a caller awaiting its rows: skip the gathering
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._unreachable = False  # the last pipeline failed: refusals are 503
        self._warned_at = 0.0
        self.accepted = 0
        self.written = 0
        self.refused_busy = 0
        self.refused_unavailable = 0
        self.failed = 0
        self.lost = 0

    # --- admission (request path) ------------------------------------------------------

    def offer(self, row: ExposureRow) -> bool:
        """Admit one row, or ``False`` (then answer :meth:`refusal`). Never blocks."""
        queue = self._queues.get(row[0])
        if queue is None:
            queue = self._queue(row[0])
        held = queue.held + 1
        if held > self._limit - self._held - 1:
            self._refused(queue, 1)
            return False
        queue.rows.append(row)
        queue.held = held
        queue.admitted += 1
        self._held += 1
        self.accepted += 1
        if not queue.ready:
            queue.ready = True
            self._ring.append(queue)
        if not self._wake.is_set():
            self._wake.set()
        return True

    def offer_many(self, experiment: str, rows: Sequence[ExposureRow]) -> bool:
        """Admit all of ``rows`` (one experiment's) or none of them."""
        if not rows:
            return True
        queue = self._queues.get(experiment)
        if queue is None:
            queue = self._queue(experiment)
        n = len(rows)
        if queue.held + n > self._limit - self._held - n:
            self._refused(queue, n)
            return False
        self._admit(queue, rows)
        self._wake.set()
        return True

    def precheck(self, experiment: str, units: int) -> bool:
        """Whether one more row of ``experiment`` would be admitted now: a cheap check that
        spares evaluating a batch of ``units`` that cannot be admitted (counted refused)."""
        queue = self._queues.get(experiment)
        if queue is None:
            queue = self._queue(experiment)
        if queue.held + 1 <= self._limit - self._held - 1:
            return True
        self._refused(queue, units)
        return False

    def refusal(self, experiment: str) -> SharpenServiceError:
        """The error to answer after a refused offer: 503 while Redis cannot be written or
        the service is stopping, else 429 (this experiment's share is full)."""
        if self._stopping:
            return Unavailable("the service is shutting down; retry", retry_after_s=_RETRY_AFTER_S)
        queue = self._queues.get(experiment)
        if self._unreachable or (queue is not None and queue.backoff):
            return Unavailable(
                "exposures cannot be written to storage right now; retry",
                retry_after_s=_RETRY_AFTER_S,
            )
        return RateLimited(
            f"too many exposures of experiment {experiment!r} are waiting to be written; retry",
            headers={"Retry-After": str(_RETRY_AFTER_S)},
        )

    async def write(self, rows: Sequence[ExposureRow]) -> None:
        """Admit ``rows`` (any experiments; all or none) and return once Redis has them.

        Raises the :meth:`refusal` when they do not fit, and 503 when they are not written
        within ``write_timeout_s`` (they stay queued; a retry may duplicate them).
        """
        groups: dict[str, list[ExposureRow]] = {}
        for row in rows:
            groups.setdefault(row[0], []).append(row)
        extra = 0
        for key, group in groups.items():
            queue = self._queues.get(key) or self._queue(key)
            extra += len(group)
            if queue.held + len(group) > self._limit - self._held - extra:
                self._refused(queue, len(rows))
                raise self.refusal(key)
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[None]] = []
        for key, group in groups.items():
            queue = self._queues[key]
            self._admit(queue, group)
            future: asyncio.Future[None] = loop.create_future()
            self._waiters.setdefault(key, deque()).append((queue.admitted, future))
            futures.append(future)
        self._wake.set()
        self._hurry.set()
        try:
            async with asyncio.timeout(self._write_timeout_s):
                await asyncio.gather(*futures)
        except TimeoutError:
            raise Unavailable(
                "exposures accepted but not yet written; retry (duplicates are harmless)",
                retry_after_s=_RETRY_AFTER_S,
            ) from None

    def _queue(self, key: str) -> _Queue:
        queue = self._queues[key] = _Queue(key)
        return queue

    def _admit(self, queue: _Queue, rows: Sequence[ExposureRow]) -> None:
        n = len(rows)
        queue.rows.extend(rows)
        queue.held += n
        queue.admitted += n
        self._held += n
        self.accepted += n
        if not queue.ready:
            queue.ready = True
            self._ring.append(queue)

    def _refused(self, queue: _Queue, n: int) -> None:
        if self._stopping or self._unreachable or queue.backoff:
            self.refused_unavailable += n
        else:
            self.refused_busy += n
        now = time.monotonic()
        if now - self._warned_at >= _WARN_EVERY_S:
            self._warned_at = now
            log.warning(
                "exposure buffer: refused %d rows of %r (it holds %d, all experiments %d of "
                "%d); %d refused so far",
                n,
                queue.key,
                queue.held,
                self._held,
                self._max,
                self.refused,
            )

    # --- state --------------------------------------------------------------------------

    @property
    def refused(self) -> int:
        return self.refused_busy + self.refused_unavailable

    def stats(self) -> ExposureStats:
        return ExposureStats(
            accepted=self.accepted,
            written=self.written,
            refused=self.refused,
            failed=self.failed,
            lost=self.lost,
            pending=self._held,
            refused_busy=self.refused_busy,
            refused_unavailable=self.refused_unavailable,
        )

    def held(self, experiment: str) -> int:
        """Rows of ``experiment`` admitted and not yet written."""
        queue = self._queues.get(experiment)
        return 0 if queue is None else queue.held

    def __len__(self) -> int:
        """Rows admitted and not yet written (queued or being written)."""
        return self._held

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="exposure-flush")

    async def stop(self) -> None:
        """Refuse new rows, write everything admitted (retrying for ``shutdown_timeout_s``)."""
        self._stopping = True
        self._limit = 0
        self._hurry.set()
        self._wake.set()
        task, self._task = self._task, None
        if task is not None:
            try:
                await asyncio.wait_for(task, self._shutdown_timeout_s)
            except TimeoutError:
                pass
        if self._held:
            self.lost += self._held
            log.error(
                "shutdown: %d exposures could not be written to Redis and are lost", self._held
            )
            for queue in self._queues.values():
                queue.rows.clear()
                queue.held = 0
            self._held = 0
            self._ring.clear()
        for waiters in self._waiters.values():
            for _, future in waiters:
                if not future.done():
                    future.set_exception(Unavailable("the service stopped before writing"))
        self._waiters.clear()

    async def flush(self, pipelines: int | None = None) -> int:
        """Write what is queued now (at most ``pipelines`` pipelines); return the rows written."""
        before = self.written
        left = pipelines
        while (left is None or left > 0) and await self._pipeline():
            left = None if left is None else left - 1
        return self.written - before

    # --- flushing -----------------------------------------------------------------------

    async def _run(self) -> None:
        backoff = self._interval
        while True:
            await self._wake.wait()
            if not self._hurry.is_set():
                # Let a batch gather (cut short by stop() or a waiting write()).
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._hurry.wait(), self._interval)
            if not self._stopping:
                self._hurry.clear()
            self._wake.clear()
            try:
                while await self._pipeline():
                    pass
                backoff = self._interval
            except (RedisError, OSError) as exc:
                self._unreachable = True
                log.warning("exposure flush failed (%d pending, retrying): %s", self._held, exc)
                backoff = min(max(backoff * 2, 0.01), _MAX_BACKOFF_S)
                await asyncio.sleep(backoff)
                self._wake.set()
                continue
            except Exception:
                log.exception("exposure flush failed")
                await asyncio.sleep(_MAX_BACKOFF_S)
                self._wake.set()
                continue
            if self._ring:  # only queues waiting out a script error: wake for the first
                delay = min(q.retry_at for q in self._ring) - time.monotonic()
                self._wake_later(max(delay, 0.001))
            elif self._stopping:
                return

    def _wake_later(self, delay: float) -> None:
        asyncio.get_running_loop().call_later(delay, self._wake.set)

    def _take(self) -> list[tuple[_Queue, list[ExposureRow]]]:
        """Rows for one pipeline: up to ``_QUANTUM`` from each ready queue in turn."""
        runs: dict[str, tuple[_Queue, list[ExposureRow]]] = {}
        ring = self._ring
        budget = _PIPELINE_ROWS
        now = time.monotonic()
        skipped = 0
        while budget > 0 and ring and skipped < len(ring):
            queue = ring.popleft()
            if queue.retry_at > now:
                ring.append(queue)
                skipped += 1
                continue
            skipped = 0
            rows = queue.rows
            n = min(_QUANTUM, budget, len(rows))
            run = runs.get(queue.key)
            if run is None:
                run = runs[queue.key] = (queue, [])
            taken = run[1]
            for _ in range(n):
                taken.append(rows.popleft())
            budget -= n
            if rows:
                ring.append(queue)
            else:
                queue.ready = False
        return list(runs.values())

    def _put_back(self, queue: _Queue, rows: list[ExposureRow]) -> None:
        """Rows not known to be written go back to the front of their queue, in order."""
        queue.rows.extendleft(reversed(rows))
        if not queue.ready:
            queue.ready = True
            self._ring.append(queue)

    async def _pipeline(self) -> bool:
        """Write one pipeline; ``False`` when nothing (writable) was queued."""
        runs = self._take()
        if not runs:
            return False
        try:
            results = await self._log.write_runs([rows for _, rows in runs])
        except BaseException:
            for queue, rows in runs:
                self._put_back(queue, rows)
            raise
        self._unreachable = False
        now = time.monotonic()
        for (queue, rows), result in zip(runs, results, strict=True):
            done = result.done
            if done < len(rows):
                self._put_back(queue, rows[done:])
                queue.backoff = min(max(queue.backoff * 2, 0.05), _MAX_BACKOFF_S)
                queue.retry_at = now + queue.backoff
                log.error(
                    "redis refused exposures of %r (%d waiting, retried in %.2f s): %s",
                    queue.key,
                    queue.held,
                    queue.backoff,
                    result.error,
                )
            else:
                queue.backoff = 0.0
            if done:
                self._settle(queue, rows[:done], result.unencodable)
        return True

    def _settle(self, queue: _Queue, rows: list[ExposureRow], unencodable: int) -> None:
        n = len(rows)
        queue.held -= n
        queue.confirmed += n
        self._held -= n
        self.failed += unencodable
        self.written += n - unencodable
        if self._on_written is not None:
            self._on_written(rows)
        waiters = self._waiters.get(queue.key)
        while waiters and waiters[0][0] <= queue.confirmed:
            _, future = waiters.popleft()
            if not future.done():
                future.set_result(None)
