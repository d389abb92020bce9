"""Fixtures of the synchronous client's tests: an in-memory service and a client factory."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from sharpen import Client, RetryPolicy
from tests.sdk.fakes import API_KEY, FakeService

FAST_RETRY = RetryPolicy(base_delay=0.01, max_delay=0.02)


@pytest.fixture
def service() -> FakeService:
    return FakeService()


@pytest.fixture
def make_client(service: FakeService) -> Iterator[Any]:
    clients: list[Client] = []

    def make(**kwargs: Any) -> Client:
        kwargs.setdefault("transport", service.transport())
        kwargs.setdefault("poll_interval", None)
        kwargs.setdefault("flush_interval", 3600.0)
        kwargs.setdefault("retry", FAST_RETRY)
        client = Client("http://sharpen.test", API_KEY, **kwargs)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close(timeout=5.0)
