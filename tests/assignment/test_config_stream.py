"""``GET /v1/config/stream`` on a real server: the config on connect, every change pushed,
resume with Last-Event-ID, the limits per key and per worker, and a graceful shutdown that
open streams do not hold up; the SDK clients follow a rollback through it."""

from __future__ import annotations

import asyncio
import json
import queue
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import sharpen
from sharpen._stream import EventParser, ServerEvent
from tests._live import LiveServer
from tests._wait import await_for, wait_for
from tests.assignment._helpers import act, start
from tests.conftest import CLIENT, CLIENT_KEY

OTHER_KEY = "test-client-key-other-0002"


class _Reader:
    """A stream read on a thread: its events land in a queue."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        self.events: queue.Queue[ServerEvent] = queue.Queue()
        self.status: int | None = None
        self._client = httpx.Client(timeout=httpx.Timeout(5.0, read=60.0))
        self._url, self._headers = url, headers
        self.ended = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            with self._client.stream("GET", self._url, headers=self._headers) as response:
                self.status = response.status_code
                parser = EventParser()
                for line in response.iter_lines():
                    event = parser.feed(line)
                    if event is not None:
                        self.events.put(event)
        except httpx.HTTPError:
            pass
        finally:
            self.ended.set()

    def next(self) -> ServerEvent:
        try:
            return self.events.get(timeout=30)
        except queue.Empty:
            raise AssertionError(f"no event in 30 s (HTTP {self.status})") from None

    def close(self) -> None:
        self._client.close()


@pytest.fixture
def stream_server(server_env: dict[str, str], tmp_path: Path) -> Iterator[LiveServer]:
    env = {
        **server_env,
        "SHARPEN_CLIENT_KEYS": f"{server_env['SHARPEN_CLIENT_KEYS']},other={OTHER_KEY}",
        "SHARPEN_CONFIG_STREAM_MAX": "3",
        "SHARPEN_CONFIG_STREAM_MAX_PER_KEY": "2",
        "SHARPEN_CONFIG_STREAM_HEARTBEAT_S": "0.2",
    }
    server = LiveServer(env, log=tmp_path / "server.log").start()
    yield server
    server.stop()


def _running(admin: httpx.Client, key: str) -> httpx.Response | None:
    response = admin.get("/v1/config", headers=CLIENT)
    entry = response.json()["experiments"].get(key) or {}
    return response if entry.get("status") == "running" else None


def _config(event: ServerEvent) -> dict[str, object]:
    assert event.kind == "config", event
    document = json.loads(event.data)
    assert isinstance(document, dict)
    return document


def test_stream_pushes_every_change_and_resumes(stream_server: LiveServer) -> None:
    url = stream_server.url
    with httpx.Client(base_url=url, timeout=5) as admin:
        start(admin, "st-roll")
        served = wait_for(
            lambda: _running(admin, "st-roll"), what="the started experiment in GET /v1/config"
        )
        etag = served.headers["ETag"].strip('"')
        reader = _Reader(f"{url}/v1/config/stream", CLIENT)
        try:
            first = reader.next()
            assert first.event_id == etag
            experiments = _config(first)["experiments"]
            assert isinstance(experiments, dict)
            assert experiments["st-roll"]["status"] == "running"
            assert reader.status == 200
            act(admin, "st-roll", "rollback")
            pushed = reader.next()
            experiments = _config(pushed)["experiments"]
            assert isinstance(experiments, dict)
            assert experiments["st-roll"]["status"] == "rolled_back"
            assert pushed.event_id != etag
            latest = admin.get("/v1/config", headers=CLIENT).headers["ETag"].strip('"')
            assert pushed.event_id == latest
        finally:
            reader.close()
        # A reconnect that already has the latest config is told so, not sent it again.
        resumed = _Reader(f"{url}/v1/config/stream", {**CLIENT, "Last-Event-ID": latest})
        try:
            event = resumed.next()
            assert (event.kind, event.event_id) == ("unchanged", latest)
        finally:
            resumed.close()


def test_stream_needs_a_client_key(stream_server: LiveServer) -> None:
    response = httpx.get(f"{stream_server.url}/v1/config/stream", timeout=5)
    assert response.status_code == 401


def test_streams_are_bounded_per_key_and_per_worker(stream_server: LiveServer) -> None:
    url = f"{stream_server.url}/v1/config/stream"
    readers = [_Reader(url, CLIENT) for _ in range(2)]
    try:
        for reader in readers:
            assert reader.next().kind in ("config", "unchanged")
        third = httpx.get(url, headers=CLIENT, timeout=5)
        assert third.status_code == 429, third.text
        assert int(third.headers["Retry-After"]) > 0
        assert "config streams" in third.json()["error"]["message"]
        # Another key may still open one (3 per worker), then the worker is full.
        other = {"Authorization": f"Bearer {OTHER_KEY}"}
        readers.append(_Reader(url, other))
        assert readers[-1].next().kind in ("config", "unchanged")
        full = httpx.get(url, headers=other, timeout=5)
        assert full.status_code == 503, full.text
        assert int(full.headers["Retry-After"]) > 0
    finally:
        for reader in readers:
            reader.close()
    # Closed streams give their places back.

    def admitted() -> bool:
        with httpx.stream("GET", url, headers=CLIENT, timeout=5) as response:
            return response.status_code == 200

    wait_for(admitted, what="a stream admitted once the others closed")


def test_open_streams_do_not_hold_up_a_graceful_shutdown(stream_server: LiveServer) -> None:
    reader = _Reader(f"{stream_server.url}/v1/config/stream", CLIENT)
    try:
        assert reader.next().kind in ("config", "unchanged")
        # Without the streams ending, uvicorn would wait for them until killed (-9); it
        # re-raises the SIGTERM it handled once shut down.
        assert stream_server.stop(signal.SIGTERM) in (0, -signal.SIGTERM)
        wait_for(reader.ended.is_set, what="the stream ended by the shutdown")
    finally:
        reader.close()


def test_sdk_clients_follow_a_rollback_through_the_stream(live_server: LiveServer) -> None:
    url = live_server.url
    with httpx.Client(base_url=url, timeout=5) as admin:
        start(admin, "st-sdk")
        # Polling off: only the stream can bring the rollback.
        with sharpen.Client(url, CLIENT_KEY, poll_interval=None, timeout=5) as client:
            assert client.assign("st-sdk", "u-1").reason == "assigned"

            async def async_side() -> None:
                async with sharpen.AsyncClient(url, CLIENT_KEY, poll_interval=None) as aclient:
                    assert (await aclient.assign("st-sdk", "u-1")).reason == "assigned"
                    await asyncio.to_thread(act, admin, "st-sdk", "rollback")

                    async def rolled_back() -> bool:
                        return (await aclient.assign("st-sdk", "u-1")).reason == "rolled_back"

                    await await_for(rolled_back, what="the async client serving the rollback")
                    assert aclient.stats.config_pushes >= 2

            asyncio.run(async_side())
            wait_for(
                lambda: client.assign("st-sdk", "u-1").reason == "rolled_back",
                what="the sync client serving the rollback",
            )
            stats = client.stats
            assert stats.config_pushes >= 2
            assert stats.config_loads == 0
