"""A journal entry: what was tried, what was found, what was decided, by whom, on which
model line (:func:`line_of`)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal, cast

from pydantic import BaseModel, ConfigDict

from service import format as fmt
from service.spec import ENDED, ENDING_ACTION, EndedStatus, ExperimentRecord, ExperimentSpec

__all__ = [
    "Decision",
    "Interval",
    "JournalEntry",
    "PrimaryLift",
    "YearlyValue",
    "build_entry",
    "line_of",
]

EndAction = Literal["ship", "rollback", "stop"]
_SECONDS_PER_DAY = 86_400.0
MIN_OBSERVED_DAYS = 1.0
"""Less traffic history than this says nothing about a day's traffic (a burst of seconds
extrapolated to a year gives billions): the spec's expected daily units are used instead,
or the value is not estimable."""


_ITERATION = re.compile(r"^(?P<line>.+?)-v\d+(?:-.+)?$")


def line_of(spec: ExperimentSpec) -> str:
    """The model line an experiment iterates on.

    The spec's ``layer`` when set (experiments on one model share a layer), otherwise the
    key up to its ``-v<N>`` (``fraud-v7`` and ``fraud-v7-win-s7`` -> ``fraud``), otherwise
    the key.
    """
    if spec.layer is not None:
        return spec.layer
    match = _ITERATION.match(spec.key)
    return match.group("line") if match else spec.key


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class Interval(_Frozen):
    estimate: float | None
    ci: tuple[float | None, float | None]


class PrimaryLift(_Frozen):
    """The primary metric of the variant that was shipped (or would have been)."""

    metric: str
    direction: str
    variant: str
    relative: Interval
    absolute: Interval
    status: str | None = None


class YearlyValue(_Frozen):
    """absolute lift x value per unit x daily units x 365, in ``currency``. Daily units are
    observed over at least ``MIN_OBSERVED_DAYS`` of real time, else the spec's
    ``analysis.expected_daily_units`` (``daily_units_source`` says which)."""

    currency: str
    value_per_unit: float
    daily_units: float
    daily_units_source: Literal["observed", "expected"] = "observed"
    yearly: Interval


class Decision(_Frozen):
    action: EndAction
    reasons: list[str]
    recommended: dict[str, Any] | None = None


class JournalEntry(_Frozen):
    experiment: str
    line: str
    lever: str | None
    hypothesis: str
    description: str
    spec_version: int
    status: EndedStatus
    actor: str
    decision: Decision
    baseline: str
    variant: str | None
    payload: dict[str, Any] | None
    started_at: float | None
    ended_at: float | None
    recorded_at: float
    primary: PrimaryLift | None
    value: YearlyValue | None
    results: dict[str, Any] | None
    results_error: str | None = None
    value_note: str | None = None
    detail: dict[str, Any] = {}


def _interval(block: Any) -> Interval:
    if not isinstance(block, Mapping):
        return Interval(estimate=None, ci=(None, None))
    ci = block.get("ci") or (None, None)
    lo, hi = (ci[0], ci[1]) if len(ci) == 2 else (None, None)
    return Interval(
        estimate=fmt.as_float(block.get("estimate")), ci=(fmt.as_float(lo), fmt.as_float(hi))
    )


def _chosen_variant(record: ExperimentRecord, detail: Mapping[str, Any]) -> str | None:
    if record.shipped_variant:
        return record.shipped_variant
    named = detail.get("variant")
    if isinstance(named, str) and named in record.spec.variant_keys():
        return named
    candidates = [v for v in record.spec.variant_keys() if v != record.spec.baseline]
    return candidates[0] if candidates else None


def _primary(
    record: ExperimentRecord, results: Mapping[str, Any] | None, variant: str | None
) -> PrimaryLift | None:
    if results is None or variant is None:
        return None
    metric = record.spec.primary
    for row in results.get("metrics") or []:
        if (
            isinstance(row, Mapping)
            and row.get("metric") == metric.name
            and row.get("variant") == variant
            and row.get("segment") is None
        ):
            return PrimaryLift(
                metric=metric.name,
                direction=metric.direction,
                variant=variant,
                relative=_interval(row.get("relative")),
                absolute=_interval(row.get("absolute")),
                status=row.get("status") if isinstance(row.get("status"), str) else None,
            )
    return None


def _daily_units(
    record: ExperimentRecord, results: Mapping[str, Any], now: float
) -> tuple[float, Literal["observed", "expected"]] | str:
    """Eligible units per real day and where that figure comes from, or why there is none."""
    units = results.get("units")
    if not isinstance(units, Mapping) or record.started_at is None:
        return "not estimable: no traffic was recorded"
    total = sum(float(n) for n in units.values() if isinstance(n, int | float))
    end = record.ended_at or now
    seconds = end - record.started_at
    spec = record.spec
    if record.rollout is not None:  # a ramp's steps saw less of the traffic: count them so
        seconds = record.rollout.full_share_seconds(spec.traffic, end)
    days = seconds / _SECONDS_PER_DAY
    # The experiment saw only its share of the eligible units; shipping reaches all of them.
    share = spec.traffic * (spec.layer_share if spec.layer is not None else 1.0)
    if days >= MIN_OBSERVED_DAYS and total > 0:
        return total / days / share, "observed"
    expected = spec.analysis.expected_daily_units
    if expected is not None:
        return expected / share, "expected"
    return (
        f"not estimable: {_observed(seconds)} of traffic observed, less than "
        f"{MIN_OBSERVED_DAYS:g} day, and the spec sets no analysis.expected_daily_units"
    )


def _observed(seconds: float) -> str:
    for size, unit in ((3600.0, "hour"), (60.0, "minute")):
        if seconds >= size:
            return fmt.plural(round(seconds / size), unit)
    return fmt.plural(max(round(seconds), 0), "second")


def _value(
    record: ExperimentRecord,
    results: Mapping[str, Any] | None,
    primary: PrimaryLift | None,
    now: float,
) -> YearlyValue | str | None:
    impact = record.spec.impact
    if impact is None or results is None or primary is None:
        return None
    daily = _daily_units(record, results, now)
    if isinstance(daily, str):
        return daily
    per_day, source = daily
    scale = impact.value_per_unit * per_day * 365.0

    def times(x: float | None) -> float | None:
        return None if x is None else x * scale

    lo, hi = times(primary.absolute.ci[0]), times(primary.absolute.ci[1])
    if lo is not None and hi is not None and lo > hi:  # a negative value per unit flips the CI
        lo, hi = hi, lo
    return YearlyValue(
        currency=impact.currency,
        value_per_unit=impact.value_per_unit,
        daily_units=per_day,
        daily_units_source=source,
        yearly=Interval(estimate=times(primary.absolute.estimate), ci=(lo, hi)),
    )


def _reasons(detail: Mapping[str, Any], results: Mapping[str, Any] | None) -> list[str]:
    stated = detail.get("reason")
    if isinstance(stated, str) and stated.strip():
        return [stated.strip()]
    decision = (results or {}).get("decision")
    if isinstance(decision, Mapping):
        reasons = [str(r) for r in decision.get("reasons") or []]
        if reasons:
            return reasons
    return ["no reason given"]


def build_entry(
    record: ExperimentRecord,
    results: Mapping[str, Any] | None,
    actor: str,
    *,
    now: float,
    results_error: str | None = None,
) -> JournalEntry:
    """The journal entry of an ended experiment (``record.status`` must be an end status)."""
    if record.status not in ENDED:
        raise ValueError(f"experiment {record.key!r} has not ended: it is {record.status}")
    status = cast(EndedStatus, record.status)
    ending = next((a for a in reversed(record.audit) if a.action == ENDING_ACTION[status]), None)
    detail = dict(ending.detail) if ending else {}
    variant = _chosen_variant(record, detail)
    primary = _primary(record, results, variant)
    recommended = (results or {}).get("decision")
    value = _value(record, results, primary, now)
    spec = record.spec
    return JournalEntry(
        experiment=record.key,
        line=line_of(spec),
        lever=spec.lever,
        hypothesis=spec.hypothesis,
        description=spec.description,
        spec_version=record.version,
        status=status,
        actor=actor,
        decision=Decision(
            action=ENDING_ACTION[status],
            reasons=_reasons(detail, results),
            recommended=dict(recommended) if isinstance(recommended, Mapping) else None,
        ),
        baseline=spec.baseline,
        variant=variant,
        payload=next((v.payload for v in spec.variants if v.key == variant), None),
        started_at=record.started_at,
        ended_at=record.ended_at,
        recorded_at=now,
        primary=primary,
        value=value if isinstance(value, YearlyValue) else None,
        value_note=value if isinstance(value, str) else None,
        results=dict(results) if results is not None else None,
        results_error=results_error,
        detail=detail,
    )
