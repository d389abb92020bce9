"""``POST /v1/assign`` under load: sharpen next to a raw ASGI hello-world, in the same run.

Both apps run in one uvicorn worker each (a real subprocess, same options:
``--loop uvloop --http httptools --no-access-log``); sharpen gets its own
redis-server and one running experiment that every request enters (targeting
passes, traffic 100%), so every request also logs an exposure.

- **Saturation**: ``wrk -t1 -c<connections>`` for ``--duration`` seconds, a Lua
  ``request()`` giving each request a new unit id: requests/s, p50 and p99.
- **Half of peak**: ``hey`` at a fixed rate (``-q`` per worker x ``-c`` workers = half
  of the app's own saturation rps; wrk2 is not packaged in Debian), p50 and p99.
  hey sends one fixed body, so the unit id repeats (evaluation costs the same; an
  exposure is still logged per request).
- **Rounds**: ``--rounds`` alternating runs of each; the best round of each app is
  compared (the least disturbed by neighbours), the median ratio is printed too.
- **Exposures**: after a graceful stop (SIGINT), the stream must hold one entry per
  200 answer sharpen gave (checked and printed).

Targets: sharpen >= 0.5 x the hello-world's rps at saturation; p99 <= 5 ms at half of
its peak. The load generator shares the machine, so absolute numbers depend on it;
the ratio is the figure to compare.

    .venv/bin/python -m loadtests.bench_assign [--duration 10] [--connections 50]
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import redis

from service.embedded import EmbeddedRedis, free_port
from service.store import keys

ADMIN_KEY = "bench-admin-key-000001"
CLIENT_KEY = "bench-client-key-00001"
EXPERIMENT = "bench"
PATH = "/v1/assign"
RATIO_TARGET = 0.5
P99_TARGET_MS = 5.0
ROOT = Path(__file__).resolve().parent.parent

SPEC = {
    "key": EXPERIMENT,
    "variants": [
        {"key": "baseline", "weight": 50, "payload": {"model": "v6"}},
        {"key": "candidate", "weight": 50, "payload": {"model": "v7"}},
    ],
    "baseline": "baseline",
    "targeting": {"country": ["US", "CA"]},
    "segments": ["country"],
    "metrics": [
        {"name": "conv", "kind": "proportion", "value": "converted", "role": "primary", "mde": 0.05}
    ],
}

WRK_SCRIPT = """
local n = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %(key)s"
request = function()
  n = n + 1
  return wrk.format(nil, "%(path)s", nil,
    '{"experiment":"%(exp)s","unit_id":"user-' .. n .. '","attributes":{"country":"US","tier":2}}')
end
"""
HEY_BODY = orjson.dumps(
    {"experiment": EXPERIMENT, "unit_id": "user-42", "attributes": {"country": "US", "tier": 2}}
).decode()


@dataclass(frozen=True, slots=True)
class Run:
    rps: float
    p50_ms: float
    p99_ms: float
    ok: int
    errors: int


class Uvicorn:
    """One uvicorn worker serving ``target`` on a free port."""

    def __init__(
        self,
        target: str,
        env: dict[str, str],
        log: Path,
        *,
        factory: bool,
        cpus: set[int] | None = None,
    ) -> None:
        self.port = free_port()
        self.cpus = cpus
        self.args = [
            sys.executable,
            "-m",
            "uvicorn",
            target,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            "1",
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--no-access-log",
            "--log-level",
            "warning",
        ] + (["--factory"] if factory else [])
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), **env}
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, ready_path: str = "/healthz") -> Uvicorn:
        out = self.log.open("ab")
        self.process = subprocess.Popen(self.args, env=self.env, stdout=out, stderr=out)
        if self.cpus:
            os.sched_setaffinity(self.process.pid, self.cpus)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.args[3]} exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(self.url + ready_path, timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError(f"{self.args[3]} did not start")

    def stop(self) -> int | None:
        process, self.process = self.process, None
        if process is None:
            return None
        process.send_signal(signal.SIGINT)
        try:
            return process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            return process.wait()


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "secs": 1e3}[unit]


def _pinned(cpus: set[int] | None) -> Callable[[], None] | None:
    return None if cpus is None else lambda: os.sched_setaffinity(0, cpus)


def run_wrk(
    url: str, script: Path, duration: float, connections: int, cpus: set[int] | None = None
) -> Run:
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{duration:.0f}s",
            "--latency",
            "-s",
            str(script),
            url + PATH,
        ],
        capture_output=True,
        text=True,
        check=True,
        preexec_fn=_pinned(cpus),
    ).stdout
    found = re.findall(r"^\s+(\d+)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
    percentiles = {p: _ms(v, u) for p, v, u in found}
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = int(bad.group(1)) if bad else 0
    socket_errors = re.search(r"Socket errors: (.*)", out)
    if socket_errors:
        print(f"    wrk socket errors: {socket_errors.group(1)}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    return Run(rps, percentiles["50"], percentiles["99"], total - errors, errors)


def run_hey(
    url: str, rate: float, duration: float, workers: int, cpus: set[int] | None = None
) -> Run:
    per_worker = max(1, math.ceil(rate / workers))
    out = subprocess.run(
        [
            "hey",
            "-z",
            f"{duration:.0f}s",
            "-c",
            str(workers),
            "-q",
            str(per_worker),
            "-m",
            "POST",
            "-T",
            "application/json",
            "-H",
            f"Authorization: Bearer {CLIENT_KEY}",
            "-d",
            HEY_BODY,
            url + PATH,
        ],
        capture_output=True,
        text=True,
        check=True,
        preexec_fn=_pinned(cpus),
    ).stdout
    percentiles = {p: _ms(v, "secs") for p, v in re.findall(r"(\d+)% in ([\d.]+) secs", out)}
    statuses = {int(s): int(n) for s, n in re.findall(r"\[(\d+)\]\s+(\d+) responses", out)}
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    ok = statuses.get(200, 0)
    return Run(rps, percentiles["50"], percentiles["99"], ok, sum(statuses.values()) - ok)


def _setup_experiment(url: str) -> None:
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    with httpx.Client(base_url=url, headers=admin, timeout=10) as client:
        client.post("/v1/experiments", json=SPEC).raise_for_status()
        client.post(f"/v1/experiments/{EXPERIMENT}/start").raise_for_status()
        body = orjson.loads(HEY_BODY)
        client_headers = {"Authorization": f"Bearer {CLIENT_KEY}"}
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            answer = client.post(PATH, json=body, headers=client_headers)
            if answer.status_code == 200 and answer.json()["in_experiment"]:
                return
            time.sleep(0.05)
    raise RuntimeError("the experiment did not become assignable")


def _cpu_split(pin: bool) -> tuple[set[int] | None, set[int] | None]:
    """``(app CPUs, load generator and Redis CPUs)``: one CPU for the app, the rest for
    the others, so the generator does not steal the app's CPU (None: no pinning)."""
    cpus = sorted(os.sched_getaffinity(0))
    if not pin or len(cpus) < 2:
        return None, None
    return {cpus[0]}, set(cpus[1:])


def _row(name: str, run: Run) -> str:
    return (
        f"  {name:<30} {run.rps:>9.0f} rps   p50 {run.p50_ms:6.2f} ms   p99 {run.p99_ms:6.2f} ms"
        f"   ({run.ok} ok, {run.errors} errors)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measurement")
    parser.add_argument("--connections", type=int, default=50, help="wrk connections")
    parser.add_argument("--hey-workers", type=int, default=25, help="hey workers (-c)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per load")
    parser.add_argument(
        "--pin",
        action="store_true",
        help="pin the app to one CPU, the load generator and Redis to the others (on a busy "
        "shared machine this hurts more than it helps)",
    )
    args = parser.parse_args(argv)
    server_cpus, client_cpus = _cpu_split(args.pin)
    wrk = functools.partial(run_wrk, cpus=client_cpus)
    hey = functools.partial(run_hey, cpus=client_cpus)
    missing = [tool for tool in ("wrk", "hey", "redis-server") if shutil.which(tool) is None]
    if missing:
        print(f"missing {', '.join(missing)}: apt-get install -y {' '.join(missing)}")
        return 2

    with tempfile.TemporaryDirectory(prefix="bench-assign-") as tmp:
        work = Path(tmp)
        script = work / "assign.lua"
        script.write_text(WRK_SCRIPT % {"key": CLIENT_KEY, "path": PATH, "exp": EXPERIMENT})
        store = EmbeddedRedis(work / "redis")
        store.start()
        if client_cpus is not None and store.process is not None:
            os.sched_setaffinity(store.process.pid, client_cpus)
        env = {
            "SHARPEN_REDIS_URL": store.url,
            "SHARPEN_ADMIN_KEYS": f"bench={ADMIN_KEY}",
            "SHARPEN_CLIENT_KEYS": f"bench={CLIENT_KEY}",
            "SHARPEN_RUN_WORKER": "false",
        }
        hello = Uvicorn(
            "loadtests.asgi_hello:app", {}, work / "hello.log", factory=False, cpus=server_cpus
        )
        sharpen = Uvicorn(
            "service.app:app_from_env", env, work / "sharpen.log", factory=True, cpus=server_cpus
        )
        served_ok = 0
        try:
            hello.start(ready_path="/")
            sharpen.start()
            _setup_experiment(sharpen.url)
            print(f"warming up ({min(args.duration, 3):.0f} s each)")
            wrk(hello.url, script, min(args.duration, 3), args.connections)
            served_ok += wrk(sharpen.url, script, min(args.duration, 3), args.connections).ok

            # Rounds alternate between the apps, so a busy neighbour disturbs both alike.
            print(f"saturation: wrk -t1 -c{args.connections} -d{args.duration:.0f}s")
            raws: list[Run] = []
            ours_runs: list[Run] = []
            for _ in range(args.rounds):
                raws.append(wrk(hello.url, script, args.duration, args.connections))
                print(_row("raw ASGI hello-world", raws[-1]))
                ours_runs.append(wrk(sharpen.url, script, args.duration, args.connections))
                served_ok += ours_runs[-1].ok
                print(_row("sharpen POST /v1/assign", ours_runs[-1]))
            raw = max(raws, key=lambda r: r.rps)
            ours = max(ours_runs, key=lambda r: r.rps)

            print(f"half of each app's best peak: hey -c{args.hey_workers} at a fixed rate")
            raw_halves: list[Run] = []
            ours_halves: list[Run] = []
            for _ in range(args.rounds):
                raw_halves.append(hey(hello.url, raw.rps / 2, args.duration, args.hey_workers))
                print(_row(f"raw ASGI @ {raw.rps / 2:.0f}/s", raw_halves[-1]))
                ours_halves.append(hey(sharpen.url, ours.rps / 2, args.duration, args.hey_workers))
                served_ok += ours_halves[-1].ok
                print(_row(f"sharpen @ {ours.rps / 2:.0f}/s", ours_halves[-1]))
            raw_half = min(raw_halves, key=lambda r: r.p99_ms)
            ours_half = min(ours_halves, key=lambda r: r.p99_ms)
        finally:
            hello.stop()
            code = sharpen.stop()
        client = redis.Redis.from_url(store.url)
        written = int(client.xlen(keys.exposures_stream(EXPERIMENT)))
        client.close()
        store.stop()

    ratio = ours.rps / raw.rps
    medians = statistics.median(o.rps / r.rps for o, r in zip(ours_runs, raws, strict=True))
    # The same names as the rounds' lines: the last line of each name is the figure.
    print("best round of each:")
    print(_row("raw ASGI hello-world", raw))
    print(_row("sharpen POST /v1/assign", ours))
    print(_row(f"raw ASGI @ {raw.rps / 2:.0f}/s", raw_half))
    print(_row(f"sharpen @ {ours.rps / 2:.0f}/s", ours_half))
    # A load generator stops with up to one request per connection in flight: served and
    # logged, never counted as answered.
    in_flight_max = (1 + args.rounds) * args.connections + args.rounds * args.hey_workers
    slack = written - served_ok - 1
    print(
        f"exposures: {written} stream entries for {served_ok} assignments answered (+1 at setup;"
        f" {slack} in flight when a load generator stopped, at most {in_flight_max})"
        + ("" if code == 0 else f"; sharpen exit code {code}")
    )
    if not 0 <= slack <= in_flight_max:
        print("exposures LOST or DUPLICATED")
    print(
        f"ratio sharpen/raw at saturation: {ratio:.2f} best vs best, {medians:.2f} median of "
        f"rounds (target >= {RATIO_TARGET})"
    )
    p99s = ", ".join(f"{r.p99_ms:.2f}" for r in ours_halves)
    print(
        f"sharpen p99 at half of peak: {ours_half.p99_ms:.2f} ms best ({p99s} ms by round; "
        f"target <= {P99_TARGET_MS} ms)"
    )
    met = ratio >= RATIO_TARGET and ours_half.p99_ms <= P99_TARGET_MS
    print("targets met" if met else "targets NOT met")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
