"""The incremental statistics on a real Redis: what the feed builds equals a recount of the
stored records, whatever the order of records, duplicates, late labels and relabels; each
item is applied once even when two workers race."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import orjson
import pytest

from service.modelwatch._apply import Limits, _attributes, _cells, drain, grain_index
from service.modelwatch._contrib import Scoring, add_into, input_stats, label_stats
from service.modelwatch._windows import parse_bucket
from service.runtime import Runtime
from service.store import keys
from service.store.model_watch import FROZEN, WatchStore
from service.store.records import RecordStore
from tests.monitor._support import runtime_on

NOW = time.time()
LIMITS = Limits(attributes=3, features=2, values=4)
SCORING = Scoring()


def _record(rng: random.Random, i: int, labelled: bool) -> dict[str, Any]:
    ts = NOW - rng.uniform(0, 3 * 86_400)
    region = rng.choices(["north", "south", "east", "west", "tiny"], [40, 30, 20, 9, 1])[0]
    p = rng.random()
    record: dict[str, Any] = {
        "record_id": f"r{i}",
        "timestamp": ts,
        "prediction": round(p, 4),
        "attributes": {"region": region, "user": f"u{i}", "tier": rng.choice([1, 2, True])},
        "features": {"amount": rng.lognormvariate(3, 1), "age": None if i % 7 == 0 else 30.0},
    }
    if i % 11 == 0:
        record["features"]["late_feature"] = 1.0  # beyond the feature cap: not watched
    if labelled:
        record["label"] = int(rng.random() < p)
    return record


async def _recount(
    runtime: Runtime, store: RecordStore, name: str
) -> dict[tuple[str, int], dict[str, float]]:
    """Every bucket's sums recomputed from the stored records (late labels merged), with
    the cells each bucket fixed when it was first written."""
    watch = WatchStore(runtime.redis)
    state = await watch.state(name)
    features = orjson.loads(state["features"])
    classes = orjson.loads(state["pclasses"])
    out: dict[tuple[str, int], dict[str, float]] = {}
    frozen: dict[tuple[str, int], dict[str, list[str]]] = {}
    for record in await store.read(name):
        for grain in ("h", "d"):
            if grain == "h" and record["timestamp"] < time.time() - LIMITS.hours_kept * 3600:
                continue  # hourly buckets are kept two days
            bucket = (grain, grain_index(record["timestamp"], grain))
            if bucket not in frozen:
                raw: Any = await runtime.redis.hget(keys.model_watch_bucket(name, *bucket), FROZEN)
                frozen[bucket] = orjson.loads(raw)["attrs"]
            sums = {"n": 1.0, **label_stats(record, record.get("label"), SCORING)}
            target = out.setdefault(bucket, {})
            for cell in _cells(_attributes(record), frozen[bucket]):
                add_into(target, {f"{k}\x1f{cell}": v for k, v in sums.items()})
            add_into(target, input_stats(record, features, classes))
    return out


async def _stored(runtime: Runtime, name: str, bucket: tuple[str, int]) -> dict[str, float]:
    raw: Any = await runtime.redis.hgetall(keys.model_watch_bucket(name, *bucket))
    parsed = parse_bucket(raw)
    flat: dict[str, float] = {}
    for cell, stats in parsed.cells.items():
        flat.update({f"{k}\x1f{cell}": v for k, v in stats.items()})
    for name_, bins in parsed.inputs.items():
        flat.update({f"{name_}\x1f{k}": v for k, v in bins.items()})
    return flat


async def _assert_recount_matches(runtime: Runtime, store: RecordStore, name: str) -> None:
    expected = await _recount(runtime, store, name)
    assert expected
    for bucket, sums in expected.items():
        stored = await _stored(runtime, name, bucket)
        nonzero = {k: v for k, v in stored.items() if abs(v) > 1e-9}
        assert set(nonzero) == {k for k, v in sums.items() if abs(v) > 1e-9}, bucket
        for key, value in sums.items():
            assert stored.get(key, 0.0) == pytest.approx(value, rel=1e-9, abs=1e-9), key


async def _drain(runtime: Runtime, name: str, budget: int = 10_000) -> Any:
    return await drain(
        WatchStore(runtime.redis), name, scoring=SCORING, limits=LIMITS, now=time.time(),
        budget=budget,
    )  # fmt: skip


async def test_incremental_sums_equal_a_recount(redis_url: str) -> None:
    rng = random.Random(4)
    async with runtime_on(redis_url) as runtime:
        store = RecordStore(runtime.redis, max_records=10_000)
        records = [_record(rng, i, labelled=i % 3 == 0) for i in range(400)]
        await store.add("fraud", records[:150])
        await _drain(runtime, "fraud", budget=60)  # a partial drain: the rest waits
        await store.add("fraud", records[150:])
        dup = [{**r, "prediction": 0.5, "label": 1} for r in records[:20]]
        assert (await store.add("fraud", dup)).duplicates == 20
        late = [(f"r{i}", rng.randint(0, 1)) for i in range(0, 400, 2)]
        assert await store.add_labels("fraud", [*late, ("nope", 1)]) == (200, 1)
        await _drain(runtime, "fraud")
        relabel = [(f"r{i}", 1 - dict(late)[f"r{i}"]) for i in range(0, 120, 4)]
        await store.add_labels("fraud", relabel)
        await store.add_labels("fraud", relabel[:5])  # the same label again
        result = await _drain(runtime, "fraud")
        assert result.items == len(relabel) + 5 and not result.raced
        assert await WatchStore(runtime.redis).backlog("fraud") == 0
        assert await runtime.redis.xlen(keys.model_watch_feed("fraud")) == 0
        await _assert_recount_matches(runtime, store, "fraud")
        state = await WatchStore(runtime.redis).state("fraud")
        assert orjson.loads(state["attrs"]) == ["region", "user", "tier"]
        assert orjson.loads(state["features"]) == ["amount", "age"]  # capped at 2
        assert orjson.loads(state["labels_seen"]) == ["0", "1"]


async def test_rows_go_to_the_largest_values_and_stay_bounded(redis_url: str) -> None:
    rng = random.Random(8)
    async with runtime_on(redis_url) as runtime:
        store = RecordStore(runtime.redis, max_records=10_000)
        await store.add("fraud", [_record(rng, i, labelled=False) for i in range(600)])
        await _drain(runtime, "fraud")
        for grain, index in {("d", grain_index(NOW - h * 3600, "d")) for h in range(72)}:
            raw = await runtime.redis.hget(keys.model_watch_bucket("fraud", grain, index), FROZEN)
            if raw is None:
                continue
            rows = orjson.loads(raw)["attrs"]
            assert len(rows["user"]) <= LIMITS.values  # 600 distinct users: bounded
            assert {"north", "south", "east"} <= set(rows["region"])  # the largest kept


async def test_racing_workers_apply_each_item_once(redis_url: str) -> None:
    rng = random.Random(9)
    async with runtime_on(redis_url) as runtime:
        store = RecordStore(runtime.redis, max_records=10_000)
        for start in range(0, 300, 30):
            await store.add(
                "fraud", [_record(rng, i, i % 2 == 0) for i in range(start, start + 30)]
            )
        await store.add_labels("fraud", [(f"r{i}", 1) for i in range(1, 300, 2)])
        first, second = await asyncio.gather(_drain(runtime, "fraud"), _drain(runtime, "fraud"))
        assert first.raced or second.raced or first.items == 0 or second.items == 0
        await _drain(runtime, "fraud")
        await _assert_recount_matches(runtime, store, "fraud")


async def test_a_stale_cursor_writes_nothing(redis_url: str) -> None:
    async with runtime_on(redis_url) as runtime:
        watch = WatchStore(runtime.redis)
        done = await watch.apply(
            "fraud", expect="1-0", cursor="2-0", ids=[], backlog=0, state={"x": "1"},
            buckets=[],
        )  # fmt: skip
        assert done is False
        assert await watch.state("fraud") == {}


async def test_records_trimmed_before_the_monitor_saw_them_are_counted(redis_url: str) -> None:
    rng = random.Random(10)
    async with runtime_on(redis_url) as runtime:
        store = RecordStore(runtime.redis, max_records=100)
        await store.add("fraud", [_record(rng, i, False) for i in range(150)])
        result = await _drain(runtime, "fraud")
        assert (result.items, result.skipped) == (150, 50)
        state = await WatchStore(runtime.redis).state("fraud")
        assert state["skipped"] == "50"
        await _assert_recount_matches(runtime, store, "fraud")
