"""Hostile ingestion input against a live server: what it costs, next to ordinary input.

Runs its own ``redis-server`` and one uvicorn process (``service.app:app_from_env``):

1. **colliding event ids**: ``--batches`` batches of ``--batch`` event ids that all share one
   dedup field of the fingerprint scheme used before issue 12 (unkeyed murmur3; found by
   ``loadtests/colliding_ids.py``, seeded), posted one after the other, against as many
   random ids (the reference, same run): the slowest request, and the longest single
   ``EVALSHA`` Redis ran (its SLOWLOG, which logs every command here).
2. **huge arrays**: ``{"events": [{} x 1,000,000]}`` (3 MB) and the same array of
   ``records``: the request's time, the answer's size, and the event-loop stall, i.e. the
   worst ``/healthz`` latency a probe saw meanwhile (pinging every 10 ms), against its
   worst latency while the server is idle (the reference).

Run it on an older checkout to compare (``git stash`` or a copy of the tree at a commit).

    .venv/bin/python -m loadtests.bench_hostile [--batches 6] [--batch 5000] [--quick]
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import orjson
import redis

from loadtests.bench_ingest import ADMIN, CLIENT, Server
from loadtests.colliding_ids import colliding_ids, old_field
from service.embedded import EmbeddedRedis

SPEC = {
    "key": "KEY",
    "variants": [{"key": "baseline", "weight": 50}, {"key": "candidate", "weight": 50}],
    "baseline": "baseline",
    "metrics": [
        {"name": "revenue", "kind": "mean", "value": "revenue", "role": "primary", "mde": 0.05}
    ],
}


class Probe:
    """Pings ``/healthz`` every ``interval_s`` from its own thread; ``worst()`` in a window."""

    def __init__(self, url: str, interval_s: float = 0.01) -> None:
        self.url = url
        self.interval_s = interval_s
        self.samples: list[tuple[float, float]] = []  # (sent at, latency)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Probe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=120) as http:
            while not self._stop.is_set():
                sent = time.monotonic()
                http.get("/healthz")
                self.samples.append((sent, time.monotonic() - sent))
                self._stop.wait(self.interval_s)

    def worst(self, start: float, end: float) -> float:
        """The longest probe that overlapped ``[start, end]`` (seconds)."""
        return max(
            (lat for sent, lat in self.samples if sent <= end and sent + lat >= start), default=0.0
        )


def _events(key: str, ids: Sequence[str]) -> list[dict[str, Any]]:
    now = time.time() - 5
    return [
        {
            "event_id": event_id,
            "experiment": key,
            "unit_id": f"u{i}",
            "variant": "candidate",
            "timestamp": now,
            "values": {"revenue": 1.0},
        }
        for i, event_id in enumerate(ids)
    ]


def _longest_evalsha_ms(r: redis.Redis) -> float:
    entries = r.slowlog_get(1_000_000)
    r.slowlog_reset()
    durations = [
        e["duration"] for e in entries if e["command"].split(b" ", 1)[0].upper() == b"EVALSHA"
    ]
    return max(durations, default=0) / 1000.0


def ids_run(
    http: httpx.Client, r: redis.Redis, key: str, ids: Sequence[str], batch: int
) -> tuple[float, float, int]:
    """(slowest request s, longest EVALSHA ms, events accepted) for ``ids`` in batches, in
    experiment ``key`` (its own: each run starts from an empty dedup hash)."""
    r.slowlog_reset()
    slowest, accepted = 0.0, 0
    for start in range(0, len(ids), batch):
        body = orjson.dumps({"events": _events(key, ids[start : start + batch])})
        began = time.perf_counter()
        headers = {**CLIENT, "Idempotency-Key": uuid.uuid4().hex}
        try:
            response = http.post(
                "/v1/events", content=body, headers={**headers, "content-type": "application/json"}
            )
        except httpx.HTTPError as exc:
            print(f"  batch at {start}: {exc!r}")
            continue
        finally:
            slowest = max(slowest, time.perf_counter() - began)
        if response.status_code == 202:
            accepted += int(response.json()["accepted"])
        else:
            print(f"  batch at {start}: HTTP {response.status_code} {response.text[:120]}")
    return slowest, _longest_evalsha_ms(r), accepted


def array_run(http: httpx.Client, probe: Probe, path: str, name: str) -> tuple[float, int, float]:
    """(request s, answer bytes, event-loop stall s) for ``{name: [{} x 1,000,000]}``."""
    body = b'{"' + name.encode() + b'":[' + b",".join([b"{}"] * 1_000_000) + b"]}"
    start = time.monotonic()
    response = http.post(path, content=body, headers={**CLIENT, "content-type": "application/json"})
    end = time.monotonic()
    time.sleep(0.1)  # the probe that was waiting comes back
    print(f"  {path}: HTTP {response.status_code}, {len(response.content):,} bytes")
    return end - start, len(response.content), probe.worst(start, end)


def main(argv: Sequence[str] | None = None) -> list[tuple[str, str, str, str]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=6)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--quick", action="store_true", help="2 batches of 1,000 ids")
    args = parser.parse_args(argv)
    if args.quick:
        args.batches, args.batch = 2, 1000
    count = args.batches * args.batch
    began = time.perf_counter()
    crafted = colliding_ids(count, seed=7)
    print(
        f"{count:,} ids sharing old dedup field {old_field(crafted[0])} found in "
        f"{time.perf_counter() - began:.1f} s"
    )
    random_ids = [uuid.uuid4().hex[:16] for _ in range(count)]
    rows: list[tuple[str, str, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="bench-hostile-") as tmp:
        work = Path(tmp)
        server_redis = EmbeddedRedis(work / "redis", appendfsync="everysec")
        server_redis.start()
        server: Server | None = None
        try:
            r = redis.Redis.from_url(server_redis.url)
            r.config_set("slowlog-log-slower-than", 0)
            r.config_set("slowlog-max-len", 1_000_000)
            server = Server(server_redis.url, work / "server.log")
            with httpx.Client(base_url=server.url, timeout=300) as http:
                for key in ("random", "crafted", "hostile"):
                    spec = {**SPEC, "key": key}
                    assert http.post("/v1/experiments", json=spec, headers=ADMIN).is_success
                    assert http.post(f"/v1/experiments/{key}/start", headers=ADMIN).is_success
                reference = ids_run(http, r, "random", random_ids, args.batch)
                hostile = ids_run(http, r, "crafted", crafted, args.batch)
                for what, (slow, evalsha, accepted) in (
                    ("random", reference),
                    ("colliding", hostile),
                ):
                    print(
                        f"{what} ids: {accepted:,} accepted, slowest request {slow:.3f} s, "
                        f"longest EVALSHA {evalsha:.1f} ms"
                    )
                with Probe(server.url) as probe:
                    time.sleep(1.0)
                    idle = probe.worst(0.0, time.monotonic())
                    events = array_run(http, probe, "/v1/events", "events")
                    records = array_run(http, probe, "/v1/models/hostile/records", "records")
            print(f"idle /healthz worst {idle * 1000:.1f} ms")
            for what, (took, size, stall) in (("events", events), ("records", records)):
                print(
                    f"1,000,000 {{}} {what}: request {took:.3f} s, answer {size:,} B, "
                    f"event-loop stall {stall * 1000:.0f} ms"
                )
        finally:
            if server is not None:
                server.stop()
            server_redis.stop()
    label = f"batch of {args.batch:,} ids sharing a dedup field ({count:,} in all)"
    rows.append(
        (
            f"{label}: slowest request (s) vs random ids",
            f"{hostile[0]:.3f}",
            f"{reference[0]:.3f}",
            f"{hostile[0] / max(reference[0], 1e-9):.2f}x",
        )
    )
    rows.append(
        (
            f"{label}: longest EVALSHA (ms) vs random ids",
            f"{hostile[1]:.1f}",
            f"{reference[1]:.1f}",
            f"{hostile[1] / max(reference[1], 1e-9):.2f}x",
        )
    )
    for what, (_, size, stall) in (("events", events), ("records", records)):
        rows.append(
            (
                f"1,000,000 {{}} {what}: event-loop stall (ms) vs idle probe; answer {size:,} B",
                f"{stall * 1000:.0f}",
                f"{idle * 1000:.1f}",
                f"{stall / max(idle, 1e-9):.1f}x",
            )
        )
    return rows


if __name__ == "__main__":
    for row in main():
        print(" | ".join(row))
