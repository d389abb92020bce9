"""Exposure logging: every in-experiment assignment lands in the stream exactly once, flushed in
the background and on graceful shutdown; a full buffer refuses and counts, never blocks."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
import pytest
import redis
from fastapi.testclient import TestClient

from service.app import create_app
from service.assignment import ExposureBuffer
from service.store import RedisSettings, close, connect, keys
from service.store.event_codec import exposure_event
from service.store.exposures import ExposureLog
from tests.assign._helpers import assign, assign_batch, launch, wait_until
from tests.conftest import ADMIN, CLIENT, make_settings

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
    wait_until(lambda: redis_sync.xlen(keys.exposures_stream("expo")) >= len(exposed))
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
    with TestClient(create_app(make_settings(redis_url, **SLOW_FLUSH))) as client:
        launch(client, "expo")
        exposed = _expected(client, "expo", n=20)  # quick: well within the 5 s flush interval
        assert len(exposed) == 40  # traffic 1.0: everyone is in
        assert redis_sync.xlen(keys.exposures_stream("expo")) == 0  # still buffered
    entries = _entries(redis_sync, "expo")
    assert len(entries) == 40
    assert {(f["unit_id"], f["variant"]) for _, f in entries} == exposed


def test_a_full_buffer_refuses_and_counts_without_blocking(
    redis_url: str, redis_sync: redis.Redis
) -> None:
    settings = make_settings(redis_url, exposure_buffer_max=100, **SLOW_FLUSH)
    with TestClient(create_app(settings)) as client:
        launch(client, "full")
        got = assign_batch(client, "full", UNITS[:150])
        assert len(got) == 150 and all(x["in_experiment"] for x in got)  # still answered
        stats = client.app.state.runtime.assigner.buffer.stats()  # type: ignore[attr-defined]
        assert (stats.accepted, stats.refused, stats.pending) == (100, 50, 100)
    assert redis_sync.xlen(keys.exposures_stream("full")) == 100


async def test_redis_down_keeps_rows_then_counts_them_lost(redis_url: str) -> None:
    """Nothing vanishes silently: rows that never reach Redis are counted as lost."""
    client = await connect(RedisSettings(url=redis_url))
    dead = redis.asyncio.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    buffer = ExposureBuffer(
        ExposureLog(dead), flush_interval_s=0.001, max_pending=100, shutdown_timeout_s=0.3
    )
    try:
        await buffer.start()
        offered = [buffer.offer(("exp", f"u{i}", "a", 1, time.time(), None)) for i in range(150)]
        assert offered.count(True) == 100 and offered.count(False) == 50
        await asyncio.sleep(0.1)  # flush attempts fail; rows stay queued
        assert buffer.stats().pending == 100
        await buffer.stop()
        stats = buffer.stats()
        assert (stats.accepted, stats.written, stats.refused, stats.lost) == (100, 0, 50, 100)
        assert not buffer.offer(("exp", "late", "a", 1, time.time(), None))  # closed
    finally:
        await dead.aclose()
        await close(client)


async def test_a_flush_after_a_failure_writes_each_row_once(redis_url: str) -> None:
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
