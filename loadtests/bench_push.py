"""A rollback, stop or ship reaching the SDKs: the config stream against the server itself.

One uvicorn worker (``bench_assign.Uvicorn``) with its own redis-server; ``--clients``
``sharpen.Client`` instances with default settings (local mode, so each evaluates in its
process and hears of changes on ``GET /v1/config/stream``). Each trial starts a fresh
experiment, waits until every client serves it, then ends it (rollback, stop and ship in
turn) and times, from just before the admin call, until each client serves the ended
answer. Same trials, the reference: ``POST /v1/assign`` on the server, what a remote-mode
caller sees. One checker thread asks every client in turn (about 1 ms resolution).

Then the memory of streaming connections: the server's resident memory before and after
``--memory-streams`` more idle streams are open, per connection.

    .venv/bin/python -m loadtests.bench_push [--trials 100] [--clients 20]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

import sharpen
from loadtests.bench_assign import Uvicorn
from service.embedded import EmbeddedRedis

ADMIN_KEY = "bench-admin-key-0001"
CLIENT_KEY = "bench-client-key-0001"
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
CLIENT = {"Authorization": f"Bearer {CLIENT_KEY}"}
ACTIONS = ("rollback", "stop", "ship")
ENDED = {"rollback": "rolled_back", "stop": "stopped", "ship": "shipped"}
UNIT = "unit-1"
GOAL_MS = 2000.0


def _spec(key: str) -> dict[str, object]:
    return {
        "key": key,
        "variants": [
            {"key": "baseline", "weight": 50, "payload": {"model": "v6"}},
            {"key": "candidate", "weight": 50, "payload": {"model": "v7"}},
        ],
        "baseline": "baseline",
        "metrics": [
            {
                "name": "conv",
                "kind": "proportion",
                "value": "converted",
                "role": "primary",
                "mde": 0.05,
            }
        ],
    }


def _wait(condition: object, what: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.001)


def _trial(
    admin: httpx.Client, clients: list[sharpen.Client], key: str, action: str
) -> tuple[list[float], float]:
    """``(ms until each client served the ended answer, ms until the server did)``."""
    admin.post("/v1/experiments", json=_spec(key)).raise_for_status()
    admin.post(f"/v1/experiments/{key}/start").raise_for_status()
    _wait(
        lambda: all(c.assign(key, UNIT).reason == "assigned" for c in clients),
        f"every client serving {key}",
    )
    ended = ENDED[action]
    server_ms: list[float] = []
    started = threading.Event()

    def server_side() -> None:
        with httpx.Client(base_url=admin.base_url, headers=CLIENT, timeout=5) as api:
            started.wait()
            t0 = time.perf_counter()
            while True:
                answer = api.post("/v1/assign", json={"experiment": key, "unit_id": UNIT})
                if answer.json().get("reason") == ended:
                    server_ms.append((time.perf_counter() - t0) * 1000)
                    return

    remote = threading.Thread(target=server_side)
    remote.start()
    body = {"variant": "candidate"} if action == "ship" else None
    t0 = time.perf_counter()
    started.set()
    admin.post(f"/v1/experiments/{key}/{action}", json=body).raise_for_status()
    seen: dict[int, float] = {}
    deadline = time.monotonic() + 60
    while len(seen) < len(clients) and time.monotonic() < deadline:
        for i, client in enumerate(clients):
            if i not in seen and client.assign(key, UNIT).reason == ended:
                seen[i] = (time.perf_counter() - t0) * 1000
        time.sleep(0.0005)
    remote.join(60)
    if len(seen) < len(clients):
        raise RuntimeError(f"{len(clients) - len(seen)} clients never served {ended} of {key}")
    return list(seen.values()), server_ms[0]


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def _hold_streams(url: str, count: int, ready: asyncio.Event, done: asyncio.Event) -> None:
    limits = httpx.Limits(max_connections=count + 10)
    timeout = httpx.Timeout(30.0, read=None)
    async with httpx.AsyncClient(base_url=url, headers=CLIENT, limits=limits, timeout=timeout) as c:
        opened = 0

        async def one() -> None:
            nonlocal opened
            async with c.stream("GET", "/v1/config/stream") as response:
                response.raise_for_status()
                async for line in response.aiter_lines():
                    if line.startswith("event:"):
                        break
                opened += 1
                if opened == count:
                    ready.set()
                await done.wait()

        tasks = [asyncio.create_task(one()) for _ in range(count)]
        await asyncio.gather(*tasks)


def _memory_per_stream(server: Uvicorn, count: int) -> tuple[float, int]:
    """``(KiB of server memory per open stream, streams)``."""
    assert server.process is not None
    pid = server.process.pid
    before = _rss_kib(pid)
    result: list[float] = []

    async def run() -> None:
        ready, done = asyncio.Event(), asyncio.Event()
        holder = asyncio.create_task(_hold_streams(server.url, count, ready, done))
        await asyncio.wait_for(ready.wait(), 120)
        await asyncio.sleep(0.5)  # let the server settle its buffers
        result.append((_rss_kib(pid) - before) / count)
        done.set()
        await holder

    asyncio.run(run())
    return result[0], count


def main(argv: Sequence[str] | None = None) -> list[tuple[str, str, str, str]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--memory-streams", type=int, default=500)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-push-") as tmp:
        work = Path(tmp)
        store = EmbeddedRedis(work / "redis")
        store.start()
        env = {
            "SHARPEN_REDIS_URL": store.url,
            "SHARPEN_ADMIN_KEYS": f"bench={ADMIN_KEY}",
            "SHARPEN_CLIENT_KEYS": f"bench={CLIENT_KEY}",
            "SHARPEN_RUN_WORKER": "false",
            "SHARPEN_CONFIG_STREAM_MAX": str(args.memory_streams + args.clients + 10),
            "SHARPEN_CONFIG_STREAM_MAX_PER_KEY": str(args.memory_streams + args.clients + 10),
        }
        server = Uvicorn("service.app:app_from_env", env, work / "sharpen.log", factory=True)
        clients: list[sharpen.Client] = []
        try:
            server.start()
            clients = [sharpen.Client(server.url, CLIENT_KEY) for _ in range(args.clients)]
            _wait(lambda: all(c.config is not None for c in clients), "every client's config")
            sdk_ms: list[float] = []
            server_ms: list[float] = []
            with httpx.Client(base_url=server.url, headers=ADMIN, timeout=10) as admin:
                for trial in range(args.trials):
                    action = ACTIONS[trial % len(ACTIONS)]
                    per_client, remote = _trial(admin, clients, f"push-{trial}", action)
                    sdk_ms.extend(per_client)
                    server_ms.append(remote)
            pushes = min(c.stats.config_pushes for c in clients)
            loads = max(c.stats.config_loads for c in clients)
            kib, streams = _memory_per_stream(server, args.memory_streams)
        finally:
            for client in clients:
                client.close(timeout=2)
            server.stop()
            store.stop()
    sdk_p99 = _p99(sdk_ms)
    server_p99 = _p99(server_ms)
    print(
        f"{args.trials} trials x {args.clients} streaming clients: SDK p50 "
        f"{statistics.median(sdk_ms):.0f} ms, p99 {sdk_p99:.0f} ms, max {max(sdk_ms):.0f} ms "
        f"(goal p99 <= {GOAL_MS:.0f} ms); server POST /v1/assign p50 "
        f"{statistics.median(server_ms):.0f} ms, p99 {server_p99:.0f} ms"
    )
    print(f"configs pushed per client >= {pushes}, polled <= {loads} (the first load included)")
    print(f"server memory per idle config stream: {kib:.1f} KiB ({streams} streams open)")
    verdict = "met" if sdk_p99 <= GOAL_MS else "NOT met"
    return [
        (
            f"rollback/stop/ship served by {args.clients} streaming SDK clients, p99 of "
            f"{args.trials} trials (ms) vs the server's own POST /v1/assign",
            f"{sdk_p99:.0f}",
            f"{server_p99:.0f}",
            f"goal <= {GOAL_MS:.0f} ms {verdict}",
        ),
        (
            "server memory per open config stream (KiB, idle, 1 worker)",
            f"{kib:.1f}",
            "-",
            "-",
        ),
    ]


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


if __name__ == "__main__":
    main()
