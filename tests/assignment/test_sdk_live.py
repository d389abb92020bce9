"""The SDK against a real service process: local and remote modes agree; a dead service means
the fallback, promptly; a restarted one is used again; SIGINT flushes buffered exposures."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import redis

import sharpen
from service.store import keys
from tests._live import LiveServer
from tests._wait import wait_for
from tests.assignment._helpers import launch
from tests.conftest import CLIENT, CLIENT_KEY

UNITS = [f"user-{i}" for i in range(300)]
ATTRS = [{"country": ["US", "FR"][i % 2], "tier": i % 3} for i in range(len(UNITS))]
SPECS: dict[str, dict[str, Any]] = {
    "sdk-geo": {"targeting": {"country": ["US"]}, "traffic": 0.5},
    "sdk-layer": {"layer": "sdk", "layer_share": 0.5, "holdout": 0.1},
}
TIMEOUT_S = 1.0


def _served(url: str) -> set[str]:
    response = httpx.get(f"{url}/v1/config", headers=CLIENT, timeout=5)
    return set(response.json()["experiments"]) if response.status_code == 200 else set()


def _answers(client: sharpen.Client) -> list[tuple[str | None, bool, str, dict[str, Any]]]:
    out = []
    for key in SPECS:
        for unit, attrs in zip(UNITS, ATTRS, strict=True):
            a = client.assign(key, unit, attrs)
            out.append((a.variant, a.in_experiment, a.reason, a.as_dict()["payload"]))
    return out


async def _async_answers(url: str) -> list[tuple[str | None, bool, str, dict[str, Any]]]:
    """The async client in remote mode, on the first experiment (matching local mode)."""
    key = next(iter(SPECS))
    out = []
    async with (
        sharpen.AsyncClient(url, CLIENT_KEY, mode="remote", timeout=5) as remote,
        sharpen.AsyncClient(url, CLIENT_KEY, mode="local", timeout=5) as local,
    ):
        for unit, attrs in zip(UNITS, ATTRS, strict=True):
            a = await remote.assign(key, unit, attrs)
            assert a == await local.assign(key, unit, attrs)
            out.append((a.variant, a.in_experiment, a.reason, a.as_dict()["payload"]))
        assert remote.stats.remote_errors == 0
        assert await local.flush()
    return out


def _exposures(r: redis.Redis) -> int:
    return sum(int(r.xlen(keys.exposures_stream(key))) for key in SPECS)


def test_sdk_against_a_live_service(
    live_server: LiveServer,
    server_env: dict[str, str],
    redis_sync: redis.Redis,
    tmp_path: Path,
) -> None:
    url = live_server.url
    with httpx.Client(base_url=url, timeout=10) as admin:
        for key, overrides in SPECS.items():
            launch(admin, key, **overrides)

    local = sharpen.Client(url, CLIENT_KEY, mode="local", poll_interval=0.2, timeout=5)
    remote = sharpen.Client(url, CLIENT_KEY, mode="remote", poll_interval=0.2, timeout=TIMEOUT_S)
    restarted: LiveServer | None = None
    try:
        # 1. Both modes give the same answers; remote ones come from the service.
        wait_for(
            lambda: local.config is not None and set(local.config.experiments) >= set(SPECS),
            what="the local client to load every experiment",
        )
        remote_answers = _answers(remote)
        assert _answers(local) == remote_answers
        assert remote.stats.remote_errors == 0
        assert asyncio.run(_async_answers(url)) == remote_answers[: len(UNITS)]
        reasons = {reason for _, _, reason, _ in remote_answers}
        assert {"assigned", "targeting", "traffic", "layer", "holdout"} <= reasons
        in_experiment = sum(1 for _, inside, _, _ in remote_answers if inside)
        # Remote assigns log exposures on the server; local ones are sent by the SDK.
        assert local.flush(timeout=10)
        assert local.stats.exposures_sent == in_experiment
        in_first = sum(1 for _, inside, _, _ in remote_answers[: len(UNITS)] if inside)
        # Each client (sync and async, local and remote) exposed each unit once.
        expected = 2 * in_experiment + 2 * in_first
        wait_for(
            lambda: _exposures(redis_sync),
            until=lambda written: written == expected,
            what=f"{expected} exposures written",
        )

        # 2. The service dies: a fresh client falls back at once; an old one evaluates
        #    locally from the config it holds.
        live_server.kill()
        began = time.monotonic()
        fresh = sharpen.Client(url, CLIENT_KEY, mode="remote", poll_interval=0.2, timeout=TIMEOUT_S)
        got = fresh.assign("sdk-geo", "user-1", {"country": "US"}, default="baseline")
        elapsed = time.monotonic() - began
        assert (got.variant, got.in_experiment, got.reason) == ("baseline", False, "fallback")
        print(f"fallback after {elapsed * 1000:.0f} ms (timeout {TIMEOUT_S} s)")
        assert elapsed < TIMEOUT_S * 2 + 1  # construction and assign each wait <= timeout
        errors_before = remote.stats.remote_errors
        assert _answers(remote) == remote_answers
        assert remote.stats.remote_errors > errors_before

        # 3. A new service on the same port: remote assigns work again, the fresh client
        #    loads the config; SIGINT flushes what its buffer holds.
        env = {**server_env, "SHARPEN_EXPOSURE_FLUSH_INTERVAL_S": "5"}
        restarted = LiveServer(env, log=tmp_path / "restarted.log")
        restarted.port = live_server.port
        restarted.start()
        wait_for(
            lambda: _served(url),
            until=lambda served: served >= set(SPECS),
            what="every spec served",
        )
        wait_for(lambda: fresh.config is not None, what="the fresh client's config")
        # A targeting miss: answered by the service (not "fallback"), and no exposure.
        assert fresh.assign("sdk-geo", "user-1", {"country": "FR"}).reason == "targeting"
        fresh.close(timeout=1)
        # What the remote client evaluated locally while the service was down is exposed
        # too: its upload, retried, reaches the new service.
        assert remote.flush(timeout=10)
        before = _exposures(redis_sync)
        errors_before = remote.stats.remote_errors
        assert _answers(remote) == remote_answers
        assert remote.stats.remote_errors == errors_before
        assert restarted.stop() == 0  # SIGINT: graceful, buffer flushed
        restarted = None
        assert _exposures(redis_sync) - before == in_experiment
    finally:
        local.close(timeout=1)
        remote.close(timeout=1)
        if restarted is not None:
            restarted.stop()
