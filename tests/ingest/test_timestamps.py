"""One timestamp reader: events, SDK exposures and stored stream entries read a timestamp
the same way, with the same bounds (``service.store.event_codec.epoch_seconds``)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient

from service.app import create_app
from service.store import keys
from service.store.event_codec import LATEST_EPOCH, epoch_seconds, exposure_event
from tests.conftest import ADMIN, CLIENT, make_settings
from tests.ingest._helpers import spec

NOW = time.time()
_ISO = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(NOW - 60))

# (the timestamp as sent, its epoch seconds or None when every entry point refuses it)
CASES: list[tuple[Any, float | None]] = [
    (NOW - 5, NOW - 5),
    (int(NOW - 5), float(int(NOW - 5))),
    (_ISO + "Z", float(int(NOW - 60))),
    (_ISO, float(int(NOW - 60))),  # naive: UTC
    (_ISO + ".250+00:00", int(NOW - 60) + 0.25),
    (time.strftime("%Y-%m-%dT%H:%M:%S+02:00", time.gmtime(NOW - 60 + 7200)), float(int(NOW - 60))),
    ("yesterday", None),
    ("", None),
    (-1, None),
    (0, None),
    ("1969-12-31T23:59:59Z", None),
    (LATEST_EPOCH, None),
    (1e300, None),
]


@pytest.fixture
def client(redis_url: str) -> Iterator[TestClient]:
    # A window wide enough for every readable case: only the reader decides here.
    settings = make_settings(redis_url, event_max_age_s=86_400, event_max_future_s=3600)
    with TestClient(create_app(settings)) as c:
        assert c.post("/v1/experiments", json=spec("ts"), headers=ADMIN).status_code == 201
        assert c.post("/v1/experiments/ts/start", headers=ADMIN).status_code == 200
        yield c


@pytest.mark.parametrize(("raw", "expected"), CASES)
def test_the_reader(raw: Any, expected: float | None) -> None:
    got = epoch_seconds(raw)
    assert got == pytest.approx(expected) if expected is not None else got is None


def test_events_and_exposures_agree(client: TestClient, redis_sync: redis.Redis) -> None:
    events = [
        {
            "event_id": f"ev-{i}",
            "experiment": "ts",
            "unit_id": f"u{i}",
            "variant": "candidate",
            "timestamp": raw,
            "values": {"revenue": 1.0},
        }
        for i, (raw, _) in enumerate(CASES)
    ]
    answer = client.post("/v1/events", json={"events": events}, headers=CLIENT)
    assert answer.status_code == 202, answer.text
    refused_events = {d["index"] for d in answer.json()["rejected"]}
    assert all(d["field"].endswith(".timestamp") for d in answer.json()["rejected"])
    refused_exposures = set()
    for i, (raw, _) in enumerate(CASES):
        exposure = {
            "experiment": "ts",
            "unit_id": f"u{i}",
            "variant": "candidate",
            "version": 1,
            "timestamp": raw,
        }
        response = client.post("/v1/exposures", json={"exposures": [exposure]}, headers=CLIENT)
        if response.status_code == 422:
            assert "exposures.0.timestamp" in response.text
            refused_exposures.add(i)
        else:
            assert response.status_code == 202, response.text
    expected_refused = {i for i, (_, parsed) in enumerate(CASES) if parsed is None}
    assert refused_events == expected_refused
    assert refused_exposures == expected_refused

    entries: list[tuple[str, dict[str, str]]] = redis_sync.xrange(  # type: ignore[assignment]
        keys.exposures_stream("ts")
    )
    stored = [dict(f) for _, f in entries]
    readable = [parsed for _, parsed in CASES if parsed is not None]
    assert [float(f["timestamp"]) for f in stored] == pytest.approx(readable)
    for fields in stored:  # the aggregator reads back what was written
        event = exposure_event("1-0", fields, (), 64)
        assert event is not None and event.ts == pytest.approx(float(fields["timestamp"]))
