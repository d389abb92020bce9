"""The aggregator's Redis side: claims and stale batches, trimming, dead letters, visibility."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import numpy as np
import pytest
import redis
from fastapi.testclient import TestClient

from service.settings import Settings
from service.spec import ExperimentRecord
from service.store import (
    AggregationStore,
    ExperimentStore,
    RedisSettings,
    close,
    connect,
    keys,
)
from service.worker import AggregationPlan, prepare
from tests.conftest import ADMIN, CLIENT, AppFactory, make_settings
from tests.ingest._helpers import (
    FAST,
    aggregate,
    assert_same,
    batches,
    make_events,
    make_units,
    observed,
    read_cells,
    reference,
    spec,
)


@pytest.fixture
def settings(redis_url: str) -> Settings:
    return make_settings(redis_url, **FAST)


@pytest.fixture
def client(settings: Settings, make_api: AppFactory) -> TestClient:
    c = make_api(settings)
    doc = spec("w-exp")
    assert c.post("/v1/experiments", json=doc, headers=ADMIN).status_code == 201
    assert c.post(f"/v1/experiments/{doc['key']}/start", headers=ADMIN).status_code == 200
    return c


def _post(client: TestClient, events: list[dict[str, object]], size: int = 100) -> None:
    for chunk in batches(events, size):
        assert client.post("/v1/events", json={"events": chunk}, headers=CLIENT).status_code == 202


def _events(seed: int = 1, units: int = 60) -> list[dict[str, object]]:
    rng = np.random.default_rng(seed)
    return make_events(rng, "w-exp", make_units(rng, units), per_unit=(1, 5))


def test_a_claimed_batch_is_applied_once(client: TestClient, settings: Settings) -> None:
    events = _events()
    _post(client, events)

    async def run() -> None:
        assert settings.redis_url is not None
        r = await connect(RedisSettings(settings.redis_url))
        try:
            record: ExperimentRecord = await ExperimentStore(r).get("w-exp")
            plan = AggregationPlan.from_record(record, segment_limit=50, value_chars=256)
            store = AggregationStore(r)
            await store.ensure_groups("w-exp")
            # Worker A reads, then stalls; B takes its entries over and applies them.
            taken = await store.read("w-exp", "events", "worker-a", 100, 10)
            assert len(taken) >= 2
            _, claimed = await store.claim("w-exp", "events", "worker-b", 0, 100, "0-0")
            assert [e.id for e in claimed] == [e.id for e in taken]
            batch_a = prepare(plan, "events", taken)
            batch_b = prepare(plan, "events", claimed)

            # A wakes up: its entries are no longer its own, so nothing happens.
            def apply(consumer: str, batch: Any) -> Any:
                return store.apply(
                    "w-exp", "events", consumer, batch.hours, batch.payload, segments=plan.segments
                )

            assert await apply("worker-a", batch_a) == [e.id for e in taken]
            assert await apply("worker-b", batch_b) == []
            # Applied and acknowledged: applying again (any consumer) is refused too.
            again = await apply("worker-b", batch_b)
            assert again == [e.id for e in claimed]
            stats = await store.stream_stats("w-exp")
            assert (stats.backlog_events, stats.events_pending) == (0, 0)
            assert stats.aggregated == len(events)
        finally:
            await close(r)

    asyncio.run(run())
    cells = asyncio.run(read_cells(settings, "w-exp"))
    assert_same(observed(cells), reference(spec("w-exp"), events))


def _trim(settings: Settings, key: str) -> int:
    async def run() -> int:
        assert settings.redis_url is not None
        r = await connect(RedisSettings(settings.redis_url))
        try:
            return await AggregationStore(r).trim(key)
        finally:
            await close(r)

    return asyncio.run(run())


def test_streams_are_trimmed_only_below_every_groups_ack(
    client: TestClient, settings: Settings, redis_sync: redis.Redis
) -> None:
    stream = keys.events_stream("w-exp")
    _post(client, _events(2), size=20)
    # A second group (another consumer of the stream) that has read nothing yet.
    redis_sync.xgroup_create(stream, "audit", id="0")
    length = redis_sync.xlen(stream)
    assert length >= 5
    asyncio.run(aggregate(settings, ["w-exp"]))
    assert _trim(settings, "w-exp") == 0  # "audit" acknowledged nothing: nothing trimmed
    assert redis_sync.xlen(stream) == length
    entries: Any = redis_sync.xreadgroup("audit", "reader", {stream: ">"}, count=3)
    ids = [entry_id for entry_id, _ in entries[0][1]]
    redis_sync.xack(stream, "audit", *ids[:2])  # the third stays pending
    assert _trim(settings, "w-exp") == 2
    stored: Any = redis_sync.xrange(stream)
    remaining = [entry_id for entry_id, _ in stored]
    assert remaining[0] == ids[2]
    assert len(remaining) == length - 2
    redis_sync.xgroup_destroy(stream, "audit")
    _trim(settings, "w-exp")
    assert redis_sync.xlen(stream) == 1  # the aggregator's last delivered entry remains


def test_undecodable_entries_go_to_the_dead_letter_stream(
    client: TestClient, settings: Settings, redis_sync: redis.Redis
) -> None:
    events = _events(3, units=20)
    _post(client, events[:30])
    stream = keys.events_stream("w-exp")
    redis_sync.xadd(stream, {"n": "2", "d": "[not json"})
    redis_sync.hincrby(keys.aggregation_meta("w-exp"), "backlog", 2)
    _post(client, events[30:])
    now = str(time.time())
    redis_sync.xadd(keys.exposures_stream("w-exp"), {"experiment": "w-exp", "timestamp": now})
    asyncio.run(aggregate(settings, ["w-exp"]))
    dead: Any = redis_sync.xrange(keys.dead_letters("w-exp"))
    assert len(dead) == 2
    assert {d[1]["source"] for d in dead} == {stream, keys.exposures_stream("w-exp")}
    assert dead[0][1]["entry.d"] == "[not json"
    meta = redis_sync.hgetall(keys.aggregation_meta("w-exp"))
    assert (meta["dead"], meta["backlog"]) == ("2", "0")
    cells = asyncio.run(read_cells(settings, "w-exp"))
    assert_same(observed(cells), reference(spec("w-exp"), events))


def test_stream_stats_show_the_backlog(client: TestClient, settings: Settings) -> None:
    events = _events(4, units=30)
    _post(client, events, size=25)

    async def stats() -> tuple[int, int, int | None, int]:
        assert settings.redis_url is not None
        r = await connect(RedisSettings(settings.redis_url))
        try:
            s = await AggregationStore(r).stream_stats("w-exp")
            return s.events_length, s.backlog_events, s.events_undelivered, s.ingested
        finally:
            await close(r)

    before = asyncio.run(stats())
    assert before[0] == -(-len(events) // 25)
    assert before[1] == before[3] == len(events)
    assert before[2] is None  # no worker yet: no group, Redis cannot count the lag
    asyncio.run(aggregate(settings, ["w-exp"]))
    after = asyncio.run(stats())
    assert after[1:] == (0, 0, len(events))


def test_idle_consumers_without_pending_entries_are_forgotten(
    client: TestClient, settings: Settings, redis_sync: redis.Redis
) -> None:
    _post(client, _events(5, units=10))

    async def run() -> tuple[int, list[str]]:
        assert settings.redis_url is not None
        r = await connect(RedisSettings(settings.redis_url))
        try:
            store = AggregationStore(r)
            await store.ensure_groups("w-exp")
            assert await store.read("w-exp", "events", "holder", 1, 10)  # keeps one pending
            # A restarted worker's old name: nothing pending.
            stream = keys.events_stream("w-exp")
            await r.xgroup_createconsumer(stream, "sharpen-aggregator", "gone")
            removed = await store.forget_consumers("w-exp", "events", 0)
            left = await r.xinfo_consumers(stream, "sharpen-aggregator")
            return removed, [str(c["name"]) for c in left]
        finally:
            await close(r)

    removed, left = asyncio.run(run())
    assert (removed, left) == (1, ["holder"])
