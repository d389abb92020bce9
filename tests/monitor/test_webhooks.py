"""Signed webhooks: verifiable signature, retries with backoff, never blocking the caller."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import httpx
import pytest

from service.metrics import Metrics
from service.monitor import SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookSender, sign, verify
from tests._wait import await_for
from tests.monitor._support import WEBHOOK_SECRET, HookHandler, Receiver, loopback_receiver


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def _sender(transport: httpx.AsyncBaseTransport, **kwargs: object) -> WebhookSender:
    options: dict[str, object] = {
        "secret": WEBHOOK_SECRET,
        "urls": ["http://hooks.test/a"],
        "metrics": Metrics(),
        "transport": transport,
        "sleep": Sleeps(),
        "backoff_s": 0.5,
        "max_attempts": 4,
        "allow_private": True,  # hooks.test is answered by the mock transport
    }
    options.update(kwargs)
    return WebhookSender(**options)  # type: ignore[arg-type]


def test_signature_round_trip() -> None:
    body = b'{"event":"experiment.shipped"}'
    header = sign(WEBHOOK_SECRET, body)
    assert header.startswith("sha256=") and len(header) == 7 + 64
    assert verify(WEBHOOK_SECRET, body, header)
    assert not verify(WEBHOOK_SECRET, body + b" ", header)
    assert not verify("another-secret-of-16", body, header)
    assert not verify(WEBHOOK_SECRET, body, None)


async def test_body_and_headers_are_signed() -> None:
    receiver = Receiver()
    sender = _sender(receiver.transport(), clock=lambda: 1_700_000_000.5)
    await sender.start()
    queued = sender.send(
        "guardrail.breached", "fraud-v7", {"metric": "recall"}, ["http://hooks.test/b"]
    )
    await sender.drain()
    await sender.stop()
    assert queued == 2
    assert sorted(str(r.url) for r in receiver.requests) == [
        "http://hooks.test/a",
        "http://hooks.test/b",
    ]
    request = receiver.requests[0]
    body = request.read()
    assert verify(WEBHOOK_SECRET, body, request.headers[SIGNATURE_HEADER])
    payload = json.loads(body)
    assert payload["event"] == "guardrail.breached"
    assert payload["experiment"] == "fraud-v7"
    assert payload["data"] == {"metric": "recall"}
    assert payload["timestamp"] == 1_700_000_000
    assert request.headers[TIMESTAMP_HEADER] == "1700000000"
    assert request.headers["X-Sharpen-Delivery"] == payload["id"]
    assert request.headers["content-type"] == "application/json"


async def test_5xx_is_retried_with_growing_backoff() -> None:
    receiver = Receiver(fail_first=2, status=503)
    sleeps = Sleeps()
    metrics = Metrics()
    sender = _sender(receiver.transport(), sleep=sleeps, metrics=metrics)
    await sender.start()
    sender.send("experiment.shipped", "fraud-v7", {})
    await sender.drain()
    await sender.stop()
    assert len(receiver.requests) == 3
    ids = {r.headers["X-Sharpen-Delivery"] for r in receiver.requests}
    assert len(ids) == 1  # one delivery id across retries: receivers deduplicate on it
    assert len(sleeps.delays) == 2
    assert 0.25 <= sleeps.delays[0] <= 0.5  # sharpen.RetryPolicy: a draw in [d/2, d]
    assert 0.5 <= sleeps.delays[1] <= 1.0
    assert metrics.sample("sharpen_webhook_deliveries_total", {"outcome": "retried"}) == 2
    assert metrics.sample("sharpen_webhook_deliveries_total", {"outcome": "delivered"}) == 1


async def test_connection_errors_are_retried_then_given_up() -> None:
    attempts = []

    def refuse(request: httpx.Request) -> httpx.Response:
        attempts.append(request)
        raise httpx.ConnectError("connection refused", request=request)

    metrics = Metrics()
    sender = _sender(httpx.MockTransport(refuse), metrics=metrics, max_attempts=3)
    await sender.start()
    sender.send("experiment.rolled_back", "fraud-v7", {})
    await sender.drain()
    await sender.stop()
    assert len(attempts) == 3
    assert metrics.sample("sharpen_webhook_deliveries_total", {"outcome": "failed"}) == 1


async def test_4xx_is_final() -> None:
    receiver = Receiver(fail_first=5, status=400)
    metrics = Metrics()
    sender = _sender(receiver.transport(), metrics=metrics)
    await sender.start()
    sender.send("srm.mismatch", "fraud-v7", {})
    await sender.drain()
    await sender.stop()
    assert len(receiver.requests) == 1
    assert metrics.sample("sharpen_webhook_deliveries_total", {"outcome": "failed"}) == 1


async def test_send_never_blocks_and_drops_when_full() -> None:
    gate = asyncio.Event()
    seen: list[httpx.Request] = []

    async def slow(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        await gate.wait()
        return httpx.Response(200)

    metrics = Metrics()
    sender = _sender(httpx.MockTransport(slow), metrics=metrics, queue_max=2, concurrency=1)
    await sender.start()
    sender.send("a", "x", {})
    await await_for(lambda: seen, what="the first one in flight, holding the only slot")
    results = [sender.send("b", "x", {}) for _ in range(5)]  # returns at once
    assert results == [1, 1, 0, 0, 0]
    assert metrics.sample("sharpen_webhook_deliveries_total", {"outcome": "dropped"}) == 3
    gate.set()
    await sender.drain()
    await sender.stop()
    assert len(seen) == 3


async def test_without_secret_nothing_is_sent() -> None:
    receiver = Receiver()
    metrics = Metrics()
    sender = _sender(receiver.transport(), secret=None, metrics=metrics)
    await sender.start()
    assert sender.send("experiment.shipped", "fraud-v7", {}) == 0
    await sender.stop()
    assert receiver.requests == []
    assert metrics.sample("sharpen_webhook_deliveries_total", {"outcome": "dropped"}) == 1


@pytest.fixture
def receiver_server() -> Iterator[tuple[str, type[HookHandler]]]:
    with loopback_receiver(answers=[500, 502]) as (port, handler):
        yield f"http://127.0.0.1:{port}/hook", handler


async def test_a_real_receiver_gets_a_verifiable_delivery_after_5xx(
    receiver_server: tuple[str, type[HookHandler]],
) -> None:
    url, handler = receiver_server
    sender = WebhookSender(
        secret=WEBHOOK_SECRET,
        urls=[url],
        metrics=Metrics(),
        backoff_s=0.01,
        max_attempts=5,
        allow_private=True,  # the receiver listens on loopback
    )
    await sender.start()
    sender.send("experiment.rolled_back", "fraud-v7", {"reason": "recall breached"})
    await sender.drain()
    await sender.stop()
    assert len(handler.received) == 3  # 500, 502, then 200
    headers, body = handler.received[-1]
    assert verify(WEBHOOK_SECRET, body, headers[SIGNATURE_HEADER])
    assert json.loads(body)["data"] == {"reason": "recall breached"}
