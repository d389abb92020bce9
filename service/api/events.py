"""``POST /v1/events`` (client scope): outcome events, validated all-or-nothing, then appended.

The body is decoded with msgspec into typed structs (the fast path). When that fails, the
body is decoded again as plain JSON and each event converted on its own, so that the 422
names every bad event's index and field (``events.3.values.latency_ms``) — slow only for
bad input. A batch with any invalid event is refused whole; a valid one is appended to its
experiments' streams (one Lua call each) before the 202 ``{accepted, duplicates}``.
"""

from __future__ import annotations

import functools
import gc
import math
import re
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Protocol, cast

import msgspec
from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from service.api._docs import json_body
from service.api.deps import identity
from service.api.responses import JSON
from service.errors import Conflict, FieldError, ValidationFailed, field_error
from service.runtime import Runtime
from service.settings import Settings
from service.spec import ENDED, ExperimentRecord
from service.spec.sdk_config import sdk_entry
from service.store import (
    AggregateStore,
    EventStore,
    ExperimentStore,
    StoredEvent,
    body_digest,
)
from sharpen import ExperimentConfig, canonical, evaluate, parse_experiment

__all__ = ["VALUE_LIMIT", "add_ingestion", "router"]

router = APIRouter(prefix="/v1", tags=["events"])

VALUE_LIMIT = 1e15
"""Largest magnitude of a value or covariate: squares and sums stay finite and exact enough."""

_MAX_ERRORS = 200
_MAX_IDEMPOTENCY_KEY = 200

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
    body: msgspec.json.Decoder[Any]
    event: type[msgspec.Struct]
    dicts: dict[str, Any]


@functools.lru_cache(maxsize=16)
def _schema(max_values: int, max_attributes: int, max_chars: int) -> _Schema:
    """The msgspec types of an events body for these limits: every size rule is checked by
    the decoder itself (in C), the hot loop only checks what needs Python."""
    text = Annotated[str, msgspec.Meta(max_length=max_chars)]
    values = Annotated[dict[Name, Number], msgspec.Meta(max_length=max_values)]
    attributes = Annotated[
        dict[text, text | float | bool | None],
        msgspec.Meta(max_length=max_attributes),
    ]
    event = msgspec.defstruct(
        "EventIn",
        [
            ("event_id", Annotated[str, msgspec.Meta(min_length=1, max_length=128)]),
            ("experiment", Annotated[str, msgspec.Meta(min_length=1, max_length=64)]),
            ("unit_id", Annotated[str, msgspec.Meta(min_length=1, max_length=256)] | int),
            ("timestamp", str | float),
            ("values", values),
            ("attributes", attributes | None, None),
            ("variant", str | None, None),
            ("covariates", values | None, None),
        ],
        gc=False,
    )
    body = msgspec.defstruct("EventsIn", [("events", list[event])])  # type: ignore[valid-type]
    dicts = {"values": values, "covariates": values, "attributes": attributes}
    return _Schema(msgspec.json.Decoder(body), event, dicts)


def _schema_for(settings: Settings) -> _Schema:
    return _schema(
        settings.event_max_values,
        settings.event_max_attributes,
        settings.event_max_attribute_chars,
    )


_path = re.compile(
    r"^(?P<message>.*?)(?: - at (?P<key>`key` in )?`\$(?P<path>[^`]*)`)?$", re.DOTALL
)
_missing = re.compile(r"^Object missing required field `(?P<name>[^`]+)`$")


# --- documentation only (the route decodes with msgspec) ---------------------------------


class EventDoc(BaseModel):
    event_id: str = Field(max_length=128, description="Unique per event; retries reuse it.")
    experiment: str
    unit_id: str | int
    timestamp: str | float = Field(description="ISO-8601 (naive = UTC) or epoch seconds.")
    values: dict[str, float] = Field(description="Raw values; metrics are defined over them.")
    attributes: dict[str, str | float | bool | None] | None = None
    variant: str | None = Field(default=None, description="What assignment returned.")
    covariates: dict[str, float] | None = Field(default=None, description="Pre-period (CUPED).")


class EventsDoc(BaseModel):
    events: list[EventDoc] = Field(min_length=1, max_length=10_000)


class EventsAccepted(BaseModel):
    accepted: int = Field(description="Events appended now.")
    duplicates: int = Field(description="Events whose event_id was seen before (not recounted).")


_EXAMPLE = {
    "events": [
        {
            "event_id": "9f1c2d7e-0001",
            "experiment": "fraud-v7",
            "unit_id": "user-42",
            "variant": "candidate",
            "timestamp": "2024-05-01T12:00:00.123Z",
            "values": {"true_positive": 1, "flagged": 1, "latency_ms": 42},
            "attributes": {"country": "US", "device": "mobile"},
        }
    ]
}

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or unknown API key"},
    403: {"description": "Key lacks the client scope"},
    409: {"description": "Idempotency-Key reused with a different body"},
    413: {"description": "Body larger than max_events_body_bytes"},
    422: {
        "description": "Invalid events: `error.details` has one entry per bad field, with "
        "the event's `index`; none of the batch was accepted"
    },
    503: {
        "description": "Storage unavailable or aggregation backlog full; retry after "
        "Retry-After (the same Idempotency-Key and event ids are safe to resend)"
    },
}


# --- decoding ----------------------------------------------------------------------------


def _location(path: str) -> list[str]:
    """``.events[3].values[...]`` → ``["events", "3", "values", "[...]"]``."""
    return [p for p in re.split(r"\.|\[(\d+|\.\.\.)\]", path or "") if p]


def _event_errors(
    index: int, raw: object, exc: msgspec.ValidationError, schema: _Schema
) -> list[FieldError]:
    where = f"events.{index}"
    if not isinstance(raw, dict):
        return [field_error(where, "must be an object", index=index)]
    match = _path.match(str(exc))
    message = match.group("message") if match else str(exc)
    parts = _location(match.group("path") or "") if match else []
    missing = _missing.match(message)
    if missing:
        return [field_error(f"{where}.{missing.group('name')}", "required", index=index)]
    if parts and parts[0] in schema.dicts and ("..." in parts or (match and match.group("key"))):
        # msgspec says "[...]" for a dict entry: find the entries at fault by name.
        name = parts[0]
        errors = []
        mapping = raw.get(name)
        if isinstance(mapping, dict):
            for key, value in mapping.items():
                try:
                    msgspec.convert({key: value}, schema.dicts[name])
                except msgspec.ValidationError as inner:
                    inner_message = _path.match(str(inner))
                    text = inner_message.group("message") if inner_message else str(inner)
                    errors.append(field_error(f"{where}.{name}.{key}", text, index=index))
        if errors:
            return errors
    suffix = ".".join(p for p in parts if p != "...")
    return [field_error(f"{where}.{suffix}" if suffix else where, message, index=index)]


def _decode_slowly(
    body: bytes, schema: _Schema
) -> tuple[list[EventFields | None], list[FieldError]]:
    """Decode event by event, naming every bad field (only for bodies the fast path refused)."""
    try:
        raw = msgspec.json.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:  # bad UTF-8 in a string
        raise ValidationFailed(
            "body is not valid JSON", [field_error("body", f"not valid JSON: {exc}")]
        ) from None
    if not isinstance(raw, dict) or "events" not in raw:
        raise ValidationFailed(
            "body must be an object with an events list",
            [field_error("events", 'required: {"events": [...]}')],
        )
    events = raw["events"]
    if not isinstance(events, list):
        raise ValidationFailed("events must be a list", [field_error("events", "must be a list")])
    decoded: list[EventFields | None] = []
    errors: list[FieldError] = []
    for index, item in enumerate(events):
        try:
            decoded.append(cast(EventFields, msgspec.convert(item, schema.event)))
        except msgspec.ValidationError as exc:
            decoded.append(None)
            errors += _event_errors(index, item, exc, schema)
    return decoded, errors


def _decode(body: bytes, schema: _Schema) -> tuple[list[EventFields | None], list[FieldError]]:
    try:
        return list(schema.body.decode(body).events), []
    except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError):
        return _decode_slowly(body, schema)


# --- validation --------------------------------------------------------------------------


@dataclass(slots=True)
class _Target:
    """One experiment of the batch, as ingestion sees it."""

    record: ExperimentRecord
    refusal: str | None
    variants: frozenset[str]
    segments: tuple[str, ...]
    _config: ExperimentConfig | None = None

    def assignment(self, unit_id: str, attributes: Mapping[str, object] | None) -> str:
        """The variant the SDK's evaluation gives while running ("" = not in the experiment)."""
        if self._config is None:
            # Evaluated as running: after the end, events still belong to the old assignment.
            self._config = parse_experiment({**sdk_entry(self.record), "status": "running"})
        result = evaluate(self._config, unit_id, attributes)
        return result.variant or "" if result.in_experiment else ""


def _target(record: ExperimentRecord, settings: Settings, now: float) -> _Target:
    refusal = None
    if record.status == "draft":
        refusal = f"experiment {record.key!r} is a draft: events are accepted once it runs"
    elif record.status in ENDED:
        ended = record.ended_at or record.updated_at
        if ended < now - settings.event_grace_s:
            refusal = (
                f"experiment {record.key!r} ended ({record.status}) more than "
                f"{settings.event_grace_s} s ago"
            )
    spec = record.spec
    return _Target(record, refusal, frozenset(spec.variant_keys()), tuple(spec.segment_names))


def _epoch(raw: str | float) -> float | None:
    if isinstance(raw, str):
        try:
            moment = datetime.fromisoformat(raw)
        except ValueError:
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.timestamp()
    value = float(raw)
    return value if math.isfinite(value) else None


@dataclass(slots=True)
class _Checked:
    by_experiment: dict[str, tuple[list[str], list[StoredEvent]]] = field(default_factory=dict)
    errors: list[FieldError] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Limits:
    oldest: float
    newest: float
    max_age_s: int
    max_future_s: int

    @classmethod
    def of(cls, settings: Settings, now: float) -> _Limits:
        return cls(
            oldest=now - settings.event_max_age_s,
            newest=now + settings.event_max_future_s,
            max_age_s=settings.event_max_age_s,
            max_future_s=settings.event_max_future_s,
        )


def _explain(
    i: int, event: EventFields, target: _Target | None, ts: float | None, limits: _Limits
) -> list[FieldError]:
    """Every rule ``event`` breaks (called only for events the fast checks refused)."""
    where = f"events.{i}"
    if target is None:
        return [
            field_error(
                f"{where}.experiment",
                f"experiment {event.experiment!r} does not exist",
                index=i,
                code="not_found",
                status=404,
            )
        ]
    errors = []
    if target.refusal is not None:
        errors.append(
            field_error(f"{where}.experiment", target.refusal, index=i, code="not_running")
        )
    if ts is None:
        message = f"{event.timestamp!r} is neither ISO-8601 nor epoch seconds"
        errors.append(field_error(f"{where}.timestamp", message, index=i))
    elif not limits.oldest <= ts <= limits.newest:
        message = (
            f"{event.timestamp!r} is outside the accepted window (at most "
            f"{limits.max_age_s} s old, {limits.max_future_s} s ahead)"
        )
        errors.append(field_error(f"{where}.timestamp", message, index=i))
    if not event.values:
        errors.append(field_error(f"{where}.values", "needs at least one value", index=i))
    variant = event.variant
    if variant is not None and variant not in target.variants:
        message = f"{variant!r} is not a variant of {event.experiment!r}: {sorted(target.variants)}"
        errors.append(field_error(f"{where}.variant", message, index=i))
    return errors


def _check(
    events: list[EventFields | None],
    targets: Mapping[str, _Target],
    settings: Settings,
    now: float,
) -> _Checked:
    """Validate every event; build the stored form of the valid ones (the hot loop)."""
    out = _Checked()
    limits = _Limits.of(settings, now)
    oldest, newest = limits.oldest, limits.newest
    stamps: dict[str | float, float | None] = {}  # a batch's events often share timestamps
    by_experiment = out.by_experiment
    for i, event in enumerate(events):
        if event is None:
            continue
        target = targets.get(event.experiment)
        raw = event.timestamp
        ts = stamps.get(raw, -1.0)
        if ts == -1.0:
            ts = stamps[raw] = _epoch(raw)
        values, covariates, attributes = event.values, event.covariates, event.attributes
        variant = event.variant
        if (
            target is None
            or target.refusal is not None
            or ts is None
            or not oldest <= ts <= newest
            or not values
            or (variant is not None and variant not in target.variants)
        ):
            out.errors += _explain(i, event, target, ts, limits)
            continue
        unit_id = event.unit_id if type(event.unit_id) is str else str(event.unit_id)
        if variant is None:
            variant = target.assignment(unit_id, attributes)
        segments = target.segments
        if not segments:
            segment_values_: list[str | None] | None = None
        elif attributes:
            segment_values_ = []
            for name in segments:
                value = attributes.get(name)
                segment_values_.append(value if type(value) is str else canonical(value))
        else:
            segment_values_ = [None] * len(segments)
        share = by_experiment.get(event.experiment)
        if share is None:
            share = by_experiment[event.experiment] = ([], [])
        share[0].append(event.event_id)
        share[1].append(
            StoredEvent(unit_id, variant, ts, values, covariates or None, segment_values_)
        )
    return out


def _idempotency_key(request: Request) -> str | None:
    value = request.headers.get("idempotency-key")
    if value is None:
        return None
    if not value or len(value) > _MAX_IDEMPOTENCY_KEY or not value.isprintable():
        raise ValidationFailed(
            "invalid Idempotency-Key header",
            [
                field_error(
                    "headers.Idempotency-Key",
                    f"1 to {_MAX_IDEMPOTENCY_KEY} printable characters",
                )
            ],
        )
    return value


# --- the route ---------------------------------------------------------------------------


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic GC while a batch's objects are built (no await inside): they form no
    cycles, and the collections their allocations trigger nearly double the batch's cost."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@router.post(
    "/events",
    status_code=202,
    summary="Record outcome events (batched; all-or-nothing validation)",
    response_model=None,
    responses={202: {"model": EventsAccepted}, **_ERRORS},
    openapi_extra=json_body(EventsDoc, _EXAMPLE),
)
async def post_events(request: Request) -> JSON:
    # Dependencies resolved by hand: FastAPI runs sync dependencies in a thread pool, four
    # thread hops per request that cost more than this route's own bookkeeping.
    who = identity(request, "client")
    runtime: Runtime = request.app.state.runtime
    store, targets_cache = _ingestion(runtime)
    settings = runtime.settings
    body = await request.body()
    idempotency_key = _idempotency_key(request)
    digest = ""
    if idempotency_key is not None:
        digest = body_digest(body)
        prior = await store.recall(who.name, idempotency_key)
        if prior is not None:
            if prior.digest != digest:
                raise Conflict(
                    "this Idempotency-Key was used with a different body",
                    [field_error("headers.Idempotency-Key", "reused with a different body")],
                )
            return JSON(prior.result.as_dict(), status_code=202)
    with _gc_paused():
        events, errors = _decode(body, _schema_for(settings))
    if not events and not errors:
        raise ValidationFailed("no events", [field_error("events", "at least one event")])
    if len(events) > settings.events_max_batch:
        runtime.metrics.events_rejected.labels("too_large").inc(len(events))
        raise ValidationFailed(
            "too many events",
            [field_error("events", f"at most {settings.events_max_batch} events per request")],
        )
    now = time.time()
    names = {e.experiment for e in events if e is not None}
    targets = await targets_cache.get(runtime.experiments, names, settings, now)
    with _gc_paused():
        checked = _check(events, targets, settings, now)
    errors += checked.errors
    if errors:
        errors.sort(key=lambda e: e.get("index", -1))
        bad = len({e.get("index") for e in errors})
        runtime.metrics.reject_events(errors, len(events))
        raise ValidationFailed(
            f"{bad} of {len(events)} events are invalid; none was accepted",
            errors[:_MAX_ERRORS],
        )
    result = await store.append_many(checked.by_experiment)
    if idempotency_key is not None:
        await store.remember(who.name, idempotency_key, digest, result)
    return JSON(result.as_dict(), status_code=202)


class _Targets:
    """Experiments as ingestion sees them, cached briefly while they run.

    Only running experiments are cached (``_TARGET_TTL_S``): the spec of a running
    experiment is frozen, and the only way out of running is an end after which events are
    still accepted for ``event_grace_s``, so a slightly stale entry never refuses or admits
    an event wrongly. Anything else is read from Redis on every request.
    """

    def __init__(self) -> None:
        self._cache: dict[str, tuple[float, _Target]] = {}

    async def get(
        self, experiments: ExperimentStore, names: set[str], settings: Settings, now: float
    ) -> dict[str, _Target]:
        found: dict[str, _Target] = {}
        missing = []
        for name in names:
            cached = self._cache.get(name)
            if cached is not None and now - cached[0] < _TARGET_TTL_S:
                found[name] = cached[1]
            else:
                missing.append(name)
        if missing:
            for record in await experiments.get_many(sorted(missing)):
                target = found[record.key] = _target(record, settings, now)
                if record.status == "running":
                    self._cache[record.key] = (now, target)
                else:
                    self._cache.pop(record.key, None)
        return found


_TARGET_TTL_S = 1.0
_EXTRA = "ingest.targets"


def _ingestion(runtime: Runtime) -> tuple[EventStore, _Targets]:
    store = runtime.events
    targets = runtime.extras.get(_EXTRA)
    if store is None or not isinstance(targets, _Targets):
        raise RuntimeError("ingestion is not wired: add_ingestion is not a component factory")
    return store, targets


def add_ingestion(runtime: Runtime) -> None:
    """Component factory: the stores behind ``/v1/events`` and the statistics read API."""
    settings = runtime.settings
    runtime.events = EventStore(
        runtime.redis,
        dedup_window_s=settings.event_dedup_window_s,
        max_backlog=settings.ingest_max_backlog,
        idempotency_window_s=settings.idempotency_window_s,
    )
    runtime.aggregates = AggregateStore(runtime.redis)
    runtime.extras[_EXTRA] = _Targets()
