"""Measure Redis memory per unit, per event and per experiment on a real redis-server.

    .venv/bin/python scripts/measure_memory.py [--units 100000] [--events 200000] [--seed 7]

One embedded redis-server (AOF on), the service in-process (no worker), one experiment
like ``examples/fraud-v7.yaml`` (2 variants, 4 metrics, 2 segments). It assigns
``--units`` units through ``/v1/assign/batch`` (each exposure is a stream entry), posts
``--events`` events through ``/v1/events``, reads every key's ``MEMORY USAGE`` (exact:
``SAMPLES 0``) before and after aggregation, and prints bytes per unit, per event and per
experiment. Twice: with short unit ids (``user-123456``) and with 64-character ones.
The figures in docs/operations.md come from this script.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import redis
from fastapi.testclient import TestClient

from service.app import create_app
from service.embedded import EmbeddedRedis
from service.settings import Settings
from service.store import AggregationStore, RedisSettings, close, connect, keys
from service.worker import Aggregator

ADMIN_KEY, CLIENT_KEY = "measure-admin-0001", "measure-client-001"
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
CLIENT = {"Authorization": f"Bearer {CLIENT_KEY}", "Content-Type": "application/json"}
COUNTRIES = ["US", "DE", "FR", "GB", "BR", "IN", "JP", "CA", "MX", "ES"]
DEVICES = ["mobile", "desktop", "tablet"]


def _spec(key: str) -> dict[str, Any]:
    return {
        "key": key,
        "variants": [{"key": "baseline", "weight": 1}, {"key": "candidate", "weight": 1}],
        "baseline": "baseline",
        "segments": ["country", "device"],
        "metrics": [
            {"name": "precision", "kind": "proportion", "value": "true_positive",
             "role": "primary", "mde": 0.02},
            {"name": "recall", "kind": "mean", "value": "recall", "role": "guardrail",
             "margin": 0.02},
            {"name": "latency_ms", "kind": "mean", "value": "latency_ms", "role": "guardrail",
             "direction": "decrease", "margin": 0.1},
            {"name": "ctr", "kind": "ratio", "numerator": "clicks", "denominator": "views"},
        ],
    }  # fmt: skip


@dataclass
class Figures:
    unit_state: float
    exposure_entry: float
    event_entry: float
    event_dedup: float
    cells: int
    hour_cells: float
    experiment_fixed: int
    segment_ranking: int
    used_per_unit: float


def _usage(r: redis.Redis, name: str) -> int:
    value = r.execute_command("MEMORY", "USAGE", name, "SAMPLES", "0")
    return int(value or 0)


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _post(client: TestClient, path: str, body: Any) -> Any:
    """POST, honouring 429/503 + Retry-After as a client must."""
    while True:
        answer = client.post(path, content=orjson.dumps(body), headers=CLIENT)
        if answer.status_code not in (429, 503):
            return answer
        time.sleep(float(answer.headers.get("retry-after", "1")) / 10)


def _aggregate(settings: Settings, key: str) -> None:
    async def run() -> None:
        assert settings.redis_url is not None
        aggregator = Aggregator(settings)
        await aggregator.start()
        client = await connect(RedisSettings(settings.redis_url))
        try:
            store = AggregationStore(client)
            while True:
                stats = await store.stream_stats(key)
                if (
                    stats.backlog_events == 0
                    and stats.events_pending == 0
                    and stats.exposures_pending == 0
                    and not stats.exposures_undelivered
                    and not stats.events_undelivered
                ):
                    return
                await asyncio.sleep(0.2)
        finally:
            await close(client)
            await aggregator.stop()

    asyncio.run(run())


def measure(url: str, key: str, units: int, events: int, id_chars: int, seed: int) -> Figures:
    rng = np.random.default_rng(seed)
    r = redis.Redis.from_url(url, decode_responses=True)
    settings = Settings(
        redis_url=url,
        admin_keys=[f"m={ADMIN_KEY}"],
        client_keys=[f"m={CLIENT_KEY}"],
        run_worker=False,
        aggregator_block_ms=20,
        config_poll_interval_s=0.05,
    )
    ids = [f"user-{i:0{max(id_chars - 5, 6)}d}" for i in range(units)]
    fixed_before = int(r.info("memory")["used_memory"])
    with TestClient(create_app(settings)) as client:
        assert client.post("/v1/experiments", json=_spec(key), headers=ADMIN).status_code == 201
        assert client.post(f"/v1/experiments/{key}/start", headers=ADMIN).status_code == 200
        fixed = sum(
            _usage(r, name)
            for name in (keys.experiment(key), keys.audit(key), keys.spec_versions(key))
        )
        countries = rng.choice(COUNTRIES, units)
        devices = rng.choice(DEVICES, units)
        for chunk in _chunks(list(range(units)), 1000):
            body = {
                "experiment": key,
                "units": [
                    {
                        "unit_id": ids[i],
                        "attributes": {"country": countries[i], "device": devices[i]},
                    }
                    for i in chunk
                ],
            }
            answer = _post(client, "/v1/assign/batch", body)
            assert answer.status_code == 200, answer.text
        start = time.time() - 3 * 3600
        owners = rng.integers(0, units, events)
        stamps = start + np.sort(rng.uniform(0, 3 * 3600, events))
        batch: list[dict[str, Any]] = []
        for n in range(events):
            i = int(owners[n])
            batch.append(
                {
                    "event_id": f"{key}-{n}",
                    "experiment": key,
                    "unit_id": ids[i],
                    "timestamp": float(stamps[n]),
                    "values": {
                        "true_positive": int(rng.random() < 0.3),
                        "recall": float(rng.random()),
                        "latency_ms": float(rng.gamma(2.0, 40.0)),
                        "clicks": int(rng.integers(0, 3)),
                        "views": int(rng.integers(1, 4)),
                    },
                    "attributes": {"country": str(countries[i]), "device": str(devices[i])},
                }
            )
            if len(batch) == 5000:
                sent = _post(client, "/v1/events", {"events": batch})
                assert sent.status_code == 202, sent.text
                batch = []
        if batch:
            sent = _post(client, "/v1/events", {"events": batch})
            assert sent.status_code == 202, sent.text
    exposures_entry = _usage(r, keys.exposures_stream(key)) / units
    events_entry = _usage(r, keys.events_stream(key)) / events
    dedup = _usage(r, keys.event_ids(key)) / events
    _aggregate(settings, key)
    hours = [keys.aggregates_hour(key, int(h)) for h in r.smembers(keys.aggregate_hours(key))]
    ranking = _usage(r, keys.segment_state(key)) + sum(
        _usage(r, keys.segment_ranked(key, s)) + _usage(r, keys.segment_candidates(key, s))
        for s in ("country", "device")
    )
    figures = Figures(
        unit_state=_usage(r, keys.units(key)) / units,
        exposure_entry=exposures_entry,
        event_entry=events_entry,
        event_dedup=dedup,
        cells=_usage(r, keys.aggregates(key)),
        hour_cells=sum(_usage(r, h) for h in hours) / max(len(hours), 1),
        experiment_fixed=fixed,
        segment_ranking=ranking,
        used_per_unit=(int(r.info("memory")["used_memory"]) - fixed_before) / units,
    )
    r.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--units", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="measure-memory-") as tmp:
        server = EmbeddedRedis(Path(tmp) / "redis")
        server.start()
        try:
            for key, chars in (("short-ids", 11), ("long-ids", 64)):
                rows.append(
                    (
                        key,
                        chars,
                        measure(server.url, key, args.units, args.events, chars, args.seed),
                    )
                )
        finally:
            server.stop()
    print(f"{args.units:,} units, {args.events:,} events, 2 variants x 4 metrics x 2 segments")
    print(f"{'':34}" + "".join(f"{f'{chars}-char ids':>18}" for _, chars, _ in rows))
    labels = [
        ("unit state (units hash), B/unit", "unit_state"),
        ("exposure stream entry, B", "exposure_entry"),
        ("events stream, B/event", "event_entry"),
        ("event-id dedup window, B/event", "event_dedup"),
        ("all-time cells (agg hash), B", "cells"),
        ("one hour of cells, B (mean)", "hour_cells"),
        ("spec + audit + versions, B", "experiment_fixed"),
        ("segment ranking state, B", "segment_ranking"),
        ("used_memory growth, B/unit", "used_per_unit"),
    ]
    for label, name in labels:
        print(f"{label:34}" + "".join(f"{getattr(f, name):>18,.0f}" for _, _, f in rows))


if __name__ == "__main__":
    main()
