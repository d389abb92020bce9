"""The aggregated sufficient statistics equal numpy's on the same events."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest
from fastapi.testclient import TestClient

from service.settings import Settings
from service.store import RedisSettings, close, connect
from service.store.exposures import ExposureLog
from sharpen.core import evaluate, parse_experiment
from tests.conftest import ADMIN, CLIENT, AppFactory, make_settings, running_app
from tests.ingest._helpers import (
    FAST,
    aggregate,
    assert_same,
    batches,
    make_events,
    make_units,
    observed,
    ok,
    read_cells,
    reference,
    spec,
)


@pytest.fixture
def ingest_settings(redis_url: str) -> Settings:
    return make_settings(redis_url, **FAST)


@pytest.fixture
def client(ingest_settings: Settings, make_api: AppFactory) -> TestClient:
    return make_api(ingest_settings)


def start(client: TestClient, doc: dict[str, object]) -> None:
    assert client.post("/v1/experiments", json=doc, headers=ADMIN).status_code == 201
    assert client.post(f"/v1/experiments/{doc['key']}/start", headers=ADMIN).status_code == 200


def post(client: TestClient, events: list[dict[str, object]], size: int = 700) -> None:
    for chunk in batches(events, size):
        response = client.post("/v1/events", json={"events": chunk}, headers=CLIENT)
        assert response.status_code == 202, response.text
        assert response.json() == ok(len(chunk))


def expose(settings: Settings, key: str, rows: list[tuple[str, str, dict[str, object]]]) -> None:
    async def run() -> None:
        assert settings.redis_url is not None
        redis = await connect(RedisSettings(settings.redis_url))
        try:
            now = time.time() - 3600
            result = await ExposureLog(redis).append(
                [(key, unit_id, variant, 1, now, attrs) for unit_id, variant, attrs in rows]
            )
            assert result.written == len(rows)
        finally:
            await close(redis)

    asyncio.run(run())


def test_unit_level_statistics_equal_numpy(client: TestClient, ingest_settings: Settings) -> None:
    rng = np.random.default_rng(7)
    doc = spec("units-exp")
    start(client, doc)
    units = make_units(rng, 400)
    with_events, exposure_only = units[:330], units[330:]
    events = make_events(rng, "units-exp", with_events, per_unit=(1, 10))
    # Exposures: units without events (they count with zeros), units that also have events,
    # and duplicates of both (a unit counts once).
    rows = [(u.unit_id, u.variant, u.attributes) for u in exposure_only + with_events[:40]]
    expose(ingest_settings, "units-exp", rows + rows[:25])
    post(client, events)
    asyncio.run(aggregate(ingest_settings, ["units-exp"]))
    cells = asyncio.run(read_cells(ingest_settings, "units-exp"))

    want = reference(doc, events, rows)
    assert_same(observed(cells), want)
    assert cells.units() == {
        v: sum(1 for u in units if u.variant == v) for v in ("baseline", "candidate")
    }
    # The hourly deltas add up to the totals.
    assert_same(observed(cells, hour=max(cells.hours)), want)


def test_hourly_prefix_sums_replay_the_past(client: TestClient, ingest_settings: Settings) -> None:
    rng = np.random.default_rng(11)
    doc = spec("hours-exp")
    start(client, doc)
    events = make_events(rng, "hours-exp", make_units(rng, 150), per_unit=(2, 12))
    post(client, events, size=300)
    asyncio.run(aggregate(ingest_settings, ["hours-exp"]))
    cells = asyncio.run(read_cells(ingest_settings, "hours-exp"))
    assert len(cells.hours) >= 4
    for hour in cells.hours:
        assert_same(observed(cells, hour=hour), reference(doc, events, until_hour=hour))


def test_request_level_statistics_equal_numpy(
    client: TestClient, ingest_settings: Settings
) -> None:
    rng = np.random.default_rng(3)
    doc = spec("req-exp", unit="request", segments=("country",))
    start(client, doc)
    units = make_units(rng, 2000, prefix="r")
    events = make_events(rng, "req-exp", units, per_unit=(1, 1))
    expose(ingest_settings, "req-exp", [(u.unit_id, u.variant, u.attributes) for u in units[:50]])
    post(client, events, size=1000)
    asyncio.run(aggregate(ingest_settings, ["req-exp"]))
    cells = asyncio.run(read_cells(ingest_settings, "req-exp"))
    # Exposures do not count in a request-level experiment: every event is its own unit.
    assert_same(observed(cells), reference(doc, events))


def test_segment_rows_go_to_the_largest_values(redis_url: str) -> None:
    """Two rows: the two values with the most units get them (not the first to arrive);
    the rest add up to ``__other__``."""
    settings = make_settings(redis_url, segment_max_values=2, **FAST)
    metrics = [{"name": "m", "kind": "mean", "value": "m", "role": "primary", "mde": 0.1}]
    doc = spec("fold-exp", segments=("country",), metrics=metrics)
    now = time.time() - 60
    events = [
        {
            "event_id": f"e{i}",
            "experiment": "fold-exp",
            "unit_id": f"u{i}",
            "variant": "baseline",
            "timestamp": now + i,
            "values": {"m": 1.0},
            "attributes": {"country": country},
        }
        for i, country in enumerate(["US", "CA", "DE", "FR", "US", "DE"])
    ]
    with running_app(settings) as client:
        start(client, doc)
        post(client, events)
    asyncio.run(aggregate(settings, ["fold-exp"]))
    cells = asyncio.run(read_cells(settings, "fold-exp"))
    by_value = {c.segment[1]: c.n for c in cells.totals() if c.segment is not None}
    assert by_value == {"US": 2, "DE": 2, "__other__": 2}
    assert cells.units() == {"baseline": 6}


def test_events_without_variant_use_the_sdk_assignment(
    client: TestClient, ingest_settings: Settings
) -> None:
    doc = spec("recompute-exp", traffic=0.5, segments=())
    start(client, doc)
    record = client.get("/v1/experiments/recompute-exp", headers=ADMIN).json()
    entry = parse_experiment(
        {
            "key": "recompute-exp",
            "version": record["version"],
            "status": "running",
            "salt": "recompute-exp",
            "variants": [{"key": v["key"], "weight": v["weight"]} for v in doc["variants"]],
            "baseline": "baseline",
            "traffic": 0.5,
        }
    )
    now = time.time() - 30
    events = [
        {
            "event_id": f"r{i}",
            "experiment": "recompute-exp",
            "unit_id": f"user-{i}",
            "timestamp": now,
            "values": {"revenue": 2.0},
        }
        for i in range(400)
    ]
    post(client, events)
    asyncio.run(aggregate(ingest_settings, ["recompute-exp"]))
    cells = asyncio.run(read_cells(ingest_settings, "recompute-exp"))
    assigned = [evaluate(entry, f"user-{i}") for i in range(400)]
    expected_units = {
        v: sum(1 for a in assigned if a.in_experiment and a.variant == v)
        for v in ("baseline", "candidate")
    }
    assert cells.units() == expected_units
    assert 100 < sum(expected_units.values()) < 300  # traffic 0.5 left some out
    revenue = {c.variant: c.sum for c in cells.totals() if c.metric == "revenue"}
    assert revenue == {v: 2.0 * n for v, n in expected_units.items()}
