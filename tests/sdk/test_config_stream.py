"""The clients' config stream against a scripted service: a pushed config is installed
without polling, the service's refusal falls back to polling, the wire parser."""

from __future__ import annotations

import json
from typing import Any

import httpx

from sharpen._stream import EventParser, ServerEvent, bare_etag
from tests._wait import wait_for
from tests.sdk.fakes import FakeService, document, entry


def _sse(config: dict[str, Any], event_id: str) -> bytes:
    return f"id: {event_id}\nevent: config\ndata: {json.dumps(config)}\n\n: ping\n\n".encode()


def test_a_pushed_config_is_installed_without_polling(
    service: FakeService, make_client: Any
) -> None:
    pushed = document(entry(status="rolled_back", version=3))

    def stream(request: httpx.Request) -> httpx.Response:
        assert request.headers["Accept"] == "text/event-stream"
        return httpx.Response(200, content=_sse(pushed, "v3"))

    service.responders["/v1/config/stream"] = stream
    client = make_client(stream=True, poll_interval=30.0)
    wait_for(lambda: client.assign("fraud-v7", "u1").reason == "rolled_back", what="the push")
    assert client.config is not None and client.config.etag == '"v3"'
    assert client.stats.config_pushes >= 1
    assert service.gets() == []  # never polled
    # Reconnects (the scripted stream ends at once) resume from the config held.
    wait_for(lambda: len(service.gets("/v1/config/stream")) >= 2, what="a reconnect")
    assert service.gets("/v1/config/stream")[-1].headers["Last-Event-ID"] == "v3"


def test_a_refused_stream_falls_back_to_polling(service: FakeService, make_client: Any) -> None:
    service.responders["/v1/config/stream"] = lambda _: httpx.Response(
        503, headers={"Retry-After": "1"}
    )
    client = make_client(stream=True, poll_interval=30.0)
    assert client.config is not None  # loaded by the poll that stands in for the stream
    stats = client.stats
    assert stats.config_loads >= 1 and stats.stream_errors >= 1 and stats.config_pushes == 0


def test_the_event_parser_keeps_what_the_service_sends() -> None:
    parser = EventParser()
    lines = [": ping", "", "id: e1", "event: config", "data: {}", "", "data:x", ""]
    events = [e for e in map(parser.feed, lines) if e is not None]
    assert events == [ServerEvent("config", "e1", "{}"), ServerEvent("message", "e1", "x")]
    assert bare_etag('W/"abc"') == bare_etag('"abc"') == "abc"
