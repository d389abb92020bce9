"""Outcome ingestion and aggregation: events/s, lag from 202 to counted, dedup memory.

Everything runs against its own ``redis-server`` (AOF, ``appendfsync everysec``, the
embedded default) and a real uvicorn subprocess (one worker, ``service.app:app_from_env``):

1. **raw XADD**: one stream entry per event (a ~200-byte event), pipelined 1,000 at a time,
   from a Python client (redis-py, one connection) and from ``redis-benchmark`` (C, 50
   connections): what Redis alone takes on this machine, the references for 2.
2. **ingest**: ``POST /v1/events`` with 1,000-event batches, each with its own
   ``Idempotency-Key`` as the SDK sends them, closed loop (``--concurrency`` requests in
   flight), no worker running: events/s accepted (validated, deduplicated by event id,
   appended) and the request latency.
3. **aggregate**: one ``sharpen worker`` process drains what 2 appended: events/s per
   worker, for a request-level and a user-level experiment (4 metrics, 2 segments).
4. **lag**: open loop at ``--rate`` events/s (1,000-event batches on a fixed schedule)
   with one worker running: p50/p99 from a batch's 202 to the moment the aggregator's
   counters include it.
5. **dedup memory**: bytes per remembered event id in the packed hash (1M ids through the
   ingest script), against one ``SET id 1 NX EX`` key per id.

Persistence is part of the cost: each accepted event writes about 200 bytes to the AOF
(the event itself, its dedup fingerprint entry, counters). On a shared 2-vCPU machine the
same ingest run measured 47k events/s with the AOF and 80k without, back to back.

    .venv/bin/python -m loadtests.bench_ingest [--duration 8] [--rate 50000] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import redis

from service.embedded import EmbeddedRedis, free_port
from service.store import EventStore, RedisSettings, StoredEvent, close, connect, keys

ADMIN_KEY = "bench-admin-key-0001"
CLIENT_KEY = "bench-client-key-0001"
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
CLIENT = {"Authorization": f"Bearer {CLIENT_KEY}"}
BATCH = 1000
METRICS = [
    {"name": "revenue", "kind": "mean", "value": "revenue", "role": "primary", "mde": 0.05},
    {"name": "converted", "kind": "proportion", "value": "converted"},
    {"name": "ctr", "kind": "ratio", "numerator": "clicks", "denominator": "views"},
    {
        "name": "latency_ms",
        "kind": "mean",
        "value": "latency_ms",
        "role": "guardrail",
        "direction": "decrease",
        "margin": 0.1,
    },
]


def _spec(key: str, unit: str) -> dict[str, Any]:
    return {
        "key": key,
        "unit": unit,
        "variants": [{"key": "baseline", "weight": 50}, {"key": "candidate", "weight": 50}],
        "baseline": "baseline",
        "segments": ["country", "device"],
        "metrics": METRICS,
    }


class Bodies:
    """Request bodies of ``BATCH`` distinct events each: ``templates`` bodies are built once,
    and body ``i`` is template ``i % templates`` with a per-body token in every event id."""

    TOKEN = b"@@@@@@@@"

    def __init__(self, key: str, count: int, units: int, seed: int, templates: int = 100) -> None:
        rng = np.random.default_rng(seed)
        now = datetime.now(UTC).isoformat(timespec="milliseconds").removesuffix("+00:00") + "Z"
        countries, devices = ["US", "CA", "DE", "FR", "GB"], ["mobile", "desktop", "tablet"]
        self.count = count
        self.templates: list[bytes] = []
        run = uuid.uuid4().hex[:8]  # event ids unique to this set of bodies
        for t in range(templates):
            unit_ids = rng.integers(0, units, BATCH)
            revenue = np.round(rng.exponential(20.0, BATCH), 2)
            latency = rng.integers(5, 500, BATCH)
            events = [
                {
                    "event_id": f"{run}{self.TOKEN.decode()}{t:08x}{i:016x}",
                    "experiment": key,
                    "unit_id": f"u{u}",
                    "variant": "baseline" if u % 2 else "candidate",
                    "timestamp": now,
                    "values": {
                        "revenue": float(revenue[i]),
                        "converted": int(revenue[i] > 25),
                        "clicks": int(u % 3 == 0),
                        "views": 1,
                        "latency_ms": int(latency[i]),
                    },
                    "attributes": {"country": countries[u % 5], "device": devices[u % 3]},
                }
                for i, u in enumerate(unit_ids.tolist())
            ]
            self.templates.append(orjson.dumps({"events": events}))

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, i: int) -> bytes:
        if not 0 <= i < self.count:
            raise IndexError(i)
        template = self.templates[i % len(self.templates)]
        return template.replace(self.TOKEN, b"%08x" % i)


def _die_with_parent() -> None:
    """Linux: the child gets SIGTERM when the bench dies, killed or not."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class Server:
    """``uvicorn service.app:app_from_env`` in a subprocess (one worker, no in-process worker)."""

    def __init__(self, redis_url: str, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "SHARPEN_REDIS_URL": redis_url,
            "SHARPEN_ADMIN_KEYS": f"bench={ADMIN_KEY}",
            "SHARPEN_CLIENT_KEYS": f"bench={CLIENT_KEY}",
            "SHARPEN_RUN_WORKER": "false",
            "SHARPEN_INGEST_MAX_BACKLOG": "50000000",
            "SHARPEN_LOG_LEVEL": "warning",
        }
        args = [
            sys.executable,
            "-m",
            "uvicorn",
            "service.app:app_from_env",
            "--factory",
            "--port",
            str(self.port),
            "--log-level",
            "warning",
            "--no-access-log",
        ]
        self.process = subprocess.Popen(
            args,
            env=env,
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=0.5).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError(f"server did not start: {log.read_text()[-2000:]}")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()


class Worker:
    """``sharpen worker`` in a subprocess."""

    def __init__(self, redis_url: str, log: Path) -> None:
        env = {**os.environ, "SHARPEN_REDIS_URL": redis_url, "SHARPEN_AGGREGATOR_BLOCK_MS": "20"}
        sharpen = str(Path(sys.executable).parent / "sharpen")
        self.process = subprocess.Popen(
            [sharpen, "worker", "--log-level", "warning"],
            env=env,
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()


def _counter(r: redis.Redis, key: str, name: str) -> int:
    return int(r.hget(keys.aggregation_meta(key), name) or 0)


# --- 1. raw XADD ---------------------------------------------------------------------------


def raw_xadd(url: str, seconds: float) -> float:
    r = redis.Redis.from_url(url)
    payload = orjson.dumps(orjson.loads(Bodies("raw", 1, 1000, 0, templates=1)[0])["events"][0])
    stream = "bench:raw"
    sent = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        with r.pipeline(transaction=False) as pipe:
            for _ in range(BATCH):
                pipe.xadd(stream, {"d": payload})
            pipe.execute()
        sent += BATCH
    elapsed = time.perf_counter() - start
    r.delete(stream)
    r.close()
    return sent / elapsed


def raw_xadd_c(port: int, requests: int) -> float | None:
    """XADD/s from ``redis-benchmark`` (50 connections, pipelined 1,000), if installed."""
    binary = shutil.which("redis-benchmark")
    if binary is None:
        return None
    payload = orjson.dumps(orjson.loads(Bodies("raw", 1, 1000, 0, templates=1)[0])["events"][0])
    args = [binary, "-p", str(port), "-n", str(requests), "-P", "1000", "--csv"]
    out = (
        subprocess.run(
            [*args, "XADD", "bench:rawc", "*", "d", payload.decode()],
            capture_output=True,
            text=True,
            timeout=300,
        )
        .stdout.strip()
        .splitlines()
    )
    redis.Redis(port=port).delete("bench:rawc")
    # The test name is not CSV-escaped; the numbers are the last seven fields.
    return float(out[-1].rsplit(",", 7)[1].strip('"')) if out else None


async def _post(http: httpx.AsyncClient, body: bytes, headers: dict[str, str]) -> httpx.Response:
    """POST a batch, resending it (same Idempotency-Key) on a dropped keep-alive connection,
    as the SDK does."""
    for attempt in range(5):
        try:
            return await http.post("/v1/events", content=body, headers=headers)
        except httpx.TransportError:
            if attempt == 4:
                raise
    raise AssertionError("unreachable")


# --- 2. ingest -----------------------------------------------------------------------------


async def ingest(
    url: str, bodies: Bodies, seconds: float, concurrency: int
) -> tuple[float, list[float], int]:
    """Closed loop: events/s, request latencies (s), events accepted."""
    latencies: list[float] = []
    accepted = 0
    index = 0
    start = time.perf_counter()
    headers = {**CLIENT, "content-type": "application/json"}

    async def one(http: httpx.AsyncClient) -> None:
        nonlocal index, accepted
        while time.perf_counter() - start < seconds and index < len(bodies):
            body = bodies[index]
            index += 1
            t0 = time.perf_counter()
            once = {**headers, "Idempotency-Key": uuid.uuid4().hex}
            response = await _post(http, body, once)
            latencies.append(time.perf_counter() - t0)
            if response.status_code != 202:
                raise RuntimeError(f"{response.status_code}: {response.text[:300]}")
            accepted += int(response.json()["accepted"])

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as http:
        await asyncio.gather(*(one(http) for _ in range(concurrency)))
    elapsed = time.perf_counter() - start
    return accepted / elapsed, latencies, accepted


# --- 3. aggregate --------------------------------------------------------------------------


def aggregate(redis_url: str, key: str, expected: int, log: Path) -> float:
    """Events/s of one worker draining ``expected`` events (from its first applied batch)."""
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    before = _counter(r, key, "aggregated")
    worker = Worker(redis_url, log)
    try:
        first: tuple[float, int] | None = None
        while True:
            done = _counter(r, key, "aggregated") - before
            now = time.perf_counter()
            if first is None and done > 0:
                first = (now, done)
            if done >= expected:
                break
            if worker.process.poll() is not None:
                raise RuntimeError(f"worker exited: {log.read_text()[-2000:]}")
            time.sleep(0.005)
        assert first is not None
        if now == first[0]:
            return float("nan")
        return (done - first[1]) / (now - first[0])
    finally:
        worker.stop()
        r.close()


# --- 4. lag --------------------------------------------------------------------------------


async def lag(
    url: str, redis_url: str, key: str, bodies: Bodies, rate: float, log: Path
) -> tuple[list[float], float]:
    """Open loop at ``rate`` events/s with one worker: 202-to-counted lags (s), achieved rate."""
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    base = _counter(r, key, "aggregated")
    worker = Worker(redis_url, log)
    acked: list[tuple[float, int]] = []
    samples: list[tuple[float, int]] = []
    total = 0
    try:
        # Let the worker find the experiment before the clock starts.
        await asyncio.sleep(3.0)
        stop = False

        async def poll() -> None:
            while not stop:
                samples.append((time.perf_counter(), _counter(r, key, "aggregated") - base))
                await asyncio.sleep(0.005)

        poller = asyncio.create_task(poll())
        interval = BATCH / rate
        headers = {**CLIENT, "content-type": "application/json"}
        limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as http:

            async def send(body: bytes) -> None:
                nonlocal total
                once = {**headers, "Idempotency-Key": uuid.uuid4().hex}
                response = await _post(http, body, once)
                if response.status_code != 202:
                    raise RuntimeError(f"{response.status_code}: {response.text[:300]}")
                total += int(response.json()["accepted"])
                acked.append((time.perf_counter(), total))

            start = time.perf_counter()
            tasks = []
            for i in range(len(bodies)):
                body = bodies[i]
                delay = start + i * interval - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(send(body)))
            await asyncio.gather(*tasks)
            sent_for = time.perf_counter() - start
        deadline = time.perf_counter() + 60
        while samples[-1][1] < total and time.perf_counter() < deadline:
            await asyncio.sleep(0.01)
        stop = True
        await poller
    finally:
        worker.stop()
        r.close()
    lags = []
    j = 0
    for at, cumulative in acked:
        while j < len(samples) and samples[j][1] < cumulative:
            j += 1
        if j < len(samples):
            lags.append(max(samples[j][0] - at, 0.0))
    return lags, total / sent_for


# --- 5. dedup memory -----------------------------------------------------------------------


async def dedup_memory(url: str, ids: int) -> tuple[float, float]:
    """Bytes per id: the packed hash (through the real ingest script) vs SET NX EX keys."""
    client = await connect(RedisSettings(url))
    store = EventStore(client, dedup_window_s=3600, max_backlog=10**12, idempotency_window_s=60)
    now = time.time()
    event = StoredEvent("u", "baseline", now, {"x": 1.0})
    chunk = 10_000
    try:
        for _ in range(0, ids, chunk):
            event_ids = [uuid.uuid4().hex for _ in range(chunk)]
            await store.append("mem", event_ids, [event] * chunk, store.call("bench", None, ""))
        packed = await client.memory_usage(keys.event_ids("mem"), samples=0)
    finally:
        await close(client)
    r = redis.Redis.from_url(url)
    before = int(r.info("memory")["used_memory"])
    for _ in range(0, ids, chunk):
        with r.pipeline(transaction=False) as pipe:
            for _ in range(chunk):
                pipe.set(f"sharpen:{{mem}}:eid:{uuid.uuid4().hex}", 1, nx=True, ex=3600)
            pipe.execute()
    per_key = (int(r.info("memory")["used_memory"]) - before) / ids
    r.close()
    return float(packed or 0) / ids, per_key


# --- the run -------------------------------------------------------------------------------


def _pct(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def main(argv: Sequence[str] | None = None) -> list[tuple[str, str, str, str]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per throughput run")
    parser.add_argument("--rate", type=float, default=50_000, help="events/s for the lag run")
    parser.add_argument("--lag-seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight (ingest)")
    parser.add_argument("--dedup-ids", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="short runs (smoke test)")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.lag_seconds, args.dedup_ids = 2.0, 3.0, 100_000

    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        work = Path(tmp)
        server_redis = EmbeddedRedis(work / "redis", appendfsync="everysec")
        server_redis.start()
        server: Server | None = None
        try:
            url = server_redis.url
            print(f"redis-server {server_redis.binary} on {url} (AOF everysec)")
            xadd = raw_xadd(url, min(args.duration, 4.0))
            print(f"raw XADD from redis-py, pipelined 1,000/round trip: {xadd:,.0f} events/s")
            xadd_c = raw_xadd_c(server_redis.port, 200_000 if args.quick else 1_000_000)
            if xadd_c is not None:
                print(f"raw XADD from redis-benchmark, 50 connections x 1,000: {xadd_c:,.0f}/s")

            server = Server(url, work / "server.log")
            with httpx.Client(base_url=server.url) as http:
                for key, unit in (
                    ("bench-req", "request"),
                    ("bench-user", "user"),
                    ("bench-lag", "request"),
                ):
                    assert http.post(
                        "/v1/experiments", json=_spec(key, unit), headers=ADMIN
                    ).is_success
                    assert http.post(f"/v1/experiments/{key}/start", headers=ADMIN).is_success

            results: dict[str, Any] = {}
            for key, units in (("bench-req", 10**9), ("bench-user", 200_000)):
                count = int(args.duration * 400) + 20  # enough for ~400k events/s
                bodies = Bodies(key, count, units, seed=1 if units > 10**6 else 2)
                rate, latencies, accepted = asyncio.run(
                    ingest(server.url, bodies, args.duration, args.concurrency)
                )
                print(
                    f"ingest {key}: {rate:,.0f} events/s ({accepted:,} events, request p50 "
                    f"{_pct(latencies, 50) * 1000:.1f} ms, p99 {_pct(latencies, 99) * 1000:.1f} ms)"
                )
                per_worker = aggregate(url, key, accepted, work / f"worker-{key}.log")
                print(f"aggregate {key}: {per_worker:,.0f} events/s with one worker")
                results[key] = (rate, per_worker, latencies)

            lag_count = max(int(args.rate * args.lag_seconds / BATCH), 1)
            lag_bodies = Bodies("bench-lag", lag_count, 10**9, 3)
            lags, achieved = asyncio.run(
                lag(server.url, url, "bench-lag", lag_bodies, args.rate, work / "worker-lag.log")
            )
            print(
                f"lag at {achieved:,.0f} events/s (target {args.rate:,.0f}): "
                f"p50 {_pct(lags, 50) * 1000:.0f} ms, p99 {_pct(lags, 99) * 1000:.0f} ms, "
                f"max {max(lags) * 1000:.0f} ms over {len(lags)} batches"
            )
            r = redis.Redis.from_url(url)
            units_bytes = r.memory_usage(keys.units("bench-user"), samples=0) or 0
            n_units = r.hlen(keys.units("bench-user"))
            r.close()
            packed, per_key = asyncio.run(dedup_memory(url, args.dedup_ids))
            print(
                f"dedup memory, {args.dedup_ids:,} ids: packed hash {packed:.1f} B/id, "
                f"SET NX EX {per_key:.1f} B/id ({per_key / packed:.1f}x); per-unit state "
                f"{units_bytes / max(n_units, 1):.0f} B/unit over {n_units:,} units"
            )
        finally:
            if server is not None:
                server.stop()
            server_redis.stop()

    req_rate, req_agg, req_lat = results["bench-req"]
    user_rate, user_agg, _ = results["bench-user"]
    p50, p99 = _pct(lags, 50) * 1000, _pct(lags, 99) * 1000
    rows = [
        (
            "ingest events/s, request-level, 1,000/batch",
            f"{req_rate:,.0f}",
            f"{xadd:,.0f} redis-py XADD",
            f"{req_rate / xadd:.2f}",
        ),
        (
            "ingest events/s, request-level, 1,000/batch",
            f"{req_rate:,.0f}",
            f"{xadd_c or float('nan'):,.0f} redis-benchmark",
            f"{req_rate / (xadd_c or float('nan')):.2f}",
        ),
        (
            "ingest events/s, user-level, 1,000/batch",
            f"{user_rate:,.0f}",
            f"{xadd:,.0f} redis-py XADD",
            f"{user_rate / xadd:.2f}",
        ),
        ("ingest request p99 ms (1,000 events)", f"{_pct(req_lat, 99) * 1000:.1f}", "-", "-"),
        (
            "aggregate events/s per worker, request-level",
            f"{req_agg:,.0f}",
            f"{req_rate:,.0f} ingest",
            f"{req_agg / req_rate:.2f}",
        ),
        (
            "aggregate events/s per worker, user-level",
            f"{user_agg:,.0f}",
            f"{user_rate:,.0f} ingest",
            f"{user_agg / user_rate:.2f}",
        ),
        (
            f"lag 202->counted p50/p99 ms at {achieved:,.0f} ev/s",
            f"{p50:.0f} / {p99:.0f}",
            "2000 (p99 target)",
            f"{p99 / 2000:.2f}",
        ),
        (
            "dedup bytes per event id",
            f"{packed:.1f}",
            f"{per_key:.1f} SET NX EX",
            f"{packed / per_key:.2f}",
        ),
    ]
    width = max(len(r[0]) for r in rows)
    print()
    print(f"{'work':<{width}}  {'sharpen':>14}  {'reference':>26}  {'ratio':>6}")
    for work_, ours, ref, ratio in rows:
        print(f"{work_:<{width}}  {ours:>14}  {ref:>26}  {ratio:>6}")
    return rows


if __name__ == "__main__":
    main()
