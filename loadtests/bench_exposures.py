"""Exposure flood: is every ``in_experiment: true`` answer written, and how fast can it be?

One uvicorn worker (``--loop uvloop --http httptools``) serves sharpen on its own
redis-server (AOF on, ``appendfsync everysec``, the embedded default). Two running
experiments, ``flood-a`` and ``flood-b``:

- **Flood**: ``--threads`` threads post ``/v1/assign/batch`` (1,000 new units each) to A
  for ``--duration`` seconds while one thread makes ``--b-requests`` ``/v1/assign`` calls
  to B. Every answer is kept: after a graceful stop (SIGINT) each unit answered
  ``in_experiment: true`` must have an entry in its experiment's stream. Refusals must be
  429/503 with ``Retry-After``.
- **Ceiling**: the exposures/s written to A's stream while the flood saturates the
  service (the middle of the flood, sampled with XLEN): what one worker's flusher
  sustains next to its request path. Also the flusher alone (in this process, no
  requests): 400,000 rows of 4 experiments admitted, then flushed.
- **References**, against the same Redis in the same run: the same rows written by a bare
  Python client, pipelined ``XADD`` (500 a pipeline, one connection, same fields), and by
  ``redis-benchmark -P 500`` (Redis's own ceiling for such an ``XADD``, no client cost).

    .venv/bin/python -m loadtests.bench_exposures [--duration 10] [--threads 4]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import redis

from loadtests.bench_assign import ADMIN_KEY, CLIENT_KEY, Uvicorn
from service.assignment import ExposureBuffer
from service.embedded import EmbeddedRedis
from service.store import RedisSettings, close, connect, keys
from service.store.exposures import ExposureLog

A, B = "flood-a", "flood-b"
BATCH = 1000
CLIENT = {"Authorization": f"Bearer {CLIENT_KEY}", "Content-Type": "application/json"}
_COUNTERS = re.compile(
    r'^sharpen_(exposure_buffer_dropped|exposures_refused)_total\{reason="(\w+)"\} ([\d.e+]+)$',
    re.M,
)


def _spec(key: str) -> dict[str, Any]:
    return {
        "key": key,
        "variants": [{"key": "baseline", "weight": 1}, {"key": "candidate", "weight": 1}],
        "baseline": "baseline",
        "metrics": [
            {"name": "conv", "kind": "proportion", "value": "c", "role": "primary", "mde": 0.05}
        ],
    }


@dataclass
class Tally:
    """What one experiment's callers were told."""

    answered_in: set[str] = field(default_factory=set)
    refused: int = 0
    refused_without_retry_after: int = 0
    other_errors: dict[int, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def refuse(self, response: httpx.Response) -> None:
        with self.lock:
            if response.status_code in (429, 503):
                self.refused += 1
                if "retry-after" not in response.headers:
                    self.refused_without_retry_after += 1
            else:
                code = response.status_code
                self.other_errors[code] = self.other_errors.get(code, 0) + 1


def _flood_a(url: str, thread: int, stop: threading.Event, tally: Tally) -> None:
    n = 0
    with httpx.Client(base_url=url, headers=CLIENT, timeout=60) as http:
        while not stop.is_set():
            units = [f"a{thread}-{n + i}" for i in range(BATCH)]
            n += BATCH
            body = orjson.dumps({"experiment": A, "units": [{"unit_id": u} for u in units]})
            response = http.post("/v1/assign/batch", content=body)
            if response.status_code != 200:
                tally.refuse(response)
                continue
            answers = orjson.loads(response.content)["assignments"]
            inside = {u for u, x in zip(units, answers, strict=True) if x["in_experiment"]}
            with tally.lock:
                tally.answered_in |= inside


def _assign_b(url: str, count: int, tally: Tally, done: threading.Event) -> None:
    with httpx.Client(base_url=url, headers=CLIENT, timeout=60) as http:
        for i in range(count):
            unit = f"b-{i}"
            body = orjson.dumps({"experiment": B, "unit_id": unit})
            response = http.post("/v1/assign", content=body)
            if response.status_code != 200:
                tally.refuse(response)
            elif orjson.loads(response.content)["in_experiment"]:
                tally.answered_in.add(unit)
    done.set()


def _stream_units(client: redis.Redis, key: str) -> set[str]:
    units: set[str] = set()
    start = "-"
    stream = keys.exposures_stream(key)
    while True:
        chunk: Any = client.xrange(stream, start, "+", count=10_000)
        if not chunk:
            return units
        units.update(fields[b"unit_id"].decode() for _, fields in chunk)
        start = "(" + chunk[-1][0].decode()


def _counters(url: str) -> dict[str, float]:
    """``exposure_buffer_dropped_total`` and ``exposures_refused_total`` by reason."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return {f"{name}:{reason}": float(value) for name, reason, value in _COUNTERS.findall(text)}


def _setup(url: str) -> None:
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    with httpx.Client(base_url=url, headers=admin, timeout=10) as http:
        for key in (A, B):
            http.post("/v1/experiments", json=_spec(key)).raise_for_status()
            http.post(f"/v1/experiments/{key}/start").raise_for_status()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            got = http.post(
                "/v1/assign", json={"experiment": B, "unit_id": "probe"}, headers=CLIENT
            )
            if got.status_code == 200 and got.json()["in_experiment"]:
                return
            time.sleep(0.05)
    raise RuntimeError("the experiments did not become assignable")


def raw_xadd_rate(url: str, rows: int, per_pipeline: int = 500) -> float:
    """Rows/s a bare client writes with pipelined XADD (the flusher's fields), one connection."""
    client = redis.Redis.from_url(url)
    stream = "bench:reference:exposures"
    fields = {
        "experiment": "reference",
        "unit_id": "",
        "variant": "candidate",
        "version": "1",
        "timestamp": f"{time.time():.6f}",
        "attributes": "{}",
    }
    started = time.perf_counter()
    for start in range(0, rows, per_pipeline):
        pipe = client.pipeline(transaction=False)
        for i in range(start, min(start + per_pipeline, rows)):
            pipe.xadd(stream, {**fields, "unit_id": f"r-{i}"})
        pipe.execute()
    elapsed = time.perf_counter() - started
    client.delete(stream)
    client.close()
    return rows / elapsed


def flusher_alone_rate(url: str, rows_per_experiment: int = 100_000) -> float:
    """Rows/s :class:`ExposureBuffer` writes with nothing else running (same Redis)."""

    async def run() -> float:
        client = await connect(RedisSettings(url=url))
        buffer = ExposureBuffer(ExposureLog(client), flush_interval_s=0.005, max_pending=10**7)
        now = time.time()
        for e in range(4):
            key = f"alone-{e}"
            rows = [
                (key, f"u{i}", "candidate", 1, now, {"country": "US"} if i % 2 else None)
                for i in range(rows_per_experiment)
            ]
            assert buffer.offer_many(key, rows)
        started = time.perf_counter()
        written = await buffer.flush()
        elapsed = time.perf_counter() - started
        for e in range(4):
            await client.delete(keys.exposures_stream(f"alone-{e}"))
        await close(client)
        return written / elapsed

    return asyncio.run(run())


def redis_benchmark_rate(port: int, rows: int) -> float | None:
    """``XADD`` requests/s redis-benchmark reaches (pipelines of 500), or None without it."""
    if shutil.which("redis-benchmark") is None:
        return None
    out = subprocess.run(
        [
            "redis-benchmark",
            "-p",
            str(port),
            "-n",
            str(rows),
            "-P",
            "500",
            "-r",
            "1000000",
            "-q",
            "XADD",
            "bench:reference:rb",
            "*",
            "experiment",
            "reference",
            "unit_id",
            "r-__rand_int__",
            "variant",
            "candidate",
            "version",
            "1",
            "timestamp",
            f"{time.time():.6f}",
            "attributes",
            "{}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found = re.findall(r"([\d.]+) requests per second", out)
    return float(found[-1]) if found else None


@dataclass(frozen=True, slots=True)
class Ceiling:
    rate: float
    window_s: float


def _sample_ceiling(client: redis.Redis, stop: threading.Event, duration: float) -> Ceiling:
    """A's stream growth over the middle half of the flood (after warm-up, before the end)."""
    stream = keys.exposures_stream(A)
    stop.wait(duration / 4)
    first, t0 = int(client.xlen(stream)), time.perf_counter()
    stop.wait(duration / 2)
    last, t1 = int(client.xlen(stream)), time.perf_counter()
    return Ceiling((last - first) / (t1 - t0), t1 - t0)


def _report(name: str, tally: Tally, written: set[str]) -> int:
    missing = len(tally.answered_in - written)
    print(
        f"  {name}: {len(tally.answered_in):>9} answered in_experiment, "
        f"{len(tally.answered_in & written):>9} written, {missing} missing; "
        f"{tally.refused} refused (429/503, {tally.refused_without_retry_after} without "
        f"Retry-After); other errors {tally.other_errors or 'none'}"
    )
    return missing + tally.refused_without_retry_after


def main(argv: Sequence[str] | None = None) -> list[tuple[str, object, object, object]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="flood seconds")
    parser.add_argument("--threads", type=int, default=4, help="batch threads flooding A")
    parser.add_argument("--b-requests", type=int, default=2000, help="/v1/assign calls to B")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench-exposures-") as tmp:
        work = Path(tmp)
        store = EmbeddedRedis(work / "redis")  # AOF on, appendfsync everysec
        store.start()
        client = redis.Redis.from_url(store.url)
        env = {
            "SHARPEN_REDIS_URL": store.url,
            "SHARPEN_ADMIN_KEYS": f"bench={ADMIN_KEY}",
            "SHARPEN_CLIENT_KEYS": f"bench={CLIENT_KEY}",
            "SHARPEN_RUN_WORKER": "false",
        }
        sharpen = Uvicorn("service.app:app_from_env", env, work / "sharpen.log", factory=True)
        a, b = Tally(), Tally()
        try:
            sharpen.start()
            _setup(sharpen.url)
            before = _counters(sharpen.url)
            stop, b_done = threading.Event(), threading.Event()
            threads = [
                threading.Thread(target=_flood_a, args=(sharpen.url, t, stop, a))
                for t in range(args.threads)
            ]
            flood_started = time.perf_counter()
            for thread in threads:
                thread.start()
            b_thread = threading.Thread(
                target=_assign_b, args=(sharpen.url, args.b_requests, b, b_done)
            )
            stop.wait(1.0)
            b_thread.start()
            ceiling = _sample_ceiling(client, stop, args.duration - 1.0)
            stop.wait(0.25 * (args.duration - 1.0))
            b_done.wait()  # the flood goes on until B's calls are all made
            flood_s = time.perf_counter() - flood_started
            stop.set()
            for thread in threads:
                thread.join()
            b_thread.join()
            after = _counters(sharpen.url)
        finally:
            code = sharpen.stop()
        written_a, written_b = _stream_units(client, A), _stream_units(client, B)
        reference = raw_xadd_rate(store.url, 200_000)
        alone = flusher_alone_rate(store.url)
        server_ceiling = redis_benchmark_rate(store.port, 500_000)
        client.close()
        store.stop()

    print(
        f"flood: {args.threads} threads x /v1/assign/batch ({BATCH} new units) to {A} for "
        f"{flood_s:.0f} s, {args.b_requests} x /v1/assign to {B}; sharpen exit {code}"
    )
    lost = _report(B, b, written_b) + _report(A, a, written_a)
    counted = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after}
    print(f"  counters during the flood (metric:reason, rows): {counted}")
    print(
        f"ceiling: {ceiling.rate:,.0f} exposures/s written to {A}'s stream during the flood "
        f"({ceiling.window_s:.1f} s window, one uvicorn worker, AOF everysec)"
    )
    print(f"flusher alone: {alone:,.0f} rows/s (no requests; 4 experiments, 400,000 rows)")
    print(f"reference: {reference:,.0f} rows/s raw pipelined XADD (500 a pipeline), same Redis")
    if server_ceiling is not None:
        print(f"redis-benchmark XADD -P 500: {server_ceiling:,.0f} rows/s, same Redis")
    print(f"ratio flusher/raw XADD: {ceiling.rate / reference:.2f}")
    print("answered exposures LOST" if lost else "every answered exposure was written")
    lost_note = " (LOST some)" if lost else ""
    return [
        (
            f"exposures written/s, assign flood, 1 worker, vs pipelined XADD{lost_note}",
            ceiling.rate,
            reference,
            ceiling.rate / reference,
        ),
        (
            "exposure flusher alone (rows/s) vs raw pipelined XADD",
            alone,
            reference,
            alone / reference,
        ),
    ]


if __name__ == "__main__":
    main()
