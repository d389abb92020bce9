"""One model's monitor report: performance per segment x metric x window against the
reference, with decisions; input drift; label completeness; daily trends.

Decisions reuse the guardrail machinery (``service.stats.check_guardrails``): the
reference period is the control, the window the treatment, and a cell is

* ``degraded`` when the always-valid interval of the relative change lies wholly beyond
  the margin on the harmful side (a guardrail ``breached``),
* ``warning`` when it lies wholly on the harmful side of zero,
* ``ok`` otherwise, and ``insufficient`` (not decided) with fewer than ``min_labelled``
  labelled records on either side.

The error budget: in any 24 hours, the chance that any cell of the model raises a false
warning or degradation, however often the monitor looks, is at most ``alpha``. A rolling
window is a fixed sample only while it ends in the same hour (the day window) or day (the
week window): meanwhile it only grows, by the records of its last hour or day and by
late labels, so one always-valid interval covers every pass over it. In 24 hours a day
window is thus evaluated on at most 25 distinct samples and a week window on 2, and
``alpha`` is split (Bonferroni) over segments x decided metrics x windows x those
samples (``SLOTS``). Each interval is tuned to the labelled records its window holds
when complete at the reference's rate, a size fixed while the window grows. Measured
with traffic and labels flowing in ``scripts/validate_model_monitor.py``. Input drift
(on the day window) has its own ``alpha``, split the same way over inputs and samples.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from service.modelwatch._drift import window_drift
from service.modelwatch._metrics import Metric, metrics_for, model_kind
from service.modelwatch._windows import Segment, Windows, choose_segments, total
from service.stats import GuardrailCell, check_guardrails, effective_units

__all__ = [
    "STATUS_CODES",
    "Facts",
    "ReportConfig",
    "Windows",
    "build_report",
    "metrics_view",
    "rounded",
]

STATUS_CODES: Mapping[str, int] = {"ok": 0, "warning": 1, "degraded": 2}
_FROM_GUARDRAIL = {"breached": "degraded", "warning": "warning"}
WINDOWS = ("day", "week")
WINDOW_DAYS = {"day": 1.0, "week": 7.0}
SLOTS = {"day": 25, "week": 2}
"""Distinct windows a cell can be evaluated on in any 24 hours: a day window per hour it
ends in (24, plus one when the span straddles an hour), a week window per day (2)."""


@dataclass(frozen=True, slots=True)
class ReportConfig:
    alpha: float = 0.05
    margin: float = 0.05
    min_labelled: int = 200
    min_records: int = 200
    psi_threshold: float = 0.2
    max_values: int = 10
    reference_days: int = 28


@dataclass(frozen=True, slots=True)
class Facts:
    """What the report needs besides the buckets: the model's settings and state."""

    labels_seen: Sequence[str] = ()
    tolerance: float | None = None
    positive: str = "1"
    label_at: float | None = None
    backlog: int = 0
    skipped: int = 0
    reference_set: Mapping[str, tuple[dict[str, float], float, bool]] | None = None
    """Uploaded reference: feature -> (sketch counts, rows, categorical)."""


def rounded(x: float | None, digits: int = 6) -> float | None:
    """A number fit to show: finite, at most ``digits`` significant digits; else None."""
    if x is None or not math.isfinite(x):
        return None
    if x == 0:
        return 0.0
    return round(x, max(digits - 1 - math.floor(math.log10(abs(x))), 0))


def _share(part: float, whole: float) -> float | None:
    return rounded(part / whole, 4) if whole > 0 else None


def _volume(stats: Mapping[str, float]) -> dict[str, Any]:
    n, labelled = stats.get("n", 0.0), stats.get("l", 0.0)
    return {
        "records": round(n),
        "labelled": round(labelled),
        "completeness": _share(min(labelled, n), n),
    }


@dataclass(slots=True)
class _Cell:
    segment: Segment
    metric: Metric
    window: str
    reference: dict[str, float]
    current: dict[str, float]
    row: dict[str, Any] = field(default_factory=dict)


def _decide(cells: list[_Cell], config: ReportConfig, family: int, window: str) -> None:
    """Check the ``window`` cells with enough labels on both sides; fill every row."""
    ready = []
    days = WINDOW_DAYS[window] / config.reference_days
    for cell in cells:
        m = cell.metric
        ref_den, cur_den = m.denominator(cell.reference), m.denominator(cell.current)
        cell.row = {
            "segment": cell.segment.label,
            "metric": m.name,
            "window": cell.window,
            "value": rounded(m.value(cell.current)),
            "reference": rounded(m.value(cell.reference)),
            "labelled": round(cur_den),
            "reference_labelled": round(ref_den),
            "status": "insufficient",
            "relative": None,
            "p_value": None,
        }
        if ref_den < config.min_labelled or cur_den < config.min_labelled:
            cell.row["reason"] = f"fewer than {config.min_labelled} labelled records on a side"
            continue
        # Tuned to what the window holds once complete, at the reference's rate: fixed
        # while the window only grows (the records of its last hour, late labels).
        ready.append((cell, effective_units(ref_den, ref_den * days)))
    if not ready:
        return
    biggest = max(planned for _, planned in ready)
    gcells = [
        GuardrailCell(
            metric=c.metric.name,
            control=c.metric.stats(c.reference),
            treatment=c.metric.stats(c.current),
            direction=c.metric.direction,
            margin=config.margin,
            share=planned / biggest,
        )
        for c, planned in ready
    ]
    results = check_guardrails(
        gcells,
        alpha=config.alpha,
        planned_units_per_variant=biggest,
        family_size=family * SLOTS[window],
    )
    for (cell, _), result in zip(ready, results, strict=True):
        lo, hi = result.ci
        cell.row.update(
            status=_FROM_GUARDRAIL.get(result.status, "ok"),
            relative={
                "estimate": rounded(result.estimate, 4),
                "ci": [rounded(lo, 4), rounded(hi, 4)],
            },
            p_value=rounded(result.p_value, 4),
        )


def _worst(statuses: Sequence[str]) -> str:
    decided = [s for s in statuses if s in STATUS_CODES]
    if not decided:
        return "insufficient"
    return max(decided, key=lambda s: STATUS_CODES[s])


def _trend(
    windows: Windows, segments: list[Segment], metrics: list[Metric], config: ReportConfig
) -> dict[str, Any]:
    days = sorted(windows.daily)
    series = []
    for segment in segments:
        stats = [segment.stats(windows.daily[d]) for d in days]
        ref = segment.stats(windows.reference)
        for metric in metrics:
            base = metric.value(ref)
            band = None
            if base is not None and metric.denominator(ref) >= config.min_labelled:
                band = [rounded(base * (1 - config.margin)), rounded(base * (1 + config.margin))]
            series.append(
                {
                    "segment": segment.label,
                    "metric": metric.name,
                    "values": [rounded(metric.value(s)) for s in stats],
                    "labelled": [round(metric.denominator(s)) for s in stats],
                    "reference": rounded(base),
                    "band": band,
                }
            )
    return {"days": [d * 86_400 for d in days], "series": series}


def build_report(
    name: str, windows: Windows, facts: Facts, config: ReportConfig, *, now: float
) -> dict[str, Any]:
    """The report of one model (what ``GET /v1/models/{name}/monitor`` returns)."""
    whole = windows.week.cell("")
    reference_whole = windows.reference.cell("")
    kind = model_kind(
        facts.labels_seen, facts.tolerance, total([windows.week, windows.reference]).cell("")
    )
    positive_seen = facts.positive in facts.labels_seen
    both = total([windows.week, windows.reference]).cell("")
    metrics = metrics_for(kind, both, tolerance=facts.tolerance, positive_seen=positive_seen)
    decided = [m for m in metrics if m.decided]
    segments = choose_segments([windows.week, windows.reference], config.max_values)
    cells = [
        _Cell(s, m, w, s.stats(windows.reference), s.stats(getattr(windows, w)))
        for s in segments
        for m in metrics
        for w in WINDOWS
    ]
    family = max(len(segments) * len(decided) * len(WINDOWS), 1)
    for window in WINDOWS:
        chosen = [c for c in cells if c.metric.decided and c.window == window]
        _decide(chosen, config, family, window)
    for c in cells:
        if not c.metric.decided:
            c.row = {
                "segment": c.segment.label, "metric": c.metric.name, "window": c.window,
                "value": rounded(c.metric.value(c.current)),
                "reference": rounded(c.metric.value(c.reference)),
                "labelled": round(c.metric.denominator(c.current)),
                "reference_labelled": round(c.metric.denominator(c.reference)),
                "status": "reported", "relative": None, "p_value": None,
            }  # fmt: skip
    status = []
    for s in segments:
        for m in decided:
            rows = [c.row for c in cells if c.segment is s and c.metric is m]
            status.append(
                {
                    "segment": s.label,
                    "metric": m.name,
                    "status": _worst([r["status"] for r in rows]),
                }
            )
    drift, prediction_drift = window_drift(
        windows,
        facts.reference_set or {},
        sorted({s.attribute for s in segments if s.attribute is not None}),
        alpha=config.alpha / SLOTS["day"],
        psi_threshold=config.psi_threshold,
        min_records=config.min_records,
    )
    overall = _worst([s["status"] for s in status])
    if overall == "insufficient" and any(d["status"] == "drift" for d in drift):
        overall = "ok"
    lag = None if not facts.label_at else max(now - facts.label_at, 0.0)
    report: dict[str, Any] = {
        "model": name,
        "analysed_at": rounded(now, 13),
        "kind": kind,
        "positive": facts.positive if kind == "binary" else None,
        "status": overall,
        "alpha": config.alpha,
        "alpha_each": {w: rounded(config.alpha / (family * SLOTS[w]), 4) for w in WINDOWS},
        "family_size": family,
        "margin": config.margin,
        "windows": {w: {"start": a, "end": rounded(b, 13)} for w, (a, b) in windows.bounds.items()},
        "volume": {
            "day": _volume(windows.day.cell("")),
            "week": _volume(whole),
            "reference": _volume(reference_whole),
        },
        "labels": {
            "last_at": rounded(facts.label_at, 13) if facts.label_at else None,
            "lag_s": rounded(lag, 6),
        },
        "segments": [s.label for s in segments],
        "metrics": [m.name for m in metrics],
        "cells": [c.row for c in cells],
        "statuses": status,
        "drift": drift,
        "prediction_drift": prediction_drift,
        "trend": _trend(windows, segments, metrics, config),
        "pipeline": {"backlog": facts.backlog, "skipped": facts.skipped},
        "notes": _notes(kind, positive_seen, windows, decided, config),
    }
    report["summary"] = summary(report)
    return report


def _notes(
    kind: str, positive_seen: bool, windows: Windows, decided: list[Metric], config: ReportConfig
) -> list[str]:
    notes = []
    if kind == "binary" and not positive_seen and "recall" not in {m.name for m in decided}:
        notes.append(
            "recall and precision need the positive class: set it with "
            'PUT /v1/models/{name}/settings {"positive": ...}'
        )
    if windows.reference.cell("").get("l", 0.0) < config.min_labelled:
        days = config.reference_days
        notes.append(
            f"no decisions yet: the reference period (the {days} days before the last "
            f"week) holds fewer than {config.min_labelled} labelled records"
        )
    return notes


def summary(report: Mapping[str, Any]) -> dict[str, Any]:
    """What the weekly review compares across days: volume, error rate, completeness,
    the cells not ok, the drifted inputs."""
    week = report["volume"]["week"]
    accuracy = next(
        (
            c["value"]
            for c in report["cells"]
            if c["segment"] == "all" and c["metric"] == "accuracy" and c["window"] == "week"
        ),
        None,
    )
    return {
        "at": report["analysed_at"],
        "status": report["status"],
        "records_week": week["records"],
        "labelled_week": week["labelled"],
        "completeness_week": week["completeness"],
        "error_rate_week": None if accuracy is None else rounded(1.0 - accuracy, 4),
        "not_ok": sorted(
            f"{s['segment']}|{s['metric']}|{s['status']}"
            for s in report["statuses"]
            if s["status"] in ("warning", "degraded")
        ),
        "drift": sorted(d["feature"] for d in report["drift"] if d["status"] == "drift"),
        "label_at": (report.get("labels") or {}).get("last_at"),
    }


def metrics_view(report: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a report ``/metrics`` renders (kept beside it, read on every scrape)."""
    return {
        "model": report["model"],
        "analysed_at": report["analysed_at"],
        "statuses": report.get("statuses") or [],
        "cells": [
            {k: c.get(k) for k in ("metric", "segment", "window", "value", "reference")}
            for c in report.get("cells") or []
        ],
        "drift": [
            {k: d.get(k) for k in ("feature", "psi", "status")} for d in report.get("drift") or []
        ],
        "prediction_drift": {"psi": (report.get("prediction_drift") or {}).get("psi")},
        "labels": {"last_at": (report.get("labels") or {}).get("last_at")},
        "volume": report.get("volume") or {},
        "pipeline": report.get("pipeline") or {},
        "status": report.get("status"),
        "summary": report.get("summary") or {},
    }
