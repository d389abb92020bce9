"""Shared fixtures: a private redis-server per session, settings, an in-process app, a live one.

Tests never use the machine's Redis on 6379: the session starts its own on a free port.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from fastapi.testclient import TestClient

from service.app import create_app
from service.embedded import EmbeddedRedis
from service.settings import Settings
from tests._live import LiveServer
from tests._wait import wait_for

ADMIN_KEY = "test-admin-key-0001"
CLIENT_KEY = "test-client-key-0001"
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
CLIENT = {"Authorization": f"Bearer {CLIENT_KEY}"}
ROOT = Path(__file__).resolve().parent.parent


def require_binary(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} not installed (Debian package {package!r}; .ci/run installs it)")
    return path


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    """One private redis-server for the session; AOF fsync always, so restarts lose nothing."""
    require_binary("redis-server", "redis-server")
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), appendfsync="always")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: EmbeddedRedis) -> Iterator[str]:
    """The session's Redis, running and flushed before the test."""
    if redis_server.process is None or redis_server.process.poll() is not None:
        redis_server.start()
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    yield redis_server.url


@pytest.fixture
def redis_sync(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


def make_settings(redis_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "redis_url": redis_url,
        "admin_keys": [f"tester={ADMIN_KEY}"],
        "client_keys": [f"svc={CLIENT_KEY}"],
        "run_worker": False,
        **overrides,
    }
    return Settings(**values)  # type: ignore[arg-type]


def results_when(
    http: TestClient | httpx.Client,
    key: str,
    until: Callable[[dict[str, Any]], object],
    *,
    what: str,
    timeout_s: float = 30.0,
) -> dict[str, Any]:
    """Poll ``key``'s results until ``until(results)`` holds; fail with the last ones seen."""

    def fetch() -> dict[str, Any]:
        response = http.get(f"/v1/experiments/{key}/results", headers=ADMIN)
        assert response.status_code == 200, response.text
        results: dict[str, Any] = response.json()
        return results

    return wait_for(fetch, until=until, what=f"{key}'s results: {what}", timeout_s=timeout_s)


def results_with_units(
    http: TestClient | httpx.Client, key: str, total: int, *, timeout_s: float = 30.0
) -> dict[str, Any]:
    """``key``'s results once the aggregator has counted ``total`` units."""
    return results_when(
        http,
        key,
        lambda r: sum(r["units"].values()) >= total,
        what=f"{total} units counted",
        timeout_s=timeout_s,
    )


@pytest.fixture
def settings(redis_url: str) -> Settings:
    return make_settings(redis_url)


def running_app(settings: Settings, *, base_url: str = "http://testserver") -> TestClient:
    """The app in-process, lifespan not yet run: use it as ``with running_app(s) as api:``."""
    return TestClient(create_app(settings), base_url=base_url)


@pytest.fixture
def api(settings: Settings) -> Iterator[TestClient]:
    """The app in-process (lifespan run), with Redis for real."""
    with running_app(settings) as client:
        yield client


class AppFactory:
    """Starts apps on the test's Redis with setting overrides; all stop after the test."""

    def __init__(self, redis_url: str, stack: ExitStack) -> None:
        self.redis_url = redis_url
        self._stack = stack

    def __call__(
        self,
        settings: Settings | None = None,
        *,
        base_url: str = "http://testserver",
        **overrides: object,
    ) -> TestClient:
        assert settings is None or not overrides, "pass settings or overrides, not both"
        if settings is None:
            settings = make_settings(self.redis_url, **overrides)
        return self._stack.enter_context(running_app(settings, base_url=base_url))


@pytest.fixture
def make_api(redis_url: str) -> Iterator[AppFactory]:
    """``make_api(run_worker=True)``: a started app with those settings, stopped at teardown."""
    with ExitStack() as stack:
        yield AppFactory(redis_url, stack)


@pytest.fixture
def worker_api(make_api: AppFactory) -> TestClient:
    """The app with its aggregator running in-process, polling Redis every 20 ms."""
    return make_api(run_worker=True, aggregator_block_ms=20)


@pytest.fixture
def server_env(redis_url: str) -> dict[str, str]:
    return {
        "SHARPEN_REDIS_URL": redis_url,
        "SHARPEN_ADMIN_KEYS": f"tester={ADMIN_KEY}",
        "SHARPEN_CLIENT_KEYS": f"svc={CLIENT_KEY}",
        "SHARPEN_RUN_WORKER": "false",
    }


@pytest.fixture
def live_server(server_env: dict[str, str], tmp_path: Path) -> Iterator[LiveServer]:
    """A real uvicorn process on a free port."""
    server = LiveServer(server_env, log=tmp_path / "server.log").start()
    yield server
    server.stop()
