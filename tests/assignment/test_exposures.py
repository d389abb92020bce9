"""Exposure logging: every in-experiment assignment lands in the stream exactly once, flushed in
the background and on graceful shutdown; an exposure that does not fit is refused (429/503 +
Retry-After) before the assignment is answered, and one experiment cannot take every slot."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest
import redis
from fastapi.testclient import TestClient

from service.assignment import Assigner, ExposureBuffer, StaticConfig, compile_entries
from service.errors import RateLimited, Unavailable
from service.spec import ExperimentRecord, parse_spec
from service.spec.sdk_config import sdk_entry
from service.store import RedisSettings, close, connect, keys
from service.store.event_codec import exposure_event
from service.store.exposures import ExposureLog
from tests._wait import await_for, wait_for
from tests.assignment._helpers import assign, assign_batch, launch, make_spec
from tests.conftest import ADMIN, CLIENT, make_settings, running_app

UNITS = [f"user-{i}" for i in range(600)]
SLOW_FLUSH = {"exposure_flush_interval_s": 5.0}  # nothing flushes before shutdown


def _entries(r: redis.Redis, key: str) -> list[tuple[str, dict[str, str]]]:
    raw: Any = r.xrange(keys.exposures_stream(key))
    return [(str(i), dict(f)) for i, f in raw]


def _expected(client: TestClient, key: str, n: int = 200) -> set[tuple[str, str]]:
    """Assign the first ``n`` units one by one, ``n`` more in a batch; return who is in."""
    got = [assign(client, key, u, {"country": "US", "tier": 2}) for u in UNITS[:n]]
    got += assign_batch(client, key, UNITS[n : 2 * n])
    return {(u, x["variant"]) for u, x in zip(UNITS, got, strict=False) if x["in_experiment"]}


def test_each_exposure_is_written_once_while_running(
    api: TestClient, redis_sync: redis.Redis
) -> None:
    launch(api, "expo", traffic=0.5, segments=["country"])
    exposed = _expected(api, "expo")
    assert 150 < len(exposed) < 250
    wait_for(
        lambda: redis_sync.xlen(keys.exposures_stream("expo")),
        until=lambda written: written >= len(exposed),
        what=f"{len(exposed)} exposures written",
    )
    entries = _entries(redis_sync, "expo")
    assert {(f["unit_id"], f["variant"]) for _, f in entries} == exposed
    assert len(entries) == len(exposed)
    now = time.time()
    for entry_id, fields in entries:
        assert set(fields) == {
            "experiment",
            "unit_id",
            "variant",
            "version",
            "timestamp",
            "attributes",
        }
        assert fields["experiment"] == "expo" and fields["version"] == "1"
        assert now - 60 < float(fields["timestamp"]) <= now
        attributes = orjson.loads(fields["attributes"])
        assert attributes in ({"country": "US", "tier": 2}, {})
        # The aggregator's decoder reads what assignment writes.
        event = exposure_event(entry_id, fields, ["country"], 64)
        assert event is not None and event.unit_id == fields["unit_id"]
        assert event.variant == fields["variant"]
    stats = api.app.state.runtime.assigner.buffer.stats()  # type: ignore[attr-defined]
    assert (stats.accepted, stats.written, stats.refused, stats.pending) == (
        len(exposed),
        len(exposed),
        0,
        0,
    )


def test_leaving_the_app_flushes_everything(redis_url: str, redis_sync: redis.Redis) -> None:
    with running_app(make_settings(redis_url, **SLOW_FLUSH)) as client:
        launch(client, "expo")
        exposed = _expected(client, "expo", n=20)  # quick: well within the 5 s flush interval
        assert len(exposed) == 40  # traffic 1.0: everyone is in
        assert redis_sync.xlen(keys.exposures_stream("expo")) == 0  # still buffered
    entries = _entries(redis_sync, "expo")
    assert len(entries) == 40
    assert {(f["unit_id"], f["variant"]) for _, f in entries} == exposed


def _assigner(redis_url: str, max_pending: int, **buffer: Any) -> tuple[Assigner, ExposureBuffer]:
    """An assigner over a static config of two running experiments, ``a`` and ``b`` (everyone
    in), with a buffer that is not started: nothing is written unless a test flushes."""
    client = redis.asyncio.Redis.from_url(redis_url)
    exposures = ExposureBuffer(
        ExposureLog(client), flush_interval_s=0.001, max_pending=max_pending, **buffer
    )
    entries = [sdk_entry(record(make_spec(key))) for key in ("a", "b")]
    return Assigner(StaticConfig(compile_entries(entries, version=1)), exposures), exposures


def _batch(key: str, units: list[str]) -> bytes:
    return orjson.dumps({"experiment": key, "units": [{"unit_id": u} for u in units]})


def _one(key: str, unit: str) -> bytes:
    return orjson.dumps({"experiment": key, "unit_id": unit})


def test_a_batch_is_admitted_whole_or_refused_before_answering(redis_url: str) -> None:
    """One experiment may hold at most the buffer's free space: of 4,000, half when alone."""
    assigner, buffer = _assigner(redis_url, max_pending=4000)
    for i in range(2):
        answers = orjson.loads(assigner.assign_batch(_batch("a", UNITS[i * 300 : i * 300 + 300])))
        assert all(x["in_experiment"] for x in answers["assignments"])
    assert buffer.held("a") == 600
    big = [f"big-{i}" for i in range(1000)]
    assigner.assign_batch(_batch("a", big))  # 1,600 held
    with pytest.raises(RateLimited) as refused:
        assigner.assign_batch(_batch("a", [f"more-{i}" for i in range(401)]))  # 2,001 > 2,000
    assert refused.value.headers == {"Retry-After": "1"}
    assert "'a'" in refused.value.message
    assert buffer.held("a") == 1600  # nothing of the refused batch was queued
    assert orjson.loads(assigner.assign_batch(_batch("a", [f"x-{i}" for i in range(400)])))
    with pytest.raises(RateLimited):
        assigner.assign(_one("a", "one-more"))  # A holds its whole share
    with pytest.raises(RateLimited):  # refused before its units are even evaluated
        assigner.assign_batch(_batch("a", ["p-1", "p-2", "p-3"]))
    # B is still admitted, one by one and in batches.
    assert orjson.loads(assigner.assign(_one("b", "b-1")))["in_experiment"] is True
    assigner.assign_batch(_batch("b", [f"b-{i}" for i in range(2, 500)]))
    stats = buffer.stats()
    assert (stats.accepted, stats.refused_busy, buffer.held("a"), buffer.held("b")) == (
        2499,
        405,
        2000,
        499,
    )


def test_a_flood_of_several_experiments_leaves_room_for_one_more(redis_url: str) -> None:
    """With k experiments at their share, each holds max/(k+1) and as much stays free."""
    client = redis.asyncio.Redis.from_url(redis_url)
    buffer = ExposureBuffer(ExposureLog(client), flush_interval_s=0.001, max_pending=10_000)
    flooders = [f"flood-{i}" for i in range(4)]
    for _ in range(3000):
        for key in flooders:
            buffer.offer((key, "u", "a", 1, 1.0, None))
    assert [buffer.held(k) for k in flooders] == [2000] * 4
    assert all(buffer.offer(("quiet", f"u{i}", "a", 1, 1.0, None)) for i in range(1000))
    assert len(buffer) == 9000 and buffer.stats().refused == 4 * 3000 - 4 * 2000


async def test_the_flush_takes_turns_between_experiments(redis_url: str) -> None:
    """B's exposure goes out in the first pipeline however many of A's wait before it."""
    client = await connect(RedisSettings(url=redis_url))
    buffer = ExposureBuffer(ExposureLog(client), flush_interval_s=0.001, max_pending=100_000)
    try:
        assert buffer.offer_many("a", [("a", f"u{i}", "x", 1, 1.0, None) for i in range(9000)])
        assert buffer.offer(("b", "late", "x", 1, 1.0, None))
        written = await buffer.flush(pipelines=1)
        assert await client.xlen(keys.exposures_stream("b")) == 1
        assert 0 < await client.xlen(keys.exposures_stream("a")) == written - 1 < 9000
        await buffer.flush()
        assert await client.xlen(keys.exposures_stream("a")) == 9000
        assert (buffer.stats().written, len(buffer)) == (9001, 0)
    finally:
        await close(client)


async def test_redis_down_refuses_with_503_keeps_rows_then_counts_them_lost(
    redis_url: str,
) -> None:
    """Nothing admitted vanishes silently: rows that never reach Redis are counted lost."""
    dead = redis.asyncio.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    buffer = ExposureBuffer(
        ExposureLog(dead), flush_interval_s=0.001, max_pending=20_000, shutdown_timeout_s=0.3
    )
    try:
        await buffer.start()
        assert buffer.offer_many("exp", [("exp", f"u{i}", "a", 1, 1.0, None) for i in range(100)])
        await await_for(
            lambda: isinstance(buffer.refusal("exp"), Unavailable), what="a failed flush"
        )
        assert len(buffer) == 100  # flush attempts fail; rows stay queued
        assert not buffer.offer_many("exp", [("exp", "x", "a", 1, 1.0, None)] * 10_000)
        refusal = buffer.refusal("exp")
        assert isinstance(refusal, Unavailable) and refusal.headers == {"Retry-After": "1"}
        await buffer.stop()
        stats = buffer.stats()
        assert (stats.accepted, stats.written, stats.refused_unavailable, stats.lost) == (
            100,
            0,
            10_000,
            100,
        )
        assert not buffer.offer(("exp", "late", "a", 1, 1.0, None))  # closed
        assert isinstance(buffer.refusal("exp"), Unavailable)
    finally:
        await dead.aclose()


async def test_a_script_error_holds_back_only_its_experiment(redis_url: str) -> None:
    """Redis refusing one experiment's writes (here: its stream key is a string) keeps that
    experiment's rows queued and retried, while the others are written."""
    client = await connect(RedisSettings(url=redis_url))
    buffer = ExposureBuffer(ExposureLog(client), flush_interval_s=0.001, max_pending=20_000)
    try:
        await client.set(keys.exposures_stream("broken"), "not a stream")
        await buffer.start()
        assert buffer.offer_many(
            "broken", [("broken", f"u{i}", "a", 1, 1.0, None) for i in range(50)]
        )
        assert buffer.offer(("fine", "u", "a", 1, 1.0, None))
        await await_for(lambda: client.xlen(keys.exposures_stream("fine")), what="fine written")
        await await_for(
            lambda: isinstance(buffer.refusal("broken"), Unavailable), what="broken held back"
        )
        assert buffer.held("broken") == 50 and buffer.held("fine") == 0
        await client.delete(keys.exposures_stream("broken"))  # repaired: the retry succeeds
        await await_for(lambda: buffer.held("broken") == 0, what="broken written", timeout_s=10)
        assert await client.xlen(keys.exposures_stream("broken")) == 50
    finally:
        await buffer.stop()
        await close(client)


async def test_a_flush_writes_each_row_once_in_order(redis_url: str) -> None:
    client = await connect(RedisSettings(url=redis_url))
    buffer = ExposureBuffer(ExposureLog(client), flush_interval_s=0.001, max_pending=10_000)
    try:
        rows = [("exp", f"u{i}", "a", 3, 1_700_000_000.5 + i, {"k": i}) for i in range(1234)]
        for row in rows:
            assert buffer.offer(row)
        assert await buffer.flush() == 1234
        stream: Any = await client.xrange(keys.exposures_stream("exp"))
        assert [f["unit_id"] for _, f in stream] == [f"u{i}" for i in range(1234)]
        assert stream[5][1]["timestamp"] == "1700000005.500000"
        assert orjson.loads(stream[5][1]["attributes"]) == {"k": 5}
    finally:
        await close(client)


def test_an_integer_beyond_64_bits_is_refused_by_field(api: TestClient) -> None:
    """It could not be stored; answering it would drop its exposure."""
    launch(api, "big")
    body = b'{"experiment":"big","unit_id":"u","attributes":{"n":123456789012345678901234567890}}'
    response = api.post(
        "/v1/assign", content=body, headers={**CLIENT, "content-type": "application/json"}
    )
    assert response.status_code == 422
    assert [d["field"] for d in response.json()["error"]["details"]] == ["attributes.n"]


# --- POST /v1/exposures (the SDK's local mode) ------------------------------------------


def test_sdk_exposures_are_appended(api: TestClient, redis_sync: redis.Redis) -> None:
    launch(api, "local")
    body = {
        "exposures": [
            {
                "experiment": "local",
                "unit_id": "u1",
                "variant": "candidate",
                "version": 1,
                "timestamp": "2024-05-01T12:00:00.123Z",
            },
            {
                "experiment": "local",
                "unit_id": 7,
                "variant": "baseline",
                "version": 1,
                "timestamp": 1714564800.5,
                "attributes": {"country": "US"},
            },
            {
                "experiment": "local",
                "unit_id": "u3",
                "variant": "baseline",
                "version": 1,
                "timestamp": "2024-05-01T12:00:00",
            },
        ]
    }
    response = api.post("/v1/exposures", json=body, headers=CLIENT)
    assert response.status_code == 202 and response.json() == {"accepted": 3}
    entries = [f for _, f in _entries(redis_sync, "local")]
    assert [(f["unit_id"], f["variant"]) for f in entries] == [
        ("u1", "candidate"),
        ("7", "baseline"),
        ("u3", "baseline"),
    ]
    assert [float(f["timestamp"]) for f in entries] == [1714564800.123, 1714564800.5, 1714564800.0]
    assert orjson.loads(entries[1]["attributes"]) == {"country": "US"}


@pytest.mark.parametrize(
    ("exposure", "field"),
    [
        ({"experiment": "nope"}, "exposures.1.experiment"),
        ({"variant": "zzz"}, "exposures.1.variant"),
        ({"unit_id": ""}, "exposures.1.unit_id"),
        ({"timestamp": "yesterday"}, "exposures.1.timestamp"),
        ({"timestamp": -5}, "exposures.1.timestamp"),
        ({"version": 0}, "exposures.1.version"),
        ({"attributes": {"a": [1]}}, "exposures.1.attributes.a"),
        ({"extra": 1}, "exposures.1.extra"),
    ],
)
def test_bad_sdk_exposures_are_refused_whole(
    api: TestClient, redis_sync: redis.Redis, exposure: dict[str, object], field: str
) -> None:
    launch(api, "local")
    good = {
        "experiment": "local",
        "unit_id": "u1",
        "variant": "candidate",
        "version": 1,
        "timestamp": 1714564800,
    }
    body = {"exposures": [good, {**good, **exposure}]}
    response = api.post("/v1/exposures", json=body, headers=CLIENT)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_failed"
    assert [d["field"] for d in error["details"]] == [field]
    assert redis_sync.xlen(keys.exposures_stream("local")) == 0


def test_sdk_exposures_for_a_draft_are_refused(api: TestClient) -> None:
    api.post("/v1/experiments", json={"key": "d"}, headers=ADMIN)  # invalid: ignored
    launch(api, "local")
    body = {
        "exposures": [
            {
                "experiment": "local",
                "unit_id": "u",
                "variant": "x",
                "version": 1,
                "timestamp": 1714564800,
            }
        ]
        * 2
    }
    response = api.post("/v1/exposures", json=body, headers=CLIENT)
    assert [d["field"] for d in response.json()["error"]["details"]] == [
        "exposures.0.variant",
        "exposures.1.variant",
    ]


def record(spec: dict[str, Any]) -> ExperimentRecord:
    return ExperimentRecord(
        key=spec["key"],
        spec=parse_spec(spec),
        status="running",
        created_at=1.0,
        updated_at=1.0,
        started_at=1.0,
    )
