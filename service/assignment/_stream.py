"""Config push for ``GET /v1/config/stream``: every connection of a worker fed from its cache.

The worker's :class:`~service.assignment.ConfigCache` holds the one pub/sub subscription
(``ConfigFeed``); when it installs a new config it calls :meth:`ConfigStreams.publish`,
which wakes every open stream. A woken stream sends the config it finds current, so a
slow client skips the versions it missed instead of queueing them (nothing per change is
buffered per connection).

Server-sent events, one kind per change::

    id: <etag>
    event: config
    data: <the GET /v1/config body, one line>

``event: unchanged`` (same ``id``) answers a reconnect whose ``Last-Event-ID`` is still
current; a ``: ping`` comment every ``heartbeat_s`` keeps idle connections and their
read timeouts alive. On shutdown (SIGINT/SIGTERM, or the component stopping) every stream
ends, so a graceful shutdown is not held up by them and clients reconnect elsewhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import AsyncIterator, Callable
from types import FrameType
from typing import Final

from service.assignment._cache import ConfigCache
from service.assignment._compile import CompiledConfig
from service.errors import RateLimited, Unavailable

__all__ = ["ConfigStreams", "StreamTicket"]

log = logging.getLogger("sharpen.assignment")

RETRY_AFTER_S: Final = 5
_PING: Final = b": ping\n\n"
_SIGNALS: Final = (signal.SIGINT, signal.SIGTERM)

_Handler = Callable[[int, FrameType | None], object]


class StreamTicket:
    """One open stream: its key's name and the event that wakes it."""

    __slots__ = ("key", "wake")

    def __init__(self, key: str) -> None:
        self.key = key
        self.wake = asyncio.Event()


class ConfigStreams:
    """A component bounding and feeding the streaming connections of one worker."""

    def __init__(
        self,
        cache: ConfigCache,
        *,
        max_connections: int,
        max_per_key: int,
        heartbeat_s: float,
    ) -> None:
        self._cache = cache
        self._max = max_connections
        self._max_per_key = max_per_key
        self._heartbeat_s = heartbeat_s
        self._open: set[StreamTicket] = set()
        self._per_key: dict[str, int] = {}
        self._closing = False
        self._restore: list[tuple[int, _Handler]] = []
        cache.on_reload(self.publish)

    @property
    def open_count(self) -> int:
        return len(self._open)

    async def start(self) -> None:
        self._closing = False
        self._chain_signals()

    async def stop(self) -> None:
        self.close_all()
        for sig, previous in self._restore:
            with contextlib.suppress(ValueError):
                signal.signal(sig, previous)
        self._restore = []

    def open(self, key: str) -> StreamTicket:
        """Admit one more stream for the key named ``key``, or refuse (429/503 + Retry-After)."""
        if self._closing:
            raise Unavailable("the server is shutting down; reconnect", RETRY_AFTER_S)
        if len(self._open) >= self._max:
            raise Unavailable(
                f"this worker holds its {self._max} config streams; poll GET /v1/config "
                "or reconnect later",
                RETRY_AFTER_S,
            )
        held = self._per_key.get(key, 0)
        if held >= self._max_per_key:
            raise RateLimited(
                f"this API key holds {held} config streams on this worker (the limit); poll "
                "GET /v1/config or reconnect later",
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )
        ticket = StreamTicket(key)
        self._open.add(ticket)
        self._per_key[key] = held + 1
        return ticket

    def release(self, ticket: StreamTicket) -> None:
        if ticket not in self._open:
            return
        self._open.discard(ticket)
        left = self._per_key[ticket.key] - 1
        if left:
            self._per_key[ticket.key] = left
        else:
            del self._per_key[ticket.key]

    def publish(self, _config: CompiledConfig | None = None) -> None:
        """Wake every stream (each reads the current config when it runs)."""
        for ticket in self._open:
            ticket.wake.set()

    def close_all(self) -> None:
        """End every stream after what it is sending; refuse new ones."""
        self._closing = True
        self.publish()

    async def events(self, ticket: StreamTicket, last_event_id: str | None) -> AsyncIterator[bytes]:
        """The stream's bytes: the current config (unless ``last_event_id`` is it), then one
        event per change and pings; ends on :meth:`close_all`. Releases ``ticket``."""
        sent = _bare(last_event_id) if last_event_id else None
        first = True
        try:
            while True:
                ticket.wake.clear()
                current = self._cache.current
                if current is not None and current.etag != sent:
                    yield _config_event(current)
                    sent = current.etag
                elif first and current is not None:
                    yield _event(
                        "unchanged", current.etag, b'{"etag":"%s"}' % current.etag.encode()
                    )
                first = False
                if self._closing:
                    return
                try:
                    await asyncio.wait_for(ticket.wake.wait(), self._heartbeat_s)
                except TimeoutError:
                    yield _PING
        finally:
            self.release(ticket)

    def _chain_signals(self) -> None:
        """End the streams when the server is told to stop: servers drain open requests
        before the app's shutdown runs, and a stream never finishes on its own."""
        if threading.current_thread() is not threading.main_thread():
            return  # an in-process test client: stop() ends them
        loop = asyncio.get_running_loop()
        for sig in _SIGNALS:
            previous = signal.getsignal(sig)
            if not callable(previous):
                continue  # the server does not handle it: nothing drains, nothing to chain

            def handler(
                signum: int,
                frame: FrameType | None,
                previous: _Handler = previous,
            ) -> None:
                loop.call_soon_threadsafe(self.close_all)
                previous(signum, frame)

            signal.signal(sig, handler)
            self._restore.append((sig, previous))


def _bare(tag: str) -> str:
    tag = tag.strip()
    if tag.startswith("W/"):
        tag = tag[2:]
    return tag.strip('"')


def _event(kind: str, event_id: str, data: bytes) -> bytes:
    return b"id: %s\nevent: %s\ndata: %s\n\n" % (event_id.encode(), kind.encode(), data)


def _config_event(config: CompiledConfig) -> bytes:
    return _event("config", config.etag, config.body)
