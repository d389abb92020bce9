"""Results of one experiment from its cells: pure, so backtests and tests can call it.

Choices (docs/results.md says more):

* the primary metric follows the spec's design; with several candidates each is tested at
  ``alpha / candidates`` (Bonferroni);
* before the first planned look of a group-sequential design (or before the horizon of a
  fixed one) the primary row shows an always-valid estimate and stays ``inconclusive``;
* every other row (secondary metrics, segments) is always-valid, its status read from
  p-values adjusted across those rows (``analysis.correction``);
* a fixed or group-sequential primary is tested at its planned looks only; the verdict
  at the horizon (the look at the planned size) is final, and later data is shown
  under ``latest`` with an always-valid interval, marked ``past_plan``;
* guardrails are always-valid, alpha split over every guardrail x variant x segment
  cell, each cell tuned to its expected size (a segment's observed share of units);
* SRM is sequential, its mixture tuned to the planned units; per-segment SRM uses the
  chi-square test at ``0.001 / segment cells``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from service.results._convert import cell_stats
from service.results._looks import primary_looks
from service.results._plan import observed_daily_units, planned_units_per_variant, spec_plan
from service.rollout import rollout_section
from service.spec import ExperimentRecord, ExperimentSpec, Metric
from service.stats import (
    SRM_THRESHOLD,
    Decision,
    GuardrailCell,
    GuardrailResult,
    MetricAnalysis,
    Stats,
    adjust_p_values,
    analyze_stats,
    check_guardrails,
    chi_square_p,
    clean,
    decide,
    effective_units,
    interval_dict,
    sequential_srm_p,
    srm_check,
    srm_concentration,
)
from service.store.aggregates import Cell, ExperimentCells

__all__ = ["build_results"]

Segment = tuple[str, str] | None
_DAY = 86_400.0
_TIMELINE_HOURS = 24 * 90


def _seg_dict(segment: Segment) -> dict[str, str] | None:
    return None if segment is None else {segment[0]: segment[1]}


def _days_elapsed(record: ExperimentRecord, now: float) -> float:
    if record.started_at is None:
        return 0.0
    end = record.ended_at or now
    return max(0.0, (end - record.started_at) / _DAY)


def _units(cells: ExperimentCells, variants: Sequence[str], segment: Segment) -> dict[str, int]:
    found = cells.units(segment)
    return {v: int(found.get(v, 0)) for v in variants}


def _segments(cells: ExperimentCells, spec: ExperimentSpec) -> list[tuple[str, str]]:
    declared = set(spec.segment_names)
    seen = {c.segment for c in cells.cells if c.segment is not None and c.hour is None}
    return sorted(s for s in seen if s is not None and s[0] in declared)


def _srm(
    cells: ExperimentCells,
    spec: ExperimentSpec,
    segments: Sequence[tuple[str, str]],
    concentration: float,
) -> dict[str, Any]:
    variants = spec.variant_keys()
    weights = [v.weight for v in spec.variants]
    counts = _units(cells, variants, None)
    if sum(counts.values()) == 0:
        return {
            "p_value": None,
            "ok": True,
            "chi_square_p": None,
            "sequential_p": None,
            "counts": counts,
            "segments": [],
        }
    overall = srm_check(
        [counts[v] for v in variants], weights, concentration=concentration
    ).to_dict()
    threshold = SRM_THRESHOLD / max(len(segments), 1)
    flagged = []
    for segment in segments:
        seg_counts = _units(cells, variants, segment)
        if sum(seg_counts.values()) < 2 * len(variants):
            continue
        p = chi_square_p([seg_counts[v] for v in variants], weights)
        if p < threshold:
            flagged.append({"segment": _seg_dict(segment), "p_value": p, "counts": seg_counts})
    overall["counts"] = counts
    overall["segments"] = flagged
    overall["ok"] = bool(overall["ok"]) and not flagged
    return overall


def _row(
    metric: Metric,
    variant: str,
    segment: Segment,
    analysis: MetricAnalysis,
    *,
    status: str | None = None,
) -> dict[str, Any]:
    body = analysis.to_dict()
    return {
        "metric": metric.name,
        "role": metric.role,
        "kind": metric.kind,
        "direction": metric.direction,
        "variant": variant,
        "segment": _seg_dict(segment),
        "baseline": body["baseline"],
        "treatment": body["treatment"],
        "absolute": body["absolute"],
        "relative": body["relative"],
        "p_value": body["p_value"],
        "status": status or body["status"],
        "design": analysis.design,
        "error": body["error"],
    }


class _Cells:
    """Totals indexed by (variant, segment, metric)."""

    def __init__(self, cells: ExperimentCells) -> None:
        self.totals: dict[tuple[str, Segment, str], Cell] = {
            (c.variant, c.segment, c.metric): c for c in cells.totals()
        }

    def stats(self, variant: str, segment: Segment, metric: Metric) -> Stats:
        return cell_stats(self.totals.get((variant, segment, metric.name)), metric)


def _primary(
    spec: ExperimentSpec,
    cells: ExperimentCells,
    index: _Cells,
    candidate: str,
    planned: float,
    alpha: float,
    now: float,
) -> tuple[dict[str, Any], dict[str, Any], bool]:
    """The primary row for one candidate, its sequential picture, max-sample-reached.

    Fixed and group-sequential designs are tested at their planned looks only,
    replayed from the time cells at the spec's ``look_every`` (a fixed design has one, at
    the planned size); the verdict at the horizon is final. The current totals are always
    shown under ``latest`` with an always-valid interval, marked ``past_plan`` once the horizon
    has been passed, and never tested.
    """
    metric = spec.primary
    a = spec.analysis
    control = index.stats(spec.baseline, None, metric)
    treatment = index.stats(candidate, None, metric)
    units = effective_units(control.n, treatment.n)
    current = analyze_stats(
        [(control, treatment)],
        direction=metric.direction,
        design="always_valid",
        alpha=alpha,
        planned_units_per_variant=planned,
    )
    planned_looks = a.looks if a.design == "group_sequential" else 1
    sequential: dict[str, Any] = {
        "design": a.design,
        "variant": candidate,
        "planned_units_per_variant": planned,
        "planned_looks": planned_looks,
        "looks": [],
        "horizon_reached_at": None,
        "decided_at": None,
    }
    if a.design == "always_valid":
        return _row(metric, candidate, None, current), sequential, units >= planned
    look_every = int(a.look_every)
    sequential["look_every_s"] = look_every
    points = primary_looks(
        cells, metric.name, spec.baseline, candidate, planned, planned_looks, look_every, now
    )
    done = math.floor(units / planned * planned_looks)
    sequential["next_look_units"] = (  # whole units: a look waits for the unit that crosses
        min(math.ceil(planned * (done + 1) / planned_looks), math.ceil(planned))
        if done < planned_looks
        else None
    )
    if not points:
        return _row(metric, candidate, None, current, status="inconclusive"), sequential, False
    pairs = [(cell_stats(p.baseline, metric), cell_stats(p.treatment, metric)) for p in points]
    analysis = analyze_stats(
        pairs,
        direction=metric.direction,
        design=a.design,
        alpha=alpha,
        planned_units_per_variant=planned,
    )
    verdict = analysis.verdict
    if verdict.sequential is not None:
        tested = [look.to_dict() for look in verdict.sequential.looks]
    else:
        tested = [
            {
                "information": clean(verdict.information or 0.0),
                "z": clean(verdict.z),
                "boundary": clean(verdict.boundary),
                "crossed": verdict.significant,
                "past_plan": False,
            }
        ]
    sequential["looks"] = [
        {"look": i + 1, "hour": p.start, "units": p.units, **look}
        for i, (p, look) in enumerate(zip(points, tested, strict=True))
    ]
    sequential["horizon_reached_at"] = verdict.horizon
    sequential["decided_at"] = verdict.decided_at
    row = _row(metric, candidate, None, analysis)
    latest = current.to_dict()
    row["latest"] = {
        "relative": latest["relative"],
        "treatment": latest["treatment"],
        "baseline": latest["baseline"],
        "information": clean(units / planned),
        "interval": "always_valid",
        "past_plan": verdict.horizon is not None,
    }
    return row, sequential, verdict.horizon is not None


def _other_rows(
    spec: ExperimentSpec,
    index: _Cells,
    candidates: Sequence[str],
    segments: Sequence[tuple[str, str]],
    planned: float,
) -> list[dict[str, Any]]:
    a = spec.analysis
    rows: list[dict[str, Any]] = []
    for metric in spec.metrics:
        for candidate in candidates:
            where: list[Segment] = [] if metric.role == "primary" else [None]
            where += list(segments)
            for segment in where:
                control = index.stats(spec.baseline, segment, metric)
                treatment = index.stats(candidate, segment, metric)
                if control.n == 0 and treatment.n == 0:
                    continue
                analysis = analyze_stats(
                    [(control, treatment)],
                    direction=metric.direction,
                    design="always_valid",
                    alpha=a.alpha,
                    planned_units_per_variant=planned,
                    with_p_value=True,
                )
                rows.append(_row(metric, candidate, segment, analysis))
    if a.correction != "none":
        ps = [r["p_value"] if r["p_value"] is not None else 1.0 for r in rows]
        if ps:
            adjusted = adjust_p_values(ps, a.correction, a.alpha)
            for row, p, reject in zip(rows, adjusted.p_values, adjusted.reject, strict=True):
                row["p_adjusted"] = p
                if not reject:
                    row["status"] = "inconclusive"
    return rows


def _share(cells: ExperimentCells, spec: ExperimentSpec, candidate: str, segment: Segment) -> float:
    """The segment's observed share of the units of baseline and candidate (1 overall)."""
    if segment is None:
        return 1.0
    pair = [spec.baseline, candidate]
    total = sum(_units(cells, pair, None).values())
    inside = sum(_units(cells, pair, segment).values())
    return min(inside / total, 1.0) if total else 0.0


def _guardrails(
    spec: ExperimentSpec,
    cells_in: ExperimentCells,
    index: _Cells,
    candidates: Sequence[str],
    segments: Sequence[tuple[str, str]],
    planned: float,
) -> tuple[GuardrailResult, ...]:
    """Every guardrail cell, each tuned to its own expected size (a segment's share)."""
    cells: list[GuardrailCell] = []
    for metric in spec.metrics:
        if metric.role != "guardrail" or metric.margin is None:
            continue
        for candidate in candidates:
            for segment in [None, *segments]:
                cells.append(
                    GuardrailCell(
                        metric=metric.name,
                        control=index.stats(spec.baseline, segment, metric),
                        treatment=index.stats(candidate, segment, metric),
                        direction=metric.direction,
                        margin=metric.margin,
                        segment=_seg_dict(segment),
                        variant=candidate,
                        share=_share(cells_in, spec, candidate, segment),
                    )
                )
    if not cells:
        return ()
    return check_guardrails(cells, alpha=spec.analysis.alpha, planned_units_per_variant=planned)


def _guardrail_dict(g: GuardrailResult) -> dict[str, Any]:
    return {
        "metric": g.metric,
        "variant": g.variant,
        "segment": dict(g.segment) if g.segment else None,
        "direction": g.direction,
        "margin": g.margin,
        "relative": interval_dict(g.estimate, g.ci),
        "p_value": clean(g.p_value),
        "alpha": g.alpha,
        "share": g.share,
        "units": {"baseline": g.units[0], "treatment": g.units[1]},
        "status": g.status,
        "error": None if g.error is None else g.error.value,
    }


def _overall_decision(
    decisions: Mapping[str, Decision], primary_rows: Mapping[str, dict[str, Any]]
) -> dict[str, Any]:
    def pick(action: str) -> list[str]:
        return [v for v, d in decisions.items() if d.action == action]

    for action in ("rollback", "ship"):
        chosen = pick(action)
        if chosen:
            if action == "ship":
                chosen.sort(key=lambda v: -(primary_rows[v]["relative"]["estimate"] or 0.0))
            best = chosen[0]
            return {"action": action, "variant": best, "reasons": list(decisions[best].reasons)}
    if decisions and len(pick("stop")) == len(decisions):
        first = next(iter(decisions))
        return {"action": "stop", "variant": first, "reasons": list(decisions[first].reasons)}
    waiting = next((v for v, d in decisions.items() if d.action == "continue"), None)
    if waiting is None:
        return {"action": "continue", "variant": None, "reasons": ["no candidate to compare"]}
    return {"action": "continue", "variant": waiting, "reasons": list(decisions[waiting].reasons)}


def _timeline(
    cells: ExperimentCells, spec: ExperimentSpec, concentration: float
) -> list[dict[str, Any]]:
    variants = spec.variant_keys()
    weights = [v.weight for v in spec.variants]
    first_metric = cells.metrics[0] if cells.metrics else spec.metrics[0].name
    by_hour: dict[int, dict[str, int]] = {}  # hourly, whatever the width of the cells
    for c in cells.cells:
        if c.hour is not None and c.segment is None and c.metric == first_metric:
            within = by_hour.setdefault(c.hour * cells.cell_seconds // 3600, {})
            within[c.variant] = within.get(c.variant, 0) + c.n
    totals = dict.fromkeys(variants, 0)
    out: list[dict[str, Any]] = []
    for hour in sorted(by_hour)[-_TIMELINE_HOURS:]:
        for variant, n in by_hour[hour].items():
            if variant in totals:
                totals[variant] += n
        counts = [totals[v] for v in variants]
        p = sequential_srm_p(counts, weights, concentration) if sum(counts) > 0 else None
        out.append({"hour": hour * 3600, "units": dict(totals), "srm_p_value": p})
    return out


def build_results(record: ExperimentRecord, cells: ExperimentCells, now: float) -> dict[str, Any]:
    """The results document (docs/results.md) for ``record`` given its aggregated ``cells``."""
    spec = record.spec
    variants = spec.variant_keys()
    candidates = [v for v in variants if v != spec.baseline]
    units = _units(cells, variants, None)
    days = _days_elapsed(record, now)
    total = sum(units.values())
    observed_daily = observed_daily_units(record, total, now)
    plan = spec_plan(spec, observed_daily)
    planned, planned_source = planned_units_per_variant(plan, spec)
    segments = _segments(cells, spec)
    index = _Cells(cells)
    concentration = srm_concentration(planned * len(variants))
    srm = _srm(cells, spec, segments, concentration)
    alpha_primary = spec.analysis.alpha / max(len(candidates), 1)

    primary_rows: dict[str, dict[str, Any]] = {}
    sequential: list[dict[str, Any]] = []
    reached: dict[str, bool] = {}
    for candidate in candidates:
        row, picture, done = _primary(spec, cells, index, candidate, planned, alpha_primary, now)
        primary_rows[candidate] = row
        sequential.append(picture)
        reached[candidate] = done
    rows = [*primary_rows.values(), *_other_rows(spec, index, candidates, segments, planned)]
    guardrails = _guardrails(spec, cells, index, candidates, segments, planned)

    decisions: dict[str, Decision] = {}
    for candidate in candidates:
        decisions[candidate] = decide(
            primary_status=primary_rows[candidate]["status"],
            guardrails=[g for g in guardrails if g.variant == candidate],
            srm_ok=bool(srm["ok"]),
            days_elapsed=round(days, 2),
            min_days=spec.analysis.min_days,
            max_sample_reached=reached[candidate],
            primary_metric=spec.primary.name,
        )
    doc: dict[str, Any] = {
        "experiment": record.key,
        "status": record.status,
        "version": record.version,
        "computed_at": now,
        "days_elapsed": days,
        "units": units,
        "planned_units_per_variant": planned,
        "planned_units_source": planned_source,
        "plan": plan,
        "srm": srm,
        "metrics": rows,
        "guardrails": [_guardrail_dict(g) for g in guardrails],
        "decision": _overall_decision(decisions, primary_rows),
        "decisions": {v: {**d.to_dict(), "variant": v} for v, d in decisions.items()},
        "sequential": sequential,
        "timeline": _timeline(cells, spec, concentration),
    }
    doc["rollout"] = rollout_section(record, doc, now)
    return doc
