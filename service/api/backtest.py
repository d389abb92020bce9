"""Backtests (admin): the experiment's analysis on historical paired records.

``POST /v1/backtest`` takes a spec (inline, or an existing experiment's key) and the
records as nested JSON (``records``), flat rows (``rows``, as CSV columns or Parquet
fields) or CSV text (``csv``); see :mod:`service.analysis.backtest` for the rule
and :mod:`service.analysis.rows_from_csv` and ``nest_rows`` for the shapes. The verdict is written
to the journal list (``keys.journal()``) as one JSON entry, unless ``dry_run``; the
entry's id is a digest of the inputs (spec, candidate, alpha, segment floor, records),
so a repeat of the same inputs replaces its entry instead of adding one::

    {"kind": "backtest", "id": "bt_...", "at": <epoch s>, "actor": <key name>,
     "experiment": <spec key>, "baseline": ..., "candidate": ..., "hypothesis": ...,
     "lever": ..., "evidence": "historical", "source": <file name or null>,
     "records": <n>, "period": {"start", "end", "days"},
     "primary": <the primary metric row>, "verdict": <the verdict object>}
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import time
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Request
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    field_validator,
)

from service.analysis import nest_rows, rows_from_csv
from service.analysis.backtest import DERIVED_VALUES, BacktestPlan, PlanMetric, run_backtest
from service.api._docs import json_body
from service.api.deps import AdminDep, ExperimentsDep, RuntimeDep
from service.api.model_lines import check_scalar
from service.api.responses import JSON
from service.bodies import parse_model
from service.errors import FieldError, ValidationFailed, field_error
from service.spec import ExperimentSpec, parse_spec
from service.spec.models import KEY_PATTERN, NAME_PATTERN
from service.spec.validation import pydantic_details
from service.store.journal import JournalStore

__all__ = ["BacktestBody", "plan_from_spec", "router"]

router = APIRouter(prefix="/v1/backtest", tags=["backtest"])

MAX_RECORDS = 200_000
Key = Annotated[str, StringConstraints(pattern=KEY_PATTERN)]
ValueName = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
Finite = Annotated[float, Field(strict=True, allow_inf_nan=False)]

_ERRORS: dict[int | str, dict[str, str]] = {
    401: {"description": "Missing or unknown API key"},
    403: {"description": "Key lacks the admin scope"},
    404: {"description": "No such experiment"},
    413: {"description": "Body too large"},
    422: {"description": "Invalid spec or records; `error.details` names each field"},
}


class ArmIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prediction: Any = None
    confidence: float | None = Field(default=None, ge=0, le=1)
    values: dict[ValueName, Finite] = Field(default_factory=dict, max_length=64)

    @field_validator("prediction")
    @classmethod
    def _prediction(cls, value: Any) -> Any:
        return check_scalar(value)


class BacktestRecordIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    record_id: Annotated[str, StringConstraints(max_length=128)] | None = None
    timestamp: dt.datetime | None = None
    label: Any
    attributes: dict[Annotated[str, StringConstraints(min_length=1, max_length=64)], Any] = Field(
        default_factory=dict, max_length=32
    )
    variants: dict[Key, ArmIn] = Field(min_length=2, max_length=20)

    @field_validator("label")
    @classmethod
    def _label(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("a backtest needs the true label of every record")
        return check_scalar(value)

    @field_validator("attributes")
    @classmethod
    def _attributes(cls, attributes: dict[str, Any]) -> dict[str, Any]:
        return {k: check_scalar(v) for k, v in attributes.items() if v is not None}


_RECORDS = TypeAdapter(list[BacktestRecordIn])


_VALUES = ", ".join(DERIVED_VALUES)
_RECORDS_HELP = (
    "Historical records, nested (give exactly one of records, rows, csv; at most "
    f"{MAX_RECORDS:,}). Each: record_id, timestamp (ISO 8601 or epoch s), label (required), "
    "attributes {name: value} (segments), variants {variant key: {prediction, confidence, "
    "values {name: number}}} with at least the baseline and the candidate. A metric's value, "
    f"numerator or denominator names a per-record value: one derived per variant ({_VALUES}; "
    "log_loss for scored predictions only) or one of the variant's own values (missing = 0)."
)
_ROWS_HELP = (
    "The same records as flat rows (CSV columns or Parquet fields): record_id, timestamp, "
    "label, <variant>.prediction, <variant>.confidence, <variant>.<value>; every other "
    "column is an attribute; empty cells are absent."
)
_CSV_HELP = "The same flat rows as CSV text with a header line."


class BacktestBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    spec: dict[str, Any] | None = Field(default=None, description="The experiment spec.")
    experiment: Key | None = Field(default=None, description="Or the key of a stored one.")
    candidate: Key | None = Field(default=None, description="Needed with several candidates.")
    alpha: float | None = Field(
        default=None, gt=0, lt=0.5, description="The bar's alpha; default: the spec's halved."
    )
    min_segment_records: int = Field(default=50, ge=1, le=1_000_000)
    records: list[dict[str, Any]] | None = Field(
        default=None, description=_RECORDS_HELP, json_schema_extra={"maxItems": MAX_RECORDS}
    )
    rows: list[dict[str, Any]] | None = Field(default=None, description=_ROWS_HELP)
    csv: str | None = Field(default=None, description=_CSV_HELP)
    source: Annotated[str, StringConstraints(max_length=256)] | None = Field(
        default=None, description="Where the history came from (a file name), for the journal."
    )
    dry_run: bool = Field(
        default=False, description="Judge without writing the verdict to the journal."
    )


def plan_from_spec(
    spec: ExperimentSpec,
    *,
    candidate: str | None = None,
    alpha: float | None = None,
    min_segment_records: int = 50,
) -> BacktestPlan:
    """The backtest plan of a spec; raise naming the field when the candidate is unclear."""
    others = [k for k in spec.variant_keys() if k != spec.baseline]
    if candidate is None:
        if len(others) != 1:
            raise ValidationFailed(
                "name the candidate",
                [field_error("candidate", f"the spec has {len(others)} candidates: {others}")],
            )
        candidate = others[0]
    elif candidate not in others:
        raise ValidationFailed(
            "unknown candidate", [field_error("candidate", f"not one of {others}")]
        )
    metrics = tuple(
        PlanMetric(
            name=m.name,
            kind=m.kind,
            role=m.role,
            direction=m.direction,
            value=m.value,
            numerator=m.numerator,
            denominator=m.denominator,
            mde=m.mde,
            margin=m.margin,
        )
        for m in spec.metrics
    )
    return BacktestPlan(
        experiment=spec.key,
        baseline=spec.baseline,
        candidate=candidate,
        metrics=metrics,
        alpha=spec.analysis.alpha,
        segments=tuple(spec.segment_names),
        min_days=float(spec.analysis.min_days),
        correction=spec.analysis.correction,
        strict_alpha=alpha,
        min_segment_records=min_segment_records,
    )


def _validated(raw: list[dict[str, Any]], where: str) -> list[BacktestRecordIn]:
    try:
        return _RECORDS.validate_python(raw)
    except ValidationError as exc:
        details = pydantic_details(exc, (where,))
        raise ValidationFailed(f"invalid backtest {where}", details[:50]) from None


def _records(body: BacktestBody, plan: BacktestPlan) -> tuple[list[dict[str, Any]], str]:
    given = [k for k in ("records", "rows", "csv") if getattr(body, k) is not None]
    if len(given) != 1:
        raise ValidationFailed(
            "send the records one way",
            [field_error("records", "give exactly one of records, rows or csv")],
        )
    where = given[0]
    if where == "records":
        raw = body.records or []
    else:
        flat = body.rows if where == "rows" else rows_from_csv(body.csv or "")
        raw = nest_rows(flat or [], (plan.baseline, plan.candidate))
        where = "rows"
    if not raw:
        raise ValidationFailed("no records", [field_error(where, "at least one record")])
    if len(raw) > MAX_RECORDS:
        raise ValidationFailed("too many records", [field_error(where, f"at most {MAX_RECORDS}")])
    parsed = _validated(raw, where)
    details: list[FieldError] = []
    records: list[dict[str, Any]] = []
    for i, rec in enumerate(parsed):
        for variant in (plan.baseline, plan.candidate):
            if variant not in rec.variants:
                details.append(field_error(f"{where}.{i}.variants", f"missing {variant!r}"))
        ts = rec.timestamp
        records.append(
            {
                "record_id": rec.record_id,
                "timestamp": None
                if ts is None
                else (ts if ts.tzinfo else ts.replace(tzinfo=dt.UTC)).timestamp(),
                "label": rec.label,
                "attributes": {k: str(v) for k, v in rec.attributes.items()},
                "variants": {k: v.model_dump() for k, v in rec.variants.items()},
            }
        )
        if len(details) >= 50:
            break
    if details:
        raise ValidationFailed("records lack a variant of the plan", details)
    return records, where


def _check_values(plan: BacktestPlan, records: list[dict[str, Any]]) -> None:
    present: set[str] = set(DERIVED_VALUES)
    for r in records:
        for arm in r["variants"].values():
            present.update(arm.get("values") or {})
    details = []
    for i, m in enumerate(plan.metrics):
        for attr in ("value", "numerator", "denominator"):
            name = getattr(m, attr)
            if name is not None and name not in present:
                details.append(
                    field_error(
                        f"spec.metrics.{i}.{attr}",
                        f"{name!r} is neither a derived value {list(DERIVED_VALUES)} "
                        "nor in any record's values",
                    )
                )
    if details:
        raise ValidationFailed("the records cannot feed the spec's metrics", details)


def _judged(body: BacktestBody, plan: BacktestPlan) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    records, _ = _records(body, plan)
    _check_values(plan, records)
    return run_backtest(plan, records), records


async def _spec(body: BacktestBody, experiments: ExperimentsDep) -> ExperimentSpec:
    if (body.spec is None) == (body.experiment is None):
        raise ValidationFailed(
            "which spec?", [field_error("spec", "give exactly one of spec or experiment")]
        )
    if body.experiment is not None:
        return (await experiments.get(body.experiment)).spec
    try:
        return parse_spec(body.spec)
    except ValidationFailed as exc:
        for d in exc.details:
            d["field"] = f"spec.{d['field']}"
        raise


@router.post(
    "",
    response_class=JSON,
    responses=_ERRORS,
    summary="Judge a candidate on historical paired records (stricter bar; journaled)",
    openapi_extra=json_body(BacktestBody),
)
async def backtest(
    who: AdminDep, runtime: RuntimeDep, experiments: ExperimentsDep, request: Request
) -> JSON:
    """Judge a candidate on history: both models' predictions on the same past records.

    Send the spec (``spec``, or ``experiment`` for a stored one) and the records in one of
    three shapes: ``records`` (nested), ``rows`` (flat) or ``csv`` (flat, as text); see
    each field. Per record and variant the metrics may use the derived values ``records``
    (1), ``served``, ``correct``, ``error``, ``true_positive``, ``false_positive``,
    ``false_negative``, ``true_negative``, ``flagged`` (predicted positive),
    ``actual_positive``, ``log_loss`` (scored predictions only), or any of the variant's
    ``values`` (missing = 0). The verdict is journaled once per distinct input (a repeat
    replaces its entry); ``dry_run`` journals nothing.
    """
    raw = await request.body()
    body = await asyncio.to_thread(
        parse_model, raw, BacktestBody, records=MAX_RECORDS, rows=MAX_RECORDS
    )
    spec = await _spec(body, experiments)
    plan = plan_from_spec(
        spec,
        candidate=body.candidate,
        alpha=body.alpha,
        min_segment_records=body.min_segment_records,
    )
    result, records = await asyncio.to_thread(_judged, body, plan)
    if body.dry_run:
        return JSON({**result, "journal": None, "dry_run": True})
    digest = await asyncio.to_thread(_digest, spec, plan, records)
    primary = next(m for m in result["metrics"] if m["role"] == "primary")
    entry = {
        "kind": "backtest",
        "id": f"bt_{digest}",
        "at": time.time(),
        "actor": who.name,
        "experiment": spec.key,
        "baseline": plan.baseline,
        "candidate": plan.candidate,
        "hypothesis": spec.hypothesis,
        "lever": spec.lever,
        "evidence": "historical",
        "source": body.source,
        "records": result["records"],
        "period": result["period"],
        "primary": primary,
        "verdict": result["verdict"],
    }
    added = await JournalStore(runtime.redis).upsert_backtest(entry["id"], entry)
    journal = {"id": entry["id"], "at": entry["at"], "added": added}
    return JSON({**result, "journal": journal, "dry_run": False})


def _digest(spec: ExperimentSpec, plan: BacktestPlan, records: list[dict[str, Any]]) -> str:
    """The same inputs give the same digest (and so the same journal entry)."""
    canonical = orjson.dumps(
        {
            "spec": spec.model_dump(mode="json"),
            "candidate": plan.candidate,
            "alpha": plan.strict_alpha,
            "min_segment_records": plan.min_segment_records,
            "records": records,
        },
        option=orjson.OPT_SORT_KEYS,
    )
    return hashlib.sha256(canonical).hexdigest()[:16]
