"""`analysis.look_every`: looks at the spec's cadence, from cells as wide as it, replayed the
same way by every reader; the aggregator writes those cells; bad cadences are a 422."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
import redis
from fastapi.testclient import TestClient

from service.app import create_app
from service.results import build_results, spec_plan
from service.spec import ExperimentRecord, parse_spec
from service.store import keys
from tests._factories import simple_spec
from tests._wait import wait_for
from tests.conftest import ADMIN, CLIENT, make_settings
from tests.results.cellgen import Units, to_cells

DAY = 86_400
MIDNIGHT = 1_750_032_000  # a UTC midnight
FIVE_MIN = 300


def _spec(look_every: str | int | None) -> dict[str, Any]:
    spec = simple_spec("exp-cadence")
    spec["metrics"][0].update(mde=0.2, baseline_mean=0.3)
    spec["analysis"] = {"design": "group_sequential", "looks": 2, "min_days": 0}
    if look_every is not None:
        spec["analysis"]["look_every"] = look_every
    return spec


def _record(spec: dict[str, Any]) -> ExperimentRecord:
    return ExperimentRecord(
        key=spec["key"],
        version=1,
        status="running",
        spec=parse_spec(spec),
        created_at=MIDNIGHT - DAY,
        updated_at=MIDNIGHT - DAY,
        started_at=MIDNIGHT - DAY,
    )


def _planted(planned: int, width: int) -> Units:
    """A/A: 60% of the plan per variant at 00:10, the rest (and a little more) at 01:01, so
    the plan is reached one minute past the hour. Cells ``width`` seconds wide."""
    rng = np.random.default_rng(17)
    units = Units()
    for at, count in ((MIDNIGHT + 600, int(0.6 * planned)), (MIDNIGHT + 3660, planned // 2)):
        for variant in ("control", "treatment"):
            for _ in range(count):
                units.add(
                    variant, at // width, {}, {"conversion": (float(rng.random() < 0.3), 0.0)}
                )
    return units


def _looks(spec: dict[str, Any], now: float) -> list[dict[str, Any]]:
    record = _record(spec)
    width = record.spec.analysis.cell_seconds
    planned = spec_plan(record.spec)["units_per_variant"]
    cells = replace(to_cells(spec["key"], _planted(planned, width), []), cell_seconds=width)
    looks: list[dict[str, Any]] = build_results(record, cells, now)["sequential"][0]["looks"]
    return looks


def test_a_plan_reached_at_one_past_the_hour_decides_within_five_minutes() -> None:
    five = _spec("5m")
    assert [lk["hour"] for lk in _looks(five, MIDNIGHT + 3600 + 299)] == [MIDNIGHT + 600]
    decided = _looks(five, MIDNIGHT + 3600 + FIVE_MIN)
    assert [lk["hour"] for lk in decided] == [MIDNIGHT + 600, MIDNIGHT + 3600]
    hourly = _spec(None)
    assert [lk["hour"] for lk in _looks(hourly, MIDNIGHT + 3600 + FIVE_MIN)] == [MIDNIGHT]
    assert len(_looks(hourly, MIDNIGHT + 7200)) == 2, "the default waits for the whole hour"


def test_cadences_longer_than_an_hour_look_on_their_own_windows() -> None:
    spec = _spec("6h")
    assert _looks(spec, MIDNIGHT + 5 * 3600) == [], "the 00:00-06:00 window is still open"
    looks = _looks(spec, MIDNIGHT + 6 * 3600)
    assert [lk["hour"] for lk in looks] == [MIDNIGHT], "both looks fall in the first window"


def test_replaying_the_looks_gives_the_same_looks() -> None:
    spec = _spec("5m")
    first = _looks(spec, MIDNIGHT + 2 * 3600)
    again = _looks(spec, MIDNIGHT + 2 * 3600)
    later = _looks(spec, MIDNIGHT + 9 * 3600)
    assert first == again == later and len(first) == 2


@pytest.fixture
def worker_api(redis_url: str) -> Iterator[TestClient]:
    settings = make_settings(redis_url, run_worker=True, aggregator_block_ms=20)
    with TestClient(create_app(settings)) as client:
        yield client


def test_the_aggregator_writes_cells_at_the_cadence(worker_api: TestClient, redis_url: str) -> None:
    spec = _spec("5m")
    spec["metrics"][0].update(mde=1.0)
    key = spec["key"]
    assert worker_api.post("/v1/experiments", json=spec, headers=ADMIN).status_code == 201
    assert worker_api.post(f"/v1/experiments/{key}/start", headers=ADMIN).status_code == 200
    planned = spec_plan(parse_spec(spec))["units_per_variant"]
    now = time.time()
    rng = np.random.default_rng(3)
    moments = (now - 1800, now - 900)  # two completed five-minute windows
    events = [
        {
            "event_id": f"e{phase}-{i}",
            "experiment": key,
            "unit_id": f"u{phase}-{i}",
            "variant": "control" if i % 2 else "treatment",
            "timestamp": at,
            "values": {"converted": float(rng.random() < 0.3)},
        }
        for phase, at in enumerate(moments)
        for i in range(2 * math.ceil(0.6 * planned))
    ]
    assert worker_api.post("/v1/events", json={"events": events}, headers=CLIENT).status_code == 202

    def results() -> dict[str, Any] | None:
        res: dict[str, Any] = worker_api.get(f"/v1/experiments/{key}/results", headers=ADMIN).json()
        return res if sum(res["units"].values()) == len(events) else None

    res = wait_for(results, what="every unit aggregated")
    picture = res["sequential"][0]
    assert picture["look_every_s"] == FIVE_MIN
    starts = [int(at // FIVE_MIN) * FIVE_MIN for at in moments]
    assert [lk["hour"] for lk in picture["looks"]] == starts
    again = wait_for(results, what="the same results again")["sequential"][0]["looks"]
    assert again == picture["looks"]
    assert all(point["hour"] % 3600 == 0 for point in res["timeline"]), "the timeline is hourly"
    stored = redis.Redis.from_url(redis_url, decode_responses=True)
    cells = {int(h) for h in stored.smembers(keys.aggregate_hours(key))}
    assert cells == {int(at // FIVE_MIN) for at in moments}


@pytest.mark.parametrize("cadence", ["4m", "7m", "90m", "5h", "2d"])
def test_a_cadence_that_does_not_tile_time_is_a_422(worker_api: TestClient, cadence: str) -> None:
    spec = _spec(cadence)
    answer = worker_api.post("/v1/experiments", json=spec, headers=ADMIN)
    assert answer.status_code == 422, answer.text
    fields = [d["field"] for d in answer.json()["error"]["details"]]
    assert fields == ["analysis.look_every"], fields
    assert "5m" in answer.text


@pytest.mark.parametrize("cadence", ["5m", "10m", "1h", "2h", "1d", 900])
def test_accepted_cadences(cadence: str | int) -> None:
    assert parse_spec(_spec(cadence)).analysis.look_every in (300, 600, 900, 3600, 7200, DAY)
