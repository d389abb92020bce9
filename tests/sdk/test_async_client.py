"""The asyncio client: the same essentials as the sync one."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

import sharpen
from sharpen import AsyncClient, RetryPolicy
from tests._wait import await_for
from tests.sdk.fakes import API_KEY, FakeService, document, entry

FAST_RETRY = RetryPolicy(base_delay=0.01, max_delay=0.02)
AsyncResponder = Callable[[httpx.Request], Awaitable[httpx.Response]]


class AsyncFake:
    """FakeService behind an async handler, with optional async responders."""

    def __init__(self, service: FakeService) -> None:
        self.service = service
        self.responders: dict[str, AsyncResponder] = {}

    async def handler(self, request: httpx.Request) -> httpx.Response:
        responder = self.responders.get(request.url.path)
        if responder is not None:
            self.service.requests.append(request)
            return await responder(request)
        return self.service.handler(request)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handler)


@pytest.fixture
def service() -> FakeService:
    return FakeService()


@pytest.fixture
def fake(service: FakeService) -> AsyncFake:
    return AsyncFake(service)


@pytest.fixture
async def make_client(fake: AsyncFake) -> AsyncIterator[Any]:
    clients: list[AsyncClient] = []

    def make(**kwargs: Any) -> AsyncClient:
        kwargs.setdefault("transport", fake.transport())
        kwargs.setdefault("poll_interval", None)
        kwargs.setdefault("flush_interval", 3600.0)
        kwargs.setdefault("retry", FAST_RETRY)
        client = AsyncClient("http://sharpen.test", API_KEY, **kwargs)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose(timeout=5.0)


def _candidate_unit() -> str:
    config = sharpen.core.parse_experiment(entry())
    return next(
        f"u{i}"
        for i in range(1000)
        if sharpen.core.evaluate(config, f"u{i}").variant == "candidate"
    )


async def test_construction_does_no_io_and_first_assign_loads(
    service: FakeService, make_client: Any
) -> None:
    client = make_client()
    assert service.requests == []
    result = await client.assign("fraud-v7", _candidate_unit())
    assert (result.variant, result.reason, result.in_experiment) == ("candidate", "assigned", True)
    assert service.gets()[0].headers["Authorization"] == f"Bearer {API_KEY}"


async def test_config_load_and_etag_304(service: FakeService, make_client: Any) -> None:
    client = make_client()
    await client.start()
    assert await client.refresh() is False
    assert service.gets()[-1].headers["If-None-Match"] == '"v1"'
    service.set_config(document(entry(status="stopped"), etag='"v2"'))
    assert await client.refresh() is True
    assert (await client.assign("fraud-v7", "u1")).reason == "stopped"
    assert (client.stats.config_loads, client.stats.config_not_modified) == (2, 1)


async def test_background_polling(service: FakeService, make_client: Any) -> None:
    client = make_client(poll_interval=0.02)
    await client.start()
    service.set_config(document(entry(status="rolled_back"), etag='"v2"'))

    async def reason() -> str:
        result: sharpen.Assignment = await client.assign("fraud-v7", "u1")
        return result.reason

    await await_for(
        reason,
        until=lambda got: got == "rolled_back",
        what="the poll to pick up the rollback",
        interval_s=0.005,
    )


async def test_remote_mode(service: FakeService, fake: AsyncFake, make_client: Any) -> None:
    async def answer(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        return httpx.Response(
            200,
            json={
                "experiment": body["experiment"],
                "variant": "candidate",
                "payload": {},
                "in_experiment": True,
                "reason": "assigned",
            },
        )

    fake.responders["/v1/assign"] = answer
    client = make_client(mode="remote")
    result = await client.assign("fraud-v7", "u1", {"country": "US"})
    assert (result.variant, result.reason) == ("candidate", "assigned")
    (request,) = service.posted("/v1/assign")
    assert json.loads(request.content) == {
        "experiment": "fraud-v7",
        "unit_id": "u1",
        "attributes": {"country": "US"},
    }


async def test_remote_failure_falls_back_locally(
    service: FakeService, fake: AsyncFake, make_client: Any
) -> None:
    async def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("down", request=request)

    fake.responders["/v1/assign"] = down
    client = make_client(mode="remote")
    unit = _candidate_unit()
    result = await client.assign("fraud-v7", unit)
    assert (result.variant, result.reason) == ("candidate", "assigned")
    assert client.stats.remote_errors == 1


async def test_transport_raising_everywhere_gives_fallback(
    service: FakeService, make_client: Any
) -> None:
    service.fail = True
    client = make_client(mode="remote")
    result = await client.assign("fraud-v7", "u1", default="baseline")
    assert (result.variant, result.reason, result.in_experiment) == ("baseline", "fallback", False)


async def test_hanging_service_answers_within_timeout(fake: AsyncFake, make_client: Any) -> None:
    release = asyncio.Event()

    async def hang(request: httpx.Request) -> httpx.Response:
        await release.wait()
        return httpx.Response(503)

    fake.responders["/v1/config"] = hang
    fake.responders["/v1/assign"] = hang
    for mode in ("local", "remote"):
        client = make_client(mode=mode, timeout=0.1)
        result = await client.assign("fraud-v7", "u1", default="baseline")
        assert not release.is_set()
        assert (result.variant, result.reason) == ("baseline", "fallback")
    release.set()


async def test_exposures_and_events_are_batched(service: FakeService, make_client: Any) -> None:
    client = make_client(max_batch=2)
    unit = _candidate_unit()
    await client.assign("fraud-v7", unit)
    await client.assign("fraud-v7", unit)
    event_ids = [client.track("fraud-v7", f"u{i}", {"n": i}) for i in range(5)]
    assert await client.flush()
    assert [e["event_id"] for e in service.events()] == event_ids
    assert [len(json.loads(r.content)["events"]) for r in service.posted("/v1/events")] == [2, 2, 1]
    (exposure,) = service.exposures()
    assert (exposure["unit_id"], exposure["variant"], exposure["version"]) == (unit, "candidate", 2)


async def test_full_batch_is_sent_by_the_background_task(
    service: FakeService, make_client: Any
) -> None:
    client = make_client(max_batch=3)
    await client.start()
    for i in range(3):
        client.track("fraud-v7", f"u{i}", {"n": i})
    await await_for(lambda: client.stats.events_sent, until=lambda n: n == 3, what="3 events sent")


async def test_retry_reuses_the_idempotency_key(service: FakeService, make_client: Any) -> None:
    answers = iter([httpx.Response(503), httpx.Response(429, headers={"Retry-After": "0"}), None])
    service.responders["/v1/events"] = lambda r: next(answers)
    client = make_client()
    client.track("fraud-v7", "u1", {"n": 1})
    assert await client.flush()
    posts = service.posted("/v1/events")
    assert len(posts) == 3
    assert len({r.headers["Idempotency-Key"] for r in posts}) == 1
    assert (client.stats.events_sent, client.stats.retries) == (1, 2)


async def test_4xx_rejected_without_retry(service: FakeService, make_client: Any) -> None:
    service.responders["/v1/events"] = lambda r: httpx.Response(400)
    client = make_client()
    client.track("fraud-v7", "u1", {"n": 1})
    assert await client.flush()
    assert len(service.posted("/v1/events")) == 1
    assert client.stats.events_rejected == 1


async def test_bounded_buffer_drops_and_counts(make_client: Any) -> None:
    client = make_client(max_batch=2, max_buffer=3)
    for i in range(7):
        client.track("fraud-v7", f"u{i}", {"n": i})  # no await: the sender cannot run
    assert (client.stats.events_pending, client.stats.events_dropped) == (3, 4)


async def test_aclose_flushes(service: FakeService, fake: AsyncFake) -> None:
    async with AsyncClient(
        "http://sharpen.test",
        API_KEY,
        transport=fake.transport(),
        poll_interval=None,
        flush_interval=3600,
    ) as client:
        await client.assign("fraud-v7", "u1")
        for i in range(3):
            client.track("fraud-v7", f"u{i}", {"n": i})
        assert service.posted("/v1/events") == []
    assert len(service.events()) == 3
    assert len(service.exposures()) == 1
    assert client.stats.events_pending == 0
    assert (await client.assign("fraud-v7", "u1")).reason == "assigned"
    with pytest.raises(sharpen.ClientClosedError):
        await client.refresh()


def test_track_without_a_running_loop_queues_until_flush(
    service: FakeService, fake: AsyncFake
) -> None:
    client = AsyncClient(
        "http://sharpen.test", API_KEY, transport=fake.transport(), poll_interval=None
    )
    client.track("fraud-v7", "u1", {"n": 1})
    assert client.stats.events_pending == 1
    asyncio.run(client.aclose())
    assert len(service.events()) == 1
