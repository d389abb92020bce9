"""The config stream's wire form (``GET /v1/config/stream``, server-sent events), without I/O.

The clients read lines off the HTTP response and feed them to :class:`EventParser`;
``ClientCore.apply_stream_event`` installs what a complete event carries.  Only the parts
of the SSE format the service sends are kept (``id``, ``event``, ``data``, comments).
"""

from __future__ import annotations

from typing import Final, NamedTuple

__all__ = [
    "RECONNECT_SPREAD_S",
    "STREAM_MAX_BACKOFF_S",
    "STREAM_PATH",
    "STREAM_READ_TIMEOUT_S",
    "EventParser",
    "ServerEvent",
    "bare_etag",
]

STREAM_PATH: Final = "/v1/config/stream"

STREAM_READ_TIMEOUT_S: Final = 45.0
"""No byte for this long (the service pings every 15 s): the stream is dead, reconnect."""

RECONNECT_SPREAD_S: Final = 2.0
"""After a stream the service ended (a restart), reconnect after a uniform draw in
``[0.1, this]`` seconds: a fleet comes back spread out, not all at once."""

STREAM_MAX_BACKOFF_S: Final = 30.0
"""The longest wait between failed stream attempts (1 s, 2 s, 4 s ... jittered)."""


class ServerEvent(NamedTuple):
    kind: str
    event_id: str | None
    data: str


class EventParser:
    """Feed it lines (without their line break); it returns each complete event once."""

    __slots__ = ("_data", "_id", "_kind")

    def __init__(self) -> None:
        self._kind = ""
        self._id: str | None = None
        self._data: list[str] = []

    def feed(self, line: str) -> ServerEvent | None:
        if not line:
            if not self._data and not self._kind:
                return None
            event = ServerEvent(self._kind or "message", self._id, "\n".join(self._data))
            self._kind, self._data = "", []
            return event
        if line.startswith(":"):
            return None  # a comment: the service's heartbeat
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._kind = value
        elif name == "id":
            self._id = value
        return None


def bare_etag(etag: str) -> str:
    """``W/"abc"`` or ``"abc"`` -> ``abc`` (how the stream's event ids spell an ETag)."""
    tag = etag.strip()
    if tag.startswith("W/"):
        tag = tag[2:]
    return tag.strip('"')
