"""Client counters: what was loaded, sent, dropped and rejected."""

from __future__ import annotations

import threading
from dataclasses import dataclass, fields

__all__ = ["ClientStats", "Counters"]


@dataclass(frozen=True, slots=True)
class ClientStats:
    """A snapshot of a client's counters (``client.stats``).

    ``*_dropped`` items never left the process because the buffer was full
    (or the client was closed); ``*_rejected`` were refused by the service
    (a 4xx other than 408/429, or, for events, listed as refused in a 202
    whose other events were kept) and are not retried; ``*_failed`` were given
    up after the retries ran out; ``*_pending`` are still queued.
    ``events_sent`` counts the events the service kept (new or duplicate).

    ``predictions_*`` count :meth:`~sharpen.Client.log_prediction` records and
    ``labels_*`` :meth:`~sharpen.Client.label` labels the same way; a prediction or label
    the client refused itself (the service would have) counts as rejected.
    ``predictions_sent`` counts what the service kept, ``predictions_duplicates`` of
    them repeated an earlier ``record_id``; ``labels_unmatched`` of the ``labels_sent``
    named no stored record (the service does not keep those).

    ``config_pushes`` counts the configs the stream delivered (``GET /v1/config/stream``;
    ``config_loads`` those polled), ``stream_errors`` the streams that failed or were
    refused (polling stands in until one reconnects).
    """

    config_loads: int = 0
    config_not_modified: int = 0
    config_errors: int = 0
    config_pushes: int = 0
    stream_errors: int = 0
    config_skipped_entries: int = 0
    remote_errors: int = 0
    exposures_pending: int = 0
    exposures_sent: int = 0
    exposures_dropped: int = 0
    exposures_rejected: int = 0
    exposures_failed: int = 0
    events_pending: int = 0
    events_sent: int = 0
    events_duplicates: int = 0
    events_dropped: int = 0
    events_rejected: int = 0
    events_failed: int = 0
    predictions_pending: int = 0
    predictions_sent: int = 0
    predictions_duplicates: int = 0
    predictions_dropped: int = 0
    predictions_rejected: int = 0
    predictions_failed: int = 0
    labels_pending: int = 0
    labels_sent: int = 0
    labels_unmatched: int = 0
    labels_dropped: int = 0
    labels_rejected: int = 0
    labels_failed: int = 0
    retries: int = 0


_NAMES = frozenset(f.name for f in fields(ClientStats))


class Counters:
    """Thread-safe counters behind :class:`ClientStats` (off the hot path)."""

    __slots__ = ("_lock", "_values")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, int] = dict.fromkeys(_NAMES, 0)

    def add(self, name: str, amount: int = 1) -> None:
        if name not in _NAMES:
            raise KeyError(name)
        with self._lock:
            self._values[name] += amount

    def set(self, name: str, value: int) -> None:
        if name not in _NAMES:
            raise KeyError(name)
        with self._lock:
            self._values[name] = value

    def snapshot(self, **live: int) -> ClientStats:
        with self._lock:
            values = dict(self._values)
        values.update(live)
        return ClientStats(**values)
