"""Monitored models: prediction records and late labels in (client), analysis out (admin)."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import datetime as dt
import math
import time
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Path, Query, Request
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    field_validator,
)

from service.analysis import (
    FLAGS,
    LEVERS,
    AnalysisParams,
    Flag,
    Lever,
    Reference,
    pack_rows,
    reference_meta,
)
from service.api._docs import json_body
from service.api._reference_body import REFERENCE_SCHEMA, parse_reference
from service.api.deps import AdminDep, ClientDep, RecordsDep, RuntimeDep
from service.api.responses import JSON
from service.bodies import off_loop, skim
from service.errors import FieldError, ValidationFailed, field_error
from service.modelwatch import add_labels as add_labels_of
from service.modelwatch import add_records as add_records_of
from service.modelwatch import analysis_slots, line_impact, model_analysis
from service.runtime import Runtime
from service.spec.models import KEY_PATTERN
from service.spec.validation import pydantic_details

__all__ = [
    "RecordIn",
    "check_scalar",
    "router",
    "stored_record",
]

router = APIRouter(prefix="/v1/models", tags=["models"])

_ERRORS: dict[int | str, dict[str, str]] = {
    401: {"description": "Missing or unknown API key"},
    403: {"description": "Key lacks the needed scope"},
    404: {"description": "No such model"},
    413: {"description": "Body too large"},
    422: {"description": "Invalid input; `error.details` names each index and field at fault"},
}

ModelName = Annotated[str, Path(pattern=KEY_PATTERN, description="Model name, like a key.")]
AttrName = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Feature = Annotated[float, Field(strict=True, allow_inf_nan=False)]
_SCALAR_HELP = "must be a string (at most 256 characters), a finite number, a boolean or null"
_EARLIEST = dt.datetime(2000, 1, 1, tzinfo=dt.UTC).timestamp()


def check_scalar(value: Any) -> Any:
    """A label, prediction or attribute value: string, finite number, boolean or null."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    if isinstance(value, str) and len(value) <= 256:
        return value
    raise ValueError(_SCALAR_HELP)


class RecordIn(BaseModel):
    """One prediction of the production model (docs/http-api.md, "Models")."""

    model_config = ConfigDict(extra="forbid")

    record_id: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    timestamp: dt.datetime | None = Field(
        default=None, description="ISO 8601 or epoch seconds; naive means UTC; default: now."
    )
    prediction: Any = Field(default=None, description="Label or score; null = not served.")
    offline_prediction: Any = Field(
        default=None,
        description="The same model re-scored offline from the logged features; a served "
        "prediction that differs from it is a serving error.",
    )
    label: Any = Field(default=None, description="The truth, if known (else send it later).")
    confidence: float | None = Field(default=None, ge=0, le=1)
    attributes: dict[AttrName, Any] = Field(default_factory=dict, max_length=32)
    features: dict[AttrName, Feature | None] = Field(default_factory=dict, max_length=256)
    flags: list[Flag] = Field(default_factory=list, max_length=len(FLAGS))
    error_category: Annotated[str, StringConstraints(max_length=64)] | None = None

    @field_validator("prediction", "label", "offline_prediction")
    @classmethod
    def _scalar_value(cls, value: Any) -> Any:
        return check_scalar(value)

    @field_validator("attributes")
    @classmethod
    def _attribute_values(cls, attributes: dict[str, Any]) -> dict[str, Any]:
        for name, value in attributes.items():
            if value is None:
                raise ValueError(f"attribute {name!r}: null is not a value; leave it out")
            try:
                check_scalar(value)
            except ValueError:
                raise ValueError(f"attribute {name!r} {_SCALAR_HELP}") from None
        return attributes

    @field_validator("timestamp")
    @classmethod
    def _sane_time(cls, value: dt.datetime | None) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        ts = value.timestamp()
        if ts < _EARLIEST or ts > time.time() + 86_400:
            raise ValueError("must lie between 2000-01-01 and one day from now")
        return value


class RecordsBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    records: list[RecordIn] = Field(
        min_length=1, description="At most SHARPEN_RECORDS_MAX_BATCH (10,000) records."
    )


class LabelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    record_id: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    label: Any

    @field_validator("label")
    @classmethod
    def _label(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("a late label cannot be null")
        return check_scalar(value)


class LabelsBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    labels: list[LabelIn] = Field(
        min_length=1, description="At most SHARPEN_RECORDS_MAX_BATCH (10,000) labels."
    )


T = TypeVar("T")
_RECORD = TypeAdapter(RecordIn)
_LABEL = TypeAdapter(LabelIn)


def _validated_items(items: list[Any], adapter: TypeAdapter[T], name: str) -> list[T]:
    """Every item validated (all or nothing): a 422 naming each index and field at fault."""
    out: list[T] = []
    details: list[FieldError] = []
    bad = 0
    for i, raw in enumerate(items):
        try:
            out.append(adapter.validate_json(bytes(raw)))
        except ValidationError as exc:
            bad += 1
            details += pydantic_details(exc, (name, i))
    if details:
        raise ValidationFailed(
            f"{bad} of {len(items)} {name} are invalid; none was accepted", details
        )
    return out


async def _body_items(
    request: Request, runtime: Runtime, adapter: TypeAdapter[T], name: str
) -> list[T]:
    """The items of ``{name: [...]}``, counted before any is validated (see ``_bodies``)."""
    limit = runtime.settings.records_max_batch
    items = skim(await request.body(), name, limit, noun=name, forbid_unknown=True)
    return await off_loop(len(items), lambda: _validated_items(items, adapter, name))


class Accepted(BaseModel):
    accepted: int
    duplicates: int


class Matched(BaseModel):
    matched: int
    unmatched: int


class ModelOut(BaseModel):
    name: str
    records: int = Field(description="Records stored now (after trimming).")
    accepted: int = Field(description="Records ever accepted.")
    duplicates: int
    labels: int = Field(description="Late labels matched.")
    labelled: int = Field(description="Records that ever carried a label (own or late), once each.")
    created_at: float | None
    last_record_at: float | None
    has_reference: bool


class ModelList(BaseModel):
    models: list[ModelOut]


def stored_record(record: RecordIn, now: float) -> dict[str, Any]:
    """The stored shape of a record: epoch timestamp, nulls and empties left out."""
    out: dict[str, Any] = {
        "record_id": record.record_id,
        "timestamp": record.timestamp.timestamp() if record.timestamp else now,
    }
    for name in ("prediction", "offline_prediction", "label", "confidence", "error_category"):
        value = getattr(record, name)
        if value is not None:
            out[name] = value
    if record.attributes:
        out["attributes"] = record.attributes
    if record.features:
        out["features"] = record.features
    if record.flags:
        out["flags"] = sorted(set(record.flags), key=FLAGS.index)
    return out


@router.post(
    "/{name}/records",
    status_code=202,
    response_model=Accepted,
    responses=_ERRORS,
    summary="Add prediction records (all or nothing; duplicates by record_id ignored)",
    openapi_extra=json_body(RecordsBody),
)
async def add_records(
    _: ClientDep, runtime: RuntimeDep, name: ModelName, request: Request
) -> Accepted:
    records = await _body_items(request, runtime, _RECORD, "records")
    now = time.time()
    result = await add_records_of(runtime, name, [stored_record(r, now) for r in records])
    return Accepted(accepted=result.accepted, duplicates=result.duplicates)


@router.post(
    "/{name}/labels",
    status_code=202,
    response_model=Matched,
    responses=_ERRORS,
    summary="Attach labels that arrived after their records (unknown record_ids: unmatched)",
    openapi_extra=json_body(LabelsBody),
)
async def add_labels(
    _: ClientDep, runtime: RuntimeDep, name: ModelName, request: Request
) -> Matched:
    labels = await _body_items(request, runtime, _LABEL, "labels")
    matched, unmatched = await add_labels_of(
        runtime, name, [(x.record_id, x.label) for x in labels]
    )
    return Matched(matched=matched, unmatched=unmatched)


@router.get("", response_model=ModelList, responses=_ERRORS, summary="List monitored models")
async def list_models(_: AdminDep, store: RecordsDep) -> ModelList:
    infos = await store.info(await store.names())
    return ModelList(models=[ModelOut(**dataclasses.asdict(info)) for info in infos])


def _epoch(value: dt.datetime | None) -> float | None:
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).timestamp()


@router.get(
    "/{name}/analysis",
    response_class=JSON,
    responses={**_ERRORS, 503: {"description": "Analyses busy; retry after Retry-After"}},
    summary="Where the model errs: breakdowns, calibration, slices, Pareto, levers",
)
async def get_analysis(
    _: AdminDep,
    runtime: RuntimeDep,
    store: RecordsDep,
    name: ModelName,
    since: dt.datetime | None = Query(default=None, description="Only records from here on."),
    until: dt.datetime | None = Query(default=None, description="Only records before this."),
    min_support: int = Query(default=30, ge=1, le=1_000_000),
    slice_min_share: float = Query(default=0.01, ge=0, le=0.5),
    max_order: int = Query(default=3, ge=1, le=3),
    alpha: float = Query(default=0.05, gt=0, lt=1),
    correction: Literal["holm", "bh", "none"] = Query(default="holm"),
    top_k: int = Query(default=10, ge=1, le=100),
    bins: int = Query(default=10, ge=2, le=100),
    positive: str | None = Query(default=None, max_length=256),
    threshold: float = Query(default=0.5, gt=0, lt=1),
    reference_start: dt.datetime | None = Query(
        default=None, description="Explicit reference window start (else the stored reference)."
    ),
    reference_end: dt.datetime | None = Query(default=None),
) -> JSON:
    params = AnalysisParams(
        min_support=min_support,
        slice_min_share=slice_min_share,
        max_order=max_order,
        alpha=alpha,
        correction=correction,
        top_k=top_k,
        bins=bins,
        positive=positive,
        threshold=threshold,
    )
    report = await model_analysis(
        store,
        name,
        params,
        since=_epoch(since),
        until=_epoch(until),
        reference_window=None
        if reference_start is None and reference_end is None
        else (_epoch(reference_start), _epoch(reference_end)),
        impact=await line_impact(runtime, name),
        slots=analysis_slots(runtime),
    )
    return JSON(report)


class SettingsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tolerance: float | None = Field(
        default=None,
        gt=0,
        allow_inf_nan=False,
        description="Regression models: an error is |prediction - label| > tolerance. "
        "Null: a classifier.",
    )
    positive: Annotated[str, StringConstraints(min_length=1, max_length=256)] | None = Field(
        default=None,
        description="The positive class of a binary label model (the model monitor's recall "
        "and precision); null: 1 / true.",
    )


@router.put(
    "/{name}/settings",
    response_model=SettingsIn,
    responses=_ERRORS,
    summary="Set a model's analysis settings (the tolerance of a regression model)",
)
async def put_settings(
    _: AdminDep, store: RecordsDep, name: ModelName, body: SettingsIn
) -> SettingsIn:
    await store.set_settings(name, body.model_dump())
    return body


@router.get(
    "/{name}/settings", response_model=SettingsIn, responses=_ERRORS, summary="A model's settings"
)
async def get_settings(_: AdminDep, store: RecordsDep, name: ModelName) -> SettingsIn:
    return SettingsIn(**await store.settings(name))


@router.post(
    "/{name}/reference",
    status_code=201,
    response_class=JSON,
    responses=_ERRORS,
    summary="Upload a sample of training rows as the model's reference (replaces the old one)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": REFERENCE_SCHEMA}},
        }
    },
)
async def post_reference(
    _: AdminDep, runtime: RuntimeDep, store: RecordsDep, name: ModelName, request: Request
) -> JSON:
    raw = await request.body()
    settings = runtime.settings
    parsed = await asyncio.to_thread(
        parse_reference, raw, max_values=settings.model_reference_max_values
    )
    reference = Reference(
        columns=parsed.columns,
        rows=parsed.rows,
        source="uploaded",
        labels=parsed.labels,
        categorical=parsed.categorical,
    )
    meta = {**reference_meta(reference), "created_at": time.time()}
    await store.set_reference(name, meta, await asyncio.to_thread(pack_rows, reference))
    return JSON({"model": name, **reference.to_dict()}, status_code=201)


class ErrorRow(BaseModel):
    record_id: str
    lever: Lever
    evidence: dict[str, Any]
    segment: dict[str, str]


class ErrorPage(BaseModel):
    errors: list[ErrorRow]
    next: str | None = Field(description="Pass as `cursor` for the next page; null at the end.")
    analysed_at: float = Field(description="When the analysis these levers come from ran.")
    total: int = Field(description="Errors matching the filters.")


_LEVER_HELP = "Only this lever: " + ", ".join(LEVERS) + "."


def _cursor(snapshot_id: str, offset: int) -> str:
    return base64.urlsafe_b64encode(f"{snapshot_id}|{offset}".encode()).decode()


def _offset(cursor: str | None, snapshot_id: str) -> int:
    if cursor is None:
        return 0
    try:
        sid, _, off = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
        offset = int(off)
    except (ValueError, UnicodeDecodeError):
        raise ValidationFailed(
            "bad cursor", [field_error("cursor", "not a cursor this endpoint gave out")]
        ) from None
    if sid != snapshot_id or offset < 0:
        raise ValidationFailed(
            "stale cursor",
            [field_error("cursor", "the analysis was re-run since; start again without a cursor")],
        )
    return offset


def _segment_filter(segment: str | None) -> tuple[str, str] | None:
    if segment is None:
        return None
    attr, sep, value = segment.partition(":")
    if not sep or not attr:
        raise ValidationFailed(
            "bad segment", [field_error("segment", "write it as attribute:value, e.g. country:IN")]
        )
    return attr, value


@router.get(
    "/{name}/errors",
    response_model=ErrorPage,
    responses={**_ERRORS, 503: {"description": "Analyses busy; retry after Retry-After"}},
    summary="The labelled errors behind each lever, with their evidence (paged)",
)
async def list_errors(
    _: AdminDep,
    runtime: RuntimeDep,
    store: RecordsDep,
    name: ModelName,
    lever: Lever | None = Query(default=None, description=_LEVER_HELP),
    segment: str | None = Query(
        default=None, max_length=200, description="attribute:value, e.g. country:IN"
    ),
    limit: int = Query(default=50, ge=1, le=1000),
    cursor: str | None = Query(default=None, max_length=400),
) -> ErrorPage:
    wanted = _segment_filter(segment)
    snapshot = await store.errors(name)
    if snapshot is None:
        await model_analysis(
            store, name, impact=await line_impact(runtime, name), slots=analysis_slots(runtime)
        )
        snapshot = await store.errors(name) or {"id": "", "at": 0.0, "errors": []}
    offset = _offset(cursor, str(snapshot["id"]))
    rows = [
        r
        for r in snapshot["errors"]
        if (lever is None or r["lever"] == lever)
        and (wanted is None or r["segment"].get(wanted[0]) == wanted[1])
    ]
    page = rows[offset : offset + limit]
    end = offset + len(page)
    return ErrorPage(
        errors=[ErrorRow(**r) for r in page],
        next=_cursor(str(snapshot["id"]), end) if end < len(rows) else None,
        analysed_at=float(snapshot["at"]),
        total=len(rows),
    )
