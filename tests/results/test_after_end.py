"""After an experiment ends, late outcomes of its units still count; no new unit enters."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from service.settings import Settings
from tests._factories import simple_spec
from tests.conftest import ADMIN, CLIENT, AppFactory, make_settings
from tests.ingest._helpers import aggregate


def _event(i: str, unit: str, ts: float, converted: float) -> dict[str, object]:
    return {
        "event_id": i,
        "experiment": "exp-e",
        "unit_id": unit,
        "timestamp": ts,
        "values": {"converted": converted},
    }


def _primary(res: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = next(
        r for r in res["metrics"] if r["role"] == "primary" and r["segment"] is None
    )
    return row


def test_late_events_count_for_old_units_only(redis_url: str, make_api: AppFactory) -> None:
    # The aggregator runs between the steps, so it has read the end before the late events.
    settings: Settings = make_settings(redis_url)
    api = make_api(settings)
    assert api.post("/v1/experiments", json=simple_spec("exp-e"), headers=ADMIN).is_success
    assert api.post("/v1/experiments/exp-e/start", headers=ADMIN).is_success
    before = [_event(f"b{i}", f"u{i}", time.time(), 0.0) for i in range(40)]
    assert api.post("/v1/events", json={"events": before}, headers=CLIENT).is_success
    asyncio.run(aggregate(settings, ["exp-e"]))
    assert (
        sum(api.get("/v1/experiments/exp-e/results", headers=ADMIN).json()["units"].values()) == 40
    )
    assert api.post("/v1/experiments/exp-e/stop", headers=ADMIN).is_success
    later = time.time() + 1
    old = [_event(f"o{i}", f"u{i}", later, 1.0) for i in range(40)]
    new = [_event(f"n{i}", f"new{i}", later, 1.0) for i in range(40)]
    answer = api.post("/v1/events", json={"events": old + new}, headers=CLIENT)
    assert answer.status_code == 202, answer.text
    asyncio.run(aggregate(settings, ["exp-e"]))

    res = api.get("/v1/experiments/exp-e/results", headers=ADMIN).json()
    assert sum(res["units"].values()) == 40, "units that arrived after the end entered"
    row = _primary(res)
    assert row["baseline"]["mean"] == pytest.approx(1.0)
    assert row["treatment"]["mean"] == pytest.approx(1.0)
