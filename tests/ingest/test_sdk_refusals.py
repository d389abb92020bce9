"""The SDK (sync and async) against a live service: a typo in one code path costs only its
own events. The valid events of the batch are kept, the refused ones are counted in
``client.stats.events_rejected``, logged once per kind of refusal, and never resent."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator

import httpx
import pytest
import redis

import sharpen
from service.store import keys
from tests._live import LiveServer
from tests.conftest import ADMIN, CLIENT_KEY
from tests.ingest._helpers import spec


@pytest.fixture
def url(live_server: LiveServer) -> Iterator[str]:
    for key in ("checkout", "search"):
        assert httpx.post(f"{live_server.url}/v1/experiments", json=spec(key), headers=ADMIN)
        start = httpx.post(f"{live_server.url}/v1/experiments/{key}/start", headers=ADMIN)
        assert start.status_code == 200
    yield live_server.url


def _ingested(redis_url: str, key: str) -> int:
    raw = redis.Redis.from_url(redis_url).hget(keys.aggregation_meta(key), "ingested")
    return int(raw or 0)


def _track(client: sharpen.Client | sharpen.AsyncClient, batch: int) -> None:
    """25 events for each experiment and one for a typo'd experiment name."""
    for i in range(25):
        client.track("checkout", f"u{batch}-{i}", {"revenue": 1.0}, variant="candidate")
        client.track("search", f"u{batch}-{i}", {"revenue": 2.0}, variant="baseline")
    client.track("serach", f"u{batch}-x", {"revenue": 3.0}, variant="baseline")


def _refusal_logs(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]


def test_sync_client_keeps_the_valid_events_of_a_batch(
    url: str, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="sharpen")
    with sharpen.Client(url, CLIENT_KEY, poll_interval=None, flush_interval=3600) as client:
        for batch in range(2):
            _track(client, batch)
            assert client.flush()
        stats = client.stats
    assert (stats.events_sent, stats.events_rejected, stats.retries) == (100, 2, 0)
    assert (_ingested(redis_url, "checkout"), _ingested(redis_url, "search")) == (50, 50)
    logs = _refusal_logs(caplog)
    assert len(logs) == 1, logs  # one kind of refusal, logged once for both batches
    assert "events.50.experiment" in logs[0] and "'serach' does not exist" in logs[0]


def test_async_client_keeps_the_valid_events_of_a_batch(
    url: str, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="sharpen")

    async def scenario() -> sharpen.ClientStats:
        async with sharpen.AsyncClient(
            url, CLIENT_KEY, poll_interval=None, flush_interval=3600
        ) as client:
            for batch in range(2):
                _track(client, batch)
                assert await client.flush()
            # Another kind of refusal is logged once too.
            client.track("checkout", "late", {"revenue": 1.0}, timestamp=time.time() - 30 * 86_400)
            assert await client.flush()
            return client.stats

    stats = asyncio.run(scenario())
    assert (stats.events_sent, stats.events_rejected) == (100, 3)
    assert (_ingested(redis_url, "checkout"), _ingested(redis_url, "search")) == (50, 50)
    logs = _refusal_logs(caplog)
    assert len(logs) == 2, logs
    assert "HTTP 422" in logs[1] and "events.0.timestamp" in logs[1]  # nothing valid: a 422


def test_the_unit_id_limit_holds_in_the_sdk_too(url: str) -> None:
    with sharpen.Client(url, CLIENT_KEY, poll_interval=None) as client:
        too_long = "u" * (sharpen.MAX_UNIT_ID + 1)
        with pytest.raises(sharpen.InvalidEventError, match="unit_id"):
            client.track("checkout", too_long, {"revenue": 1.0})
        assignment = client.assign("checkout", too_long)
        assert (assignment.in_experiment, assignment.reason) == (False, "invalid_unit")
        assert client.assign("checkout", "u" * sharpen.MAX_UNIT_ID).in_experiment
        assert client.flush()
        assert (client.stats.exposures_sent, client.stats.exposures_rejected) == (1, 0)
