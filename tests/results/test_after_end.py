"""After an experiment ends, late outcomes of its units still count; no new unit enters."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from tests.conftest import ADMIN, CLIENT, make_settings
from tests.foundation.spec_factory import simple_spec


@pytest.fixture
def worker_api(redis_url: str) -> Iterator[TestClient]:
    settings = make_settings(redis_url, run_worker=True, aggregator_block_ms=20)
    with TestClient(create_app(settings)) as client:
        yield client


def _event(i: str, unit: str, ts: float, converted: float) -> dict[str, object]:
    return {
        "event_id": i,
        "experiment": "exp-e",
        "unit_id": unit,
        "timestamp": ts,
        "values": {"converted": converted},
    }


def _results_when(
    api: TestClient, done: Callable[[dict[str, Any]], bool], timeout_s: float = 20
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        res: dict[str, Any] = api.get("/v1/experiments/exp-e/results", headers=ADMIN).json()
        if done(res) or time.monotonic() > deadline:
            return res


def _primary(res: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = next(
        r for r in res["metrics"] if r["role"] == "primary" and r["segment"] is None
    )
    return row


def test_late_events_count_for_old_units_only(worker_api: TestClient) -> None:
    worker_api.post("/v1/experiments", json=simple_spec("exp-e"), headers=ADMIN)
    worker_api.post("/v1/experiments/exp-e/start", headers=ADMIN)
    before = [_event(f"b{i}", f"u{i}", time.time(), 0.0) for i in range(40)]
    assert worker_api.post("/v1/events", json={"events": before}, headers=CLIENT).is_success
    _results_when(worker_api, lambda r: sum(r["units"].values()) == 40)
    assert worker_api.post("/v1/experiments/exp-e/stop", headers=ADMIN).is_success
    time.sleep(1.0)  # the aggregator learns of the end through the config channel
    later = time.time() + 1
    old = [_event(f"o{i}", f"u{i}", later, 1.0) for i in range(40)]
    new = [_event(f"n{i}", f"new{i}", later, 1.0) for i in range(40)]
    answer = worker_api.post("/v1/events", json={"events": old + new}, headers=CLIENT)
    assert answer.status_code == 202, answer.text

    def counted(res: dict[str, Any]) -> bool:
        row = _primary(res)
        total = row["baseline"]["mean"] * row["baseline"]["units"] + (
            row["treatment"]["mean"] * row["treatment"]["units"]
        )
        return bool(total >= 40)

    res = _results_when(worker_api, counted)
    assert sum(res["units"].values()) == 40, "units that arrived after the end entered"
    row = _primary(res)
    assert row["baseline"]["mean"] == pytest.approx(1.0)
    assert row["treatment"]["mean"] == pytest.approx(1.0)
