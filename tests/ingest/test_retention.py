"""Memory bounds: an ended experiment's state is deleted after the retention period (spec,
audit and journal kept; results say so rather than show zeros), and ``/metrics`` shows how
much memory Redis uses."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import numpy as np
import redis
from fastapi.testclient import TestClient

from service.settings import Settings
from service.store import keys
from service.worker import Aggregator
from tests.conftest import ADMIN, CLIENT, make_settings, running_app
from tests.ingest._helpers import FAST, aggregate, batches, make_events, make_units, spec

RETENTION_S = 3 * 3600
GRACE_S = 3600


def _state_keys(r: redis.Redis, key: str) -> list[str]:
    hours = [keys.aggregates_hour(key, int(h)) for h in r.smembers(keys.aggregate_hours(key))]
    names = [*keys.experiment_state(key, ["country", "device"]), *hours]
    return [name for name in names if r.exists(name)]


async def _sweep_at(settings: Settings, now: float) -> None:
    """One aggregator refresh as if the clock read ``now`` (the sweep runs in it)."""
    aggregator = Aggregator(settings, clock=lambda: now)
    await aggregator.start()
    try:
        await aggregator.refresh()
    finally:
        await aggregator.stop()


def test_an_ended_experiments_state_goes_after_retention(
    redis_url: str, redis_sync: redis.Redis
) -> None:
    settings = make_settings(
        redis_url, experiment_state_retention_s=RETENTION_S, event_grace_s=GRACE_S, **FAST
    )
    doc = spec("old-exp")
    rng = np.random.default_rng(4)
    with running_app(settings) as client:
        assert client.post("/v1/experiments", json=doc, headers=ADMIN).status_code == 201
        assert client.post("/v1/experiments/old-exp/start", headers=ADMIN).status_code == 200
        units = make_units(rng, 300)
        rows = [{"unit_id": u.unit_id, "attributes": u.attributes} for u in units[:100]]
        got = client.post(
            "/v1/assign/batch", json={"experiment": "old-exp", "units": rows}, headers=CLIENT
        )
        assert got.status_code == 200
        for chunk in batches(make_events(rng, "old-exp", units), 1000):
            sent = client.post("/v1/events", json={"events": chunk}, headers=CLIENT)
            assert sent.status_code == 202, sent.text
    asyncio.run(aggregate(settings, ["old-exp"]))
    with running_app(settings) as client:
        assert client.post("/v1/experiments/old-exp/stop", headers=ADMIN).status_code == 200
        before: dict[str, Any] = client.get("/v1/experiments/old-exp/results", headers=ADMIN).json()
        assert sum(before["units"].values()) == 300
    state = _state_keys(redis_sync, "old-exp")
    assert keys.units("old-exp") in state and len(state) > 8
    ended = time.time()

    # Until the retention period is over, nothing goes and results stay readable.
    asyncio.run(_sweep_at(settings, ended + RETENTION_S - 60))
    assert _state_keys(redis_sync, "old-exp") == state
    assert not redis_sync.exists(keys.state_deleted("old-exp"))

    asyncio.run(_sweep_at(settings, ended + RETENTION_S + 1))
    assert _state_keys(redis_sync, "old-exp") == []
    assert redis_sync.hget(keys.state_deleted("old-exp"), "done") == "1"
    with running_app(settings) as client:
        results = client.get("/v1/experiments/old-exp/results", headers=ADMIN)
        assert results.status_code == 410
        message = results.json()["error"]["message"]
        assert "deleted" in message and "/v1/journal/old-exp" in message
        # The spec, its audit trail and the journal entry (with the final results) stay.
        record = client.get("/v1/experiments/old-exp", headers=ADMIN).json()
        assert record["status"] == "stopped"
        assert [e["action"] for e in record["audit"]] == ["create", "start", "stop"]
        entry = client.get("/v1/journal/old-exp", headers=ADMIN).json()
        assert sum(entry["results"]["units"].values()) == 300


def test_metrics_show_redis_memory(api: TestClient, redis_sync: redis.Redis) -> None:
    redis_sync.set("ballast", "x" * 5_000_000)
    seen = {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in api.get("/metrics").text.splitlines()
        if line.startswith("sharpen_redis_memory_")
    }
    used = int(redis_sync.info("memory")["used_memory"])
    assert seen["sharpen_redis_memory_used_bytes"] >= 5_000_000
    assert abs(seen["sharpen_redis_memory_used_bytes"] - used) < 1_000_000
    assert seen["sharpen_redis_memory_peak_bytes"] >= seen["sharpen_redis_memory_used_bytes"]
    config: Any = redis_sync.config_get("maxmemory")
    assert seen["sharpen_redis_memory_limit_bytes"] == float(config["maxmemory"])
