"""The aggregator: consumes every active experiment's streams into sufficient statistics.

One consumer task per experiment and stream (events, exposures) reads through the shared
consumer group, so several workers (processes or machines) split the entries. Each batch
is applied by one Lua call that updates the statistics and acknowledges the entries
together; entries of a worker that died stay pending and are claimed (XAUTOCLAIM) by the
others once idle for ``aggregator_claim_idle_ms``. Streams are trimmed below what every
group has acknowledged. Experiments are found through :class:`ExperimentStore` (running,
or ended less than ``event_grace_s`` + 1 h ago), re-listed when the config version
changes (pub/sub on the config channel wakes the watcher; it also polls).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Sequence

from service.settings import Settings
from service.spec import ENDED, ExperimentRecord
from service.store import (
    AggregationStore,
    Entry,
    ExperimentStore,
    RedisClient,
    RedisSettings,
    StreamKind,
    close,
    connect,
)
from service.store.config_feed import ConfigFeed
from service.store.connection import RedisError, ResponseError
from service.store.retention import StateRetention
from service.worker._plan import AggregationPlan
from service.worker._preaggregate import prepare
from service.worker._retention import RetentionSweep

__all__ = ["Aggregator", "consumer_name"]

log = logging.getLogger("sharpen.worker")

_KINDS: tuple[StreamKind, ...] = ("events", "exposures")
_FULL_REFRESH_S = 30.0
_ENDED_EXTRA_S = 3600.0
_MAX_BACKOFF_S = 2.0
_FORGET_CONSUMERS_MS = 10 * 60_000


def consumer_name() -> str:
    """A consumer name unique to this process: host, pid and a random suffix."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def _is_data_error(exc: ResponseError) -> bool:
    """A script error caused by the batch itself (not by Redis being unwell)."""
    text = str(exc)
    return "non-finite" in text or "user_script" in text or "Error running script" in text


class Aggregator:
    """A background component (``start``/``stop``) and the body of ``sharpen worker``."""

    def __init__(
        self,
        settings: Settings,
        *,
        redis: RedisClient | None = None,
        consumer: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.consumer = consumer or consumer_name()
        self._given_redis = redis
        self._redis: RedisClient | None = None
        self._clock = clock
        self._store: AggregationStore | None = None
        self._experiments: ExperimentStore | None = None
        self._retention: RetentionSweep | None = None
        self._plans: dict[str, AggregationPlan] = {}
        self._tasks: dict[tuple[str, StreamKind], asyncio.Task[None]] = {}
        self._background: list[asyncio.Task[None]] = []
        self._wake = asyncio.Event()
        self._stopping = False

    async def start(self) -> None:
        if self._given_redis is not None:
            self._redis = self._given_redis
        else:
            url = self.settings.redis_url
            if url is None:
                raise ValueError("the aggregator needs settings.redis_url")
            self._redis = await connect(RedisSettings(url=url, cluster=self.settings.redis_cluster))
        self._stopping = False
        self._store = AggregationStore(self._redis)
        self._experiments = ExperimentStore(self._redis)
        self._retention = RetentionSweep(
            StateRetention(self._redis), self.settings.experiment_state_retention_s
        )
        self._background = [asyncio.create_task(self._watch(), name="aggregator-watch")]
        if not self.settings.redis_cluster:
            self._background.append(asyncio.create_task(self._listen(), name="aggregator-listen"))
        log.info("aggregator %s started", self.consumer)

    async def stop(self) -> None:
        # The flag ends every loop even if a library swallowed the cancellation.
        self._stopping = True
        self._wake.set()
        pending = {*self._background, *self._tasks.values()}
        for _ in range(10):
            if not pending:
                break
            for task in pending:
                task.cancel()
            _, pending = await asyncio.wait(pending, timeout=1.0)
        if pending:
            log.error("aggregator %s: %d tasks would not stop", self.consumer, len(pending))
        self._tasks.clear()
        self._background.clear()
        if self._redis is not None and self._given_redis is None:
            await close(self._redis)
        self._redis = None
        log.info("aggregator %s stopped", self.consumer)

    @property
    def experiments(self) -> list[str]:
        """Keys of the experiments being aggregated now."""
        return sorted(self._plans)

    # --- discovery ------------------------------------------------------------

    async def _watch(self) -> None:
        assert self._experiments is not None
        seen_version: int | None = None
        last_full = 0.0
        backoff = 0.05
        while not self._stopping:
            try:
                version = await self._experiments.config_version()
                now = time.monotonic()
                if version != seen_version or now - last_full > _FULL_REFRESH_S:
                    await self.refresh()
                    seen_version, last_full = version, now
                backoff = 0.05
            except (RedisError, OSError) as exc:
                log.warning("aggregator: cannot list experiments: %s", exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF_S)
                continue
            self._wake.clear()
            # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.config_poll_interval_s):
                    await self._wake.wait()

    async def _listen(self) -> None:
        """Wake the watcher on config-channel messages (single node; polling covers the rest)."""
        assert self._redis is not None
        feed = ConfigFeed(self._redis)
        while not self._stopping:
            try:
                # Subscribing also wakes: changes published while not listening are gone.
                await feed.listen(lambda _message: self._wake.set(), self._wake.set)
            except (RedisError, OSError) as exc:
                log.debug("aggregator: config channel lost: %s", exc)
                await asyncio.sleep(1.0)

    def _active(self, record: ExperimentRecord, now: float) -> bool:
        if record.status == "running":
            return True
        if record.status in ENDED and record.ended_at is not None:
            return record.ended_at >= now - self.settings.event_grace_s - _ENDED_EXTRA_S
        return False

    async def refresh(self) -> None:
        """Start consuming newly active experiments; stop those no longer active; delete the
        state of those that ended ``experiment_state_retention_s`` ago."""
        assert self._experiments is not None and self._store is not None
        now = self._clock()
        listed = await self._experiments.list()
        if self._retention is not None:
            await self._retention.run(listed, now)
        records = {r.key: r for r in listed if self._active(r, now)}
        for key in [k for k in self._plans if k not in records]:
            self._plans.pop(key)
            for kind in _KINDS:
                task = self._tasks.pop((key, kind), None)
                if task is not None:
                    task.cancel()
        for key, record in records.items():
            plan = AggregationPlan.from_record(
                record,
                segment_limit=self.settings.segment_max_values,
                value_chars=self.settings.event_max_attribute_chars,
                segment_candidates=self.settings.segment_candidates_max,
            )
            if self._plans.get(key) == plan:
                continue
            await self._store.ensure_groups(key)
            await self._store.set_metrics(key, plan.metric_names)
            self._plans[key] = plan
            for kind in _KINDS:
                task = self._tasks.get((key, kind))
                if task is None or task.done():
                    self._tasks[(key, kind)] = asyncio.create_task(
                        self._consume(key, kind), name=f"aggregate-{key}-{kind}"
                    )

    # --- consuming ------------------------------------------------------------

    async def _consume(self, key: str, kind: StreamKind) -> None:
        assert self._store is not None
        store = self._store
        settings = self.settings
        claim_every = min(max(settings.aggregator_claim_idle_ms / 2000.0, 0.05), 10.0)
        # An events entry is a whole accepted batch (up to 10,000 events); an exposures entry
        # is one exposure.
        count = (
            settings.aggregator_batch_entries
            if kind == "events"
            else settings.aggregator_batch_exposures
        )
        next_claim = 0.0
        next_trim = 0.0
        cursor = "0-0"
        backoff = 0.05
        while not self._stopping:
            try:
                now = time.monotonic()
                entries: list[Entry] = []
                if now >= next_claim:
                    cursor, entries = await store.claim(
                        key,
                        kind,
                        self.consumer,
                        settings.aggregator_claim_idle_ms,
                        count,
                        cursor,
                    )
                    if cursor == "0-0":
                        next_claim = now + claim_every
                        await store.forget_consumers(key, kind, _FORGET_CONSUMERS_MS)
                if not entries:
                    entries = await store.read(
                        key,
                        kind,
                        self.consumer,
                        count,
                        settings.aggregator_block_ms,
                    )
                if entries:
                    await self._apply(key, kind, entries)
                if time.monotonic() >= next_trim:
                    await store.trim(key, kind)
                    next_trim = time.monotonic() + settings.aggregator_trim_interval_s
                backoff = 0.05
            except asyncio.CancelledError:
                raise
            except ResponseError as exc:
                if "NOGROUP" in str(exc):
                    with contextlib.suppress(RedisError, OSError):
                        await store.ensure_groups(key)
                    continue
                log.warning("aggregator %s/%s: %s", key, kind, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF_S)
            except (RedisError, OSError) as exc:
                log.warning("aggregator %s/%s: redis unavailable: %s", key, kind, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF_S)
            except Exception:
                log.exception("aggregator %s/%s: unexpected error", key, kind)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF_S)

    async def _apply(self, key: str, kind: StreamKind, entries: Sequence[Entry]) -> None:
        """Apply ``entries`` exactly once: skip what another worker took, park poison."""
        assert self._store is not None
        plan = self._plans.get(key)
        if plan is None:
            return
        pending = list(entries)
        while pending:
            batch = prepare(plan, kind, pending)
            for entry, reason, owed in batch.rejected:
                log.error(
                    "aggregator %s/%s: entry %s dead-lettered: %s", key, kind, entry.id, reason
                )
                await self._store.dead_letter(key, kind, self.consumer, entry, reason, owed)
            if not batch.ids:
                return
            try:
                stale = await self._store.apply(
                    key, kind, self.consumer, batch.hours, batch.payload, segments=plan.segments
                )
            except ResponseError as exc:
                if not _is_data_error(exc):
                    raise
                usable = [e for e in pending if e.id in set(batch.ids)]
                if len(usable) > 1:
                    for entry in usable:
                        await self._apply(key, kind, [entry])
                else:
                    entry = usable[0]
                    log.error(
                        "aggregator %s/%s: entry %s dead-lettered: %s", key, kind, entry.id, exc
                    )
                    owed = batch.events if kind == "events" else 0
                    await self._store.dead_letter(key, kind, self.consumer, entry, str(exc), owed)
                return
            if not stale:
                return
            # Another worker claimed some entries: apply only those still ours.
            gone = set(stale)
            kept = set(batch.ids) - gone
            pending = [e for e in pending if e.id in kept]
