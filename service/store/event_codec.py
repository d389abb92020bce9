"""How outcome events and exposures are laid out in their Redis streams.

An events-stream entry holds one accepted batch of one experiment:

- ``n``: how many of its events were new (not duplicates) when appended;
- ``d``: a JSON array of :class:`StoredEvent` (array-like, compact), in request order;
- ``m``: present only when some were duplicates: one character per event, ``1`` = new,
  ``0`` = a duplicate that must not be counted.

An exposures-stream entry (written by assignment) has the fields ``experiment``,
``unit_id``, ``variant``, ``version``, ``timestamp`` (epoch seconds or ISO-8601) and
``attributes`` (a JSON object); :func:`exposure_event` turns one into a value-less
:class:`StoredEvent`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Final

import msgspec

from sharpen.core import canonical

__all__ = [
    "ENTRY_COUNT",
    "ENTRY_DATA",
    "ENTRY_MASK",
    "LATEST_EPOCH",
    "TIMESTAMP_RANGE",
    "EntryError",
    "StoredEvent",
    "decode_events_entry",
    "encode_events",
    "epoch_seconds",
    "exposure_event",
    "segment_values",
]

ENTRY_COUNT = "n"
ENTRY_DATA = "d"
ENTRY_MASK = "m"


class StoredEvent(msgspec.Struct, array_like=True, gc=False):
    """One event as the aggregator sees it.

    ``variant`` is ``""`` when the unit is not in the experiment (the service
    recomputed the assignment because the event carried no variant).
    ``segments`` holds the canonical value of each of the spec's segments, in
    the spec's order (``None`` = attribute missing), or is ``None`` when the
    experiment declares no segments.
    """

    unit_id: str
    variant: str
    ts: float
    values: dict[str, float]
    covariates: dict[str, float] | None = None
    segments: list[str | None] | None = None


class EntryError(ValueError):
    """A stream entry that cannot be decoded (it goes to the dead-letter stream)."""


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(list[StoredEvent])
_attributes = msgspec.json.Decoder(dict[str, object])


def encode_events(events: Sequence[StoredEvent]) -> bytes:
    return _encoder.encode(events)


def decode_events_entry(fields: Mapping[str, str]) -> list[StoredEvent]:
    """The events of one events-stream entry that count (duplicates dropped)."""
    try:
        events = _decoder.decode(fields[ENTRY_DATA])
    except (KeyError, msgspec.DecodeError) as exc:
        raise EntryError(f"undecodable events entry: {exc}") from None
    mask = fields.get(ENTRY_MASK)
    if mask:
        if len(mask) != len(events):
            raise EntryError("events entry: mask length differs from the event count")
        events = [e for e, keep in zip(events, mask, strict=True) if keep == "1"]
    return events


def segment_values(
    segments: Sequence[str], attributes: Mapping[str, object] | None, max_chars: int
) -> list[str | None] | None:
    """Canonical values of ``segments`` in ``attributes`` (``None`` if no segments)."""
    if not segments:
        return None
    if not attributes:
        return [None] * len(segments)
    out: list[str | None] = []
    for name in segments:
        value = canonical(attributes.get(name))
        out.append(None if value is None else value[:max_chars])
    return out


LATEST_EPOCH: Final = 253_402_300_800.0
"""10000-01-01 UTC: no timestamp at or after it is read (nor any at or before 1970-01-01)."""
TIMESTAMP_RANGE: Final = "after 1970 and before the year 10000"


def epoch_seconds(raw: str | float) -> float | None:
    """Epoch seconds of an ISO-8601 string (naive = UTC) or a number; ``None`` if neither,
    or not strictly between 1970-01-01 and 10000-01-01.

    The one timestamp reader: events (``POST /v1/events``), SDK exposures
    (``POST /v1/exposures``) and stored stream entries all go through it.
    """
    if isinstance(raw, str):
        try:
            moment = datetime.fromisoformat(raw)
        except ValueError:
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        value = moment.timestamp()
    else:
        value = float(raw)
    return value if 0.0 < value < LATEST_EPOCH else None  # False for nan too


def _timestamp(raw: str | None, fallback: float) -> float:
    if not raw:
        return fallback
    try:
        value = epoch_seconds(float(raw))  # exposures carry epoch seconds as a string
    except ValueError:
        value = epoch_seconds(raw)
    return fallback if value is None else value


def exposure_event(
    entry_id: str, fields: Mapping[str, str], segments: Sequence[str], max_chars: int
) -> StoredEvent | None:
    """The unit an exposure brings in, or ``None`` when it brings none in."""
    unit_id = fields.get("unit_id")
    variant = fields.get("variant")
    if not unit_id or not variant:
        raise EntryError("exposure entry without unit_id or variant")
    if fields.get("in_experiment", "1").lower() in ("0", "false"):
        return None
    attributes: dict[str, object] | None = None
    raw = fields.get("attributes")
    if raw and segments:
        try:
            attributes = _attributes.decode(raw)
        except msgspec.DecodeError:
            attributes = None
    arrival = int(entry_id.split("-", 1)[0]) / 1000.0
    return StoredEvent(
        unit_id=unit_id,
        variant=variant,
        ts=_timestamp(fields.get("timestamp"), arrival),
        values={},
        segments=segment_values(segments, attributes, max_chars),
    )
