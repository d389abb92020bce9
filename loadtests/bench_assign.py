"""``POST /v1/assign`` under load: sharpen next to a raw ASGI hello-world, in the same run.

Every phase starts both apps on the same HTTP server with the same options (real
subprocesses: uvicorn ``--loop uvloop --http httptools --no-access-log``, or granian
``--interface asgi --loop uvloop``) and the same number of workers. sharpen shares one
redis-server across phases and one running experiment that every request enters (targeting
passes, traffic 100%), so every answer also logs an exposure.

Phases (each a pair of rows in the table ``python -m loadtests`` prints):

- **uvicorn, 1 worker** — the headline. *Saturation*: ``wrk -t1 -c<connections>`` for
  ``--duration`` seconds, a Lua ``request()`` giving each request a new unit id. *Half of
  peak*: ``hey`` at a fixed rate of half the raw app's best saturation rps, for both apps
  (``-q`` per worker x ``-c`` workers; wrk2 is not packaged in Debian): p50 and p99. hey
  sends one fixed body, so the unit repeats (evaluation costs the same; an exposure is
  still logged per request).
- **batch** — ``POST /v1/assign/batch`` with ``--batch`` new units a request, one uvicorn
  worker: unit assignments/s, beside the raw app answering the same bodies.
- **uvicorn, N workers** (``--workers``) and **granian, 1 worker** (``--servers``):
  saturation only. On a 2-core machine the load generator and Redis share the cores with
  the workers, so 2 workers cannot double anything.

Rounds alternate between the apps (``--rounds``); the best round of each app is compared
(the least disturbed by neighbours), the median ratio is printed too. After every phase
sharpen stops gracefully (SIGINT) and, at the end, the stream must hold one entry per unit
assignment answered (checked and printed).

Targets (issue 18): one uvicorn worker >= 0.7 x the hello-world's rps at saturation, p99
<= 2 ms at half of the raw app's peak; batch >= 200k unit assignments/s per worker. The
load generator shares the machine, so absolute numbers depend on it: the ratio is the
figure to compare. ``main`` returns the rows for ``python -m loadtests``.

    .venv/bin/python -m loadtests.bench_assign [--duration 10] [--rounds 3] [--workers 1,2]
        [--servers uvicorn,granian] [--batch 100]
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
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
from dataclasses import dataclass, field
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
BATCH_PATH = "/v1/assign/batch"
RATIO_TARGET = 0.7
P99_TARGET_MS = 2.0
BATCH_TARGET = 200_000
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
WRK_BATCH_SCRIPT = """
local n = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %(key)s"
request = function()
  n = n + 1
  local units = {}
  for i = 1, %(units)d do
    units[i] = '{"unit_id":"batch-' .. n .. '-' .. i .. '","attributes":{"country":"US"}}'
  end
  return wrk.format(nil, "%(path)s", nil,
    '{"experiment":"%(exp)s","units":[' .. table.concat(units, ",") .. ']}')
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

    @property
    def ok_rps(self) -> float:
        """Answered (2xx) requests per second: refusals (429) are not assignments."""
        total = self.ok + self.errors
        return self.rps * self.ok / total if total else 0.0


class Uvicorn:
    """``target`` served on a free port by uvicorn (or granian), ``workers`` processes."""

    def __init__(
        self,
        target: str,
        env: dict[str, str],
        log: Path,
        *,
        factory: bool,
        cpus: set[int] | None = None,
        server: str = "uvicorn",
        workers: int = 1,
    ) -> None:
        self.port = free_port()
        self.cpus = cpus
        common = ["--host", "127.0.0.1", "--port", str(self.port), "--workers", str(workers)]
        common += ["--loop", "uvloop", "--no-access-log", "--log-level", "warning"]
        if server == "granian":
            self.args = [sys.executable, "-m", "granian", "--interface", "asgi", *common]
            self.args += ["--factory", target] if factory else [target]
        else:
            self.args = [sys.executable, "-m", "uvicorn", target, *common, "--http", "httptools"]
            self.args += ["--factory"] if factory else []
        self.target = target
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
                raise RuntimeError(f"{self.target} exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(self.url + ready_path, timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError(f"{self.target} did not start")

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
    url: str,
    script: Path,
    duration: float,
    connections: int,
    cpus: set[int] | None = None,
    path: str = PATH,
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
            url + path,
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


def _setup_experiment(url: str) -> int:
    """Create and start the experiment (once per Redis), wait until the service assigns into
    it; return the exposures that logged (one per ``in_experiment`` answer)."""
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    with httpx.Client(base_url=url, headers=admin, timeout=10) as client:
        if client.get(f"/v1/experiments/{EXPERIMENT}").status_code == 404:
            client.post("/v1/experiments", json=SPEC).raise_for_status()
            client.post(f"/v1/experiments/{EXPERIMENT}/start").raise_for_status()
        body = orjson.loads(HEY_BODY)
        client_headers = {"Authorization": f"Bearer {CLIENT_KEY}"}
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            answer = client.post(PATH, json=body, headers=client_headers)
            if answer.status_code == 200 and answer.json()["in_experiment"]:
                return 1
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
        f"  {name:<34} {run.rps:>9.0f} rps   p50 {run.p50_ms:6.2f} ms   p99 {run.p99_ms:6.2f} ms"
        f"   ({run.ok} ok, {run.errors} errors)"
    )


@dataclass
class Phase:
    """One pairing of the raw app and sharpen on the same server, started and measured in
    alternating rounds; ``path`` and ``script`` say which endpoint and body."""

    label: str
    server: str
    workers: int
    script: Path
    path: str = PATH
    units: int = 1  # unit assignments per answered request
    half_peak: bool = False
    raws: list[Run] = field(default_factory=list)
    ours: list[Run] = field(default_factory=list)
    raw_halves: list[Run] = field(default_factory=list)
    our_halves: list[Run] = field(default_factory=list)

    @property
    def raw(self) -> Run:
        return max(self.raws, key=lambda r: r.rps)

    @property
    def best(self) -> Run:
        return max(self.ours, key=lambda r: r.rps)

    @property
    def ratio(self) -> float:
        return self.best.rps / self.raw.rps

    @property
    def median_ratio(self) -> float:
        return statistics.median(o.rps / r.rps for o, r in zip(self.ours, self.raws, strict=True))


def _redis_usage(store: EmbeddedRedis) -> tuple[float, int]:
    """``(CPU seconds, commands run)`` of the redis-server so far (scripts' commands count)."""
    assert store.process is not None
    fields = Path(f"/proc/{store.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu_s = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    client = redis.Redis.from_url(store.url)
    stats = client.info("commandstats")
    client.close()
    calls = sum(
        int(v["calls"])
        for k, v in stats.items()
        if isinstance(v, dict) and k not in ("cmdstat_info", "cmdstat_evalsha", "cmdstat_eval")
    )
    return cpu_s, calls


def _measure(
    phase: Phase,
    env: dict[str, str],
    work: Path,
    args: argparse.Namespace,
    cpus: tuple[set[int] | None, set[int] | None],
    store: EmbeddedRedis,
) -> int:
    """Run one phase; return how many unit assignments sharpen answered (200s x units)."""
    server_cpus = cpus[0] if phase.workers == 1 else None
    wrk = functools.partial(run_wrk, cpus=cpus[1], path=phase.path)
    hey = functools.partial(run_hey, cpus=cpus[1])
    name = f"{phase.server}-{phase.workers}"
    hello = Uvicorn(
        "loadtests.asgi_hello:app",
        {},
        work / f"hello-{name}.log",
        factory=False,
        cpus=server_cpus,
        server=phase.server,
        workers=phase.workers,
    )
    sharpen = Uvicorn(
        "service.app:app_from_env",
        env,
        work / f"sharpen-{name}.log",
        factory=True,
        cpus=server_cpus,
        server=phase.server,
        workers=phase.workers,
    )
    answered = 0
    try:
        hello.start(ready_path="/")
        sharpen.start()
        answered += _setup_experiment(sharpen.url)
        warm = min(args.duration, 3)
        print(f"{phase.label}: warming up ({warm:.0f} s each)")
        wrk(hello.url, phase.script, warm, args.connections)
        answered += wrk(sharpen.url, phase.script, warm, args.connections).ok * phase.units
        print(f"{phase.label}: wrk -t1 -c{args.connections} -d{args.duration:.0f}s, new units")
        # Rounds alternate between the apps, so a busy neighbour disturbs both alike.
        redis_cpu, redis_calls, units = 0.0, 0, 0
        for _ in range(args.rounds):
            phase.raws.append(wrk(hello.url, phase.script, args.duration, args.connections))
            print(_row(f"raw ASGI [{name}]", phase.raws[-1]))
            cpu_before, calls_before = _redis_usage(store)
            phase.ours.append(wrk(sharpen.url, phase.script, args.duration, args.connections))
            cpu_after, calls_after = _redis_usage(store)
            redis_cpu += cpu_after - cpu_before
            redis_calls += calls_after - calls_before
            units += phase.ours[-1].ok * phase.units
            print(_row(f"sharpen {phase.path} [{name}]", phase.ours[-1]))
        answered += units
        if units:
            print(
                f"  redis-server per unit assignment: {redis_calls / units:.2f} commands, "
                f"{redis_cpu / units * 1e6:.1f} us CPU (exposure writes, config polls)"
            )
        if phase.half_peak:
            rate = phase.raw.rps / 2
            print(f"{phase.label}: both at half of the raw app's best peak, {rate:.0f}/s (hey)")
            for _ in range(args.rounds):
                phase.raw_halves.append(hey(hello.url, rate, args.duration, args.hey_workers))
                print(_row(f"raw ASGI @ {rate:.0f}/s", phase.raw_halves[-1]))
                phase.our_halves.append(hey(sharpen.url, rate, args.duration, args.hey_workers))
                answered += phase.our_halves[-1].ok
                print(_row(f"sharpen @ {rate:.0f}/s", phase.our_halves[-1]))
        if phase.workers == 1 and phase.server == "uvicorn" and sharpen.process is not None:
            status = Path(f"/proc/{sharpen.process.pid}/status").read_text()
            rss = re.search(r"VmRSS:\s+(\d+) kB", status)
            if rss:
                print(f"  sharpen worker after the rounds: {int(rss.group(1)) / 1024:.0f} MiB RSS")
    finally:
        hello.stop()
        code = sharpen.stop()
    if code not in (0, None):
        print(f"  sharpen exit code {code}")
    return answered


def _rows(phases: list[Phase]) -> list[tuple[str, object, object, object]]:
    rows: list[tuple[str, object, object, object]] = []
    for phase in phases:
        where = f"{phase.server}, {phase.workers} worker{'s' if phase.workers > 1 else ''}"
        if phase.units == 1:
            rows.append(
                (
                    f"`POST /v1/assign`, new unit each, {where}, wrk at saturation (rps) vs raw "
                    f"ASGI hello-world (target >= {RATIO_TARGET}x)",
                    phase.best.rps,
                    phase.raw.rps,
                    f"{phase.ratio:.2f}x (median of rounds {phase.median_ratio:.2f}x)",
                )
            )
        else:
            best = max(phase.ours, key=lambda r: r.ok_rps)
            units = best.ok_rps * phase.units
            rows.append(
                (
                    f"`POST /v1/assign/batch`, {phase.units} new units a request, {where} "
                    f"(unit assignments/s; target >= {BATCH_TARGET:,}) vs raw ASGI, same bodies "
                    f"(requests/s x {phase.units})",
                    units,
                    phase.raw.rps * phase.units,
                    f"{units / phase.raw.rps / phase.units:.2f}x"
                    + (f" ({best.errors} refused 429)" if best.errors else ""),
                )
            )
        if phase.half_peak and phase.our_halves:
            ours = min(phase.our_halves, key=lambda r: r.p99_ms)
            raw = min(phase.raw_halves, key=lambda r: r.p99_ms)
            rows.append(
                (
                    f"`POST /v1/assign` p99 at half of the raw app's peak (ms, hey fixed rate, "
                    f"{where}; target <= {P99_TARGET_MS:g} ms) vs raw ASGI",
                    f"{ours.p99_ms:.2f}",
                    f"{raw.p99_ms:.2f}",
                    f"{ours.p99_ms / max(raw.p99_ms, 1e-9):.2f}x",
                )
            )
    return rows


def main(argv: Sequence[str] | None = None) -> list[tuple[str, object, object, object]] | int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measurement")
    parser.add_argument("--connections", type=int, default=50, help="wrk connections")
    parser.add_argument("--hey-workers", type=int, default=25, help="hey workers (-c)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per load")
    parser.add_argument(
        "--servers", default="uvicorn,granian", help="HTTP servers to compare (uvicorn first)"
    )
    parser.add_argument("--workers", default="1,2", help="worker counts to measure (uvicorn)")
    parser.add_argument("--batch", type=int, default=100, help="units per batch request (0: skip)")
    parser.add_argument(
        "--pin",
        action="store_true",
        help="pin the app to one CPU, the load generator and Redis to the others (one worker "
        "only; on a busy shared machine this hurts more than it helps)",
    )
    args = parser.parse_args(argv)
    server_cpus, client_cpus = _cpu_split(args.pin)
    missing = [tool for tool in ("wrk", "hey", "redis-server") if shutil.which(tool) is None]
    if missing:
        print(f"missing {', '.join(missing)}: apt-get install -y {' '.join(missing)}")
        return 2
    servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    if "granian" in servers and importlib.util.find_spec("granian") is None:
        print("granian not installed (pip install granian): its phase is skipped")
        servers.remove("granian")
    counts = sorted({int(w) for w in args.workers.split(",") if w.strip()})

    with tempfile.TemporaryDirectory(prefix="bench-assign-") as tmp:
        work = Path(tmp)
        single = work / "assign.lua"
        single.write_text(WRK_SCRIPT % {"key": CLIENT_KEY, "path": PATH, "exp": EXPERIMENT})
        batch = work / "batch.lua"
        batch.write_text(
            WRK_BATCH_SCRIPT
            % {"key": CLIENT_KEY, "path": BATCH_PATH, "exp": EXPERIMENT, "units": args.batch}
        )
        phases = [Phase("uvicorn, 1 worker", "uvicorn", 1, single, half_peak=True)]
        if args.batch:
            phases.append(Phase("batch", "uvicorn", 1, batch, path=BATCH_PATH, units=args.batch))
        phases += [Phase(f"uvicorn, {n} workers", "uvicorn", n, single) for n in counts if n > 1]
        phases += [Phase(f"{s}, 1 worker", s, 1, single) for s in servers if s != "uvicorn"]

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
        answered = 0
        try:
            for phase in phases:
                answered += _measure(phase, env, work, args, (server_cpus, client_cpus), store)
            client = redis.Redis.from_url(store.url)
            written = int(client.xlen(keys.exposures_stream(EXPERIMENT)))
            client.close()
        finally:
            store.stop()

    print("best round of each:")
    for phase in phases:
        name = f"{phase.server}-{phase.workers}"
        print(_row(f"raw ASGI [{name}]", phase.raw))
        print(_row(f"sharpen {phase.path} [{name}]", phase.best))
        print(f"  ratio {phase.ratio:.2f} best vs best, {phase.median_ratio:.2f} median of rounds")
    # A load generator stops with up to one request per connection in flight: served and
    # logged, never counted as answered.
    in_flight_max = sum(
        ((1 + args.rounds) * args.connections + (args.rounds * args.hey_workers)) * phase.units
        for phase in phases
    )
    slack = written - answered
    print(
        f"exposures: {written} stream entries for {answered} unit assignments answered "
        f"({slack} in flight when a load generator stopped, at most {in_flight_max})"
    )
    if not 0 <= slack <= in_flight_max:
        print("exposures LOST or DUPLICATED")
    main_phase = phases[0]
    p99 = min(main_phase.our_halves, key=lambda r: r.p99_ms).p99_ms
    met = main_phase.ratio >= RATIO_TARGET and p99 <= P99_TARGET_MS
    print(
        f"one uvicorn worker: ratio {main_phase.ratio:.2f} (target >= {RATIO_TARGET}), p99 at "
        f"half of the raw peak {p99:.2f} ms (target <= {P99_TARGET_MS:g} ms): "
        + ("targets met" if met else "targets NOT met")
    )
    rows = _rows(phases)
    for row in rows:
        print(" | ".join(str(c) for c in row))
    return rows


if __name__ == "__main__":
    main()
