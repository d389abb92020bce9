"""Decoding a ``POST /v1/events`` body: typed in one pass when it is clean, else event by event.

The fast path decodes the whole body with msgspec into typed structs (every size rule is
checked by the decoder itself, in C). When that fails, the body is skimmed (its shape and
event count checked before any per-event work, see ``_bodies``) and each event decoded on
its own, so that the bad ones are named by index and field (``events.3.values.latency_ms``)
and the others can still be kept. Only the first ``MAX_DETAILS`` bad events get the costly
explanation that names a bad dict entry; the rest get msgspec's own message.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Annotated, Any, Protocol, cast

import msgspec

from service.bodies import MsgspecError, explain, skim
from service.errors import MAX_DETAILS, FieldError, field_error
from service.settings import Settings
from sharpen import MAX_UNIT_ID

__all__ = ["VALUE_LIMIT", "Decoded", "EventFields", "decode_events"]

VALUE_LIMIT = 1e15
"""Largest magnitude of a value or covariate: squares and sums stay finite and exact enough."""

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Number = Annotated[float, msgspec.Meta(ge=-VALUE_LIMIT, le=VALUE_LIMIT)]
Scalar = str | float | bool | None


class EventFields(Protocol):
    """An event as decoded (a msgspec struct built for the settings' limits, see _schema)."""

    event_id: str
    experiment: str
    unit_id: str | int
    timestamp: str | float
    values: dict[str, float]
    attributes: dict[str, Scalar] | None
    variant: str | None
    covariates: dict[str, float] | None


@dataclass(frozen=True, slots=True)
class _Schema:
    event: msgspec.json.Decoder[Any]
    dicts: dict[str, Any]
    max_events: int


@functools.lru_cache(maxsize=16)
def _schema(max_values: int, max_attributes: int, max_chars: int, max_events: int) -> _Schema:
    """The msgspec types of an events body for these limits: every size rule is checked by
    the decoder itself (in C), the hot loop only checks what needs Python."""
    text = Annotated[str, msgspec.Meta(max_length=max_chars)]
    values = Annotated[dict[Name, Number], msgspec.Meta(max_length=max_values)]
    attributes = Annotated[
        dict[text, text | float | bool | None],
        msgspec.Meta(max_length=max_attributes),
    ]
    unit_id = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_UNIT_ID)]
    event = msgspec.defstruct(
        "EventIn",
        [
            ("event_id", Annotated[str, msgspec.Meta(min_length=1, max_length=128)]),
            ("experiment", Annotated[str, msgspec.Meta(min_length=1, max_length=64)]),
            ("unit_id", unit_id | int),
            ("timestamp", str | float),
            ("values", values),
            ("attributes", attributes | None, None),
            ("variant", str | None, None),
            ("covariates", values | None, None),
        ],
        gc=False,
    )
    dicts = {"values": values, "covariates": values, "attributes": attributes}
    return _Schema(msgspec.json.Decoder(event), dicts, max_events)


def _schema_for(settings: Settings) -> _Schema:
    return _schema(
        settings.event_max_values,
        settings.event_max_attributes,
        settings.event_max_attribute_chars,
        settings.events_max_batch,
    )


@dataclass(slots=True)
class Decoded:
    """The events of a body, ``None`` where one could not be decoded, and why not."""

    events: list[EventFields | None]
    errors: list[FieldError] = field(default_factory=list)


def _dict_entries(index: int, raw: bytes, error: MsgspecError, schema: _Schema) -> list[FieldError]:
    """Name the entries at fault of a ``values``/``covariates``/``attributes`` dict (msgspec
    says ``[...]`` for a dict entry)."""
    where = f"events.{index}"
    name = error.path[0] if error.path else ""
    if name not in schema.dicts or not ("..." in error.path or error.in_key):
        return []
    try:
        mapping = msgspec.json.decode(raw)
    except (msgspec.DecodeError, RecursionError):
        return []
    mapping = mapping.get(name) if isinstance(mapping, dict) else None
    errors = []
    if isinstance(mapping, dict):
        for key, value in mapping.items():
            try:
                msgspec.convert({key: value}, schema.dicts[name])
            except msgspec.ValidationError as inner:
                message = MsgspecError(inner).message
                errors.append(field_error(f"{where}.{name}.{key}", message, index=index))
    return errors


def _bad_event(
    index: int, raw: bytes, exc: Exception, schema: _Schema, explained: int
) -> list[FieldError]:
    if isinstance(exc, msgspec.ValidationError):
        error = MsgspecError(exc)
        if not error.path and error.message.startswith("Expected `object`"):
            return [field_error(f"events.{index}", "must be an object", index=index)]
        if explained < MAX_DETAILS:
            named = _dict_entries(index, raw, error, schema)
            if named:
                return named
    return [explain(exc, f"events.{index}", index)]


def decode_events(body: bytes, settings: Settings) -> Decoded:
    """Decode a ``POST /v1/events`` body; raise a 422 for a body that is not one at all
    (not JSON, not ``{"events": [...]}``, no events, too many, nested too deeply)."""
    schema = _schema_for(settings)
    items = skim(body, "events", schema.max_events, noun="events")
    decode = schema.event.decode
    out = Decoded([])
    events, errors = out.events, out.errors
    bad = 0
    for index, raw in enumerate(items):
        try:
            events.append(cast(EventFields, decode(raw)))
        except (msgspec.ValidationError, msgspec.DecodeError, RecursionError) as exc:
            events.append(None)
            errors += _bad_event(index, bytes(raw), exc, schema, bad)
            bad += 1
    return out
