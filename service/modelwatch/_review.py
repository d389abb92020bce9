"""The weekly review: per model line, what changed since last week and what to refine first.

For each line (a monitored model; experiments belong to it by ``line_of``):

* **changes** since ``since`` ago, from the monitor's daily summaries: segments x metrics
  newly degraded or warning, recovered, still degraded; inputs that started or stopped
  drifting; label completeness, volume and error rate then and now;
* **the error pattern** to work on now: the error analysis' recommendation (the lever
  expected to fix the most errors, ``service.analysis``) over the period;
* **experiments** running on the line, and those that ended in the period with their
  journal decision; the line's **cumulative improvement** from the journal;
* **value at stake** per week: errors a week (records x error rate) x
  ``impact.value_per_unit`` of the newest experiment on the line that prices one.

Lines are ranked by value at stake, then (for lines without a price) by errors a week.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from service.journal import line_of
from service.modelwatch._report import rounded

__all__ = ["line_review", "pattern", "rank_lines", "summary_then"]

_DAY = 86_400


def summary_then(history: Mapping[int, Mapping[str, Any]], at: float) -> Mapping[str, Any] | None:
    """The last daily summary written on or before ``at``'s day (None if none)."""
    day = math.floor(at / _DAY)
    past = [d for d in history if d <= day]
    return history[max(past)] if past else None


def _split(items: Sequence[str]) -> dict[str, str]:
    out = {}
    for item in items:
        segment, metric, status = item.rsplit("|", 2)
        out[f"{metric} in {segment}"] = status
    return out


def changes(then: Mapping[str, Any] | None, now: Mapping[str, Any]) -> dict[str, Any]:
    """What moved between two daily summaries (``then`` None: everything is new)."""
    before = _split((then or {}).get("not_ok") or [])
    after = _split(now.get("not_ok") or [])
    drift_then = set((then or {}).get("drift") or [])
    drift_now = set(now.get("drift") or [])
    return {
        "degraded": sorted(k for k, s in after.items() if s == "degraded" and before.get(k) != s),
        "warning": sorted(k for k, s in after.items() if s == "warning" and k not in before),
        "still_degraded": sorted(
            k for k, s in after.items() if s == "degraded" and before.get(k) == s
        ),
        "recovered": sorted(k for k in before if k not in after),
        "drift_started": sorted(drift_now - drift_then),
        "drift_stopped": sorted(drift_then - drift_now),
        "still_drifting": sorted(drift_now & drift_then),
    }


def _then_now(then: Mapping[str, Any] | None, now: Mapping[str, Any], key: str) -> dict[str, Any]:
    return {"then": None if then is None else then.get(key), "now": now.get(key)}


def _experiments(
    name: str, records: Sequence[Any], entries: Mapping[str, Any], since: float
) -> dict[str, list[dict[str, Any]]]:
    running, ended = [], []
    for record in records:
        if line_of(record.spec) != name:
            continue
        if record.status == "running":
            running.append(
                {
                    "experiment": record.key,
                    "started_at": record.started_at,
                    "version": record.version,
                }
            )
        elif record.ended_at is not None and record.ended_at >= since:
            entry = entries.get(record.key)
            primary = None if entry is None or entry.primary is None else entry.primary
            ended.append(
                {
                    "experiment": record.key,
                    "status": record.status,
                    "ended_at": record.ended_at,
                    "reasons": [] if entry is None else list(entry.decision.reasons),
                    "primary": None
                    if primary is None
                    else {
                        "metric": primary.metric,
                        "relative": primary.relative.model_dump(),
                    },
                }
            )
    return {"running": running, "ended": sorted(ended, key=lambda e: e["ended_at"])}


def _pattern(analysis: Mapping[str, Any] | None, error: str | None) -> dict[str, Any] | None:
    if analysis is None:
        return None if error is None else {"unavailable": error}
    recommendation = analysis.get("recommendation")
    if not recommendation:
        return {"unavailable": "no labelled errors in the period"}
    levers = [lv for lv in analysis.get("levers") or [] if isinstance(lv, Mapping)]
    lever: Mapping[str, Any] = next(
        (lv for lv in levers if lv.get("lever") == recommendation["lever"]), {}
    )
    return {
        "lever": recommendation["lever"],
        "action": recommendation.get("action"),
        "why": recommendation.get("why"),
        "errors": lever.get("errors"),
        "expected_fixed": (lever.get("expected_fixed") or {}).get("estimate"),
        "value": lever.get("value"),
    }


def line_review(
    name: str,
    *,
    history: Mapping[int, Mapping[str, Any]],
    now: float,
    since: float,
    experiments: Sequence[Any],
    entries: Mapping[str, Any],
    cumulative: Sequence[Mapping[str, Any]],
    impact: tuple[float, str] | None,
) -> dict[str, Any]:
    """The review of one line from the monitor's daily summaries (pure: the caller reads
    the stores). ``pattern`` is left for the caller (the error analysis is costly)."""
    out: dict[str, Any] = {
        "model": name,
        "experiments": _experiments(name, experiments, entries, since),
        "cumulative": list(cumulative),
        "pattern": None,
    }
    latest = summary_then(history, now)
    if latest is None:
        out.update(status="pending", changes=None, value_at_stake=None, errors_per_week=None)
        return out
    then = summary_then(history, since)
    errors = None
    if latest.get("error_rate_week") is not None:
        errors = rounded(latest["records_week"] * latest["error_rate_week"], 4)
    value = None
    if errors is not None and impact is not None:
        value = {"estimate": rounded(errors * impact[0], 4), "currency": impact[1]}
    label_at = latest.get("label_at")
    out.update(
        status=latest.get("status"),
        reported_at=latest.get("at"),
        compared_with=None if then is None else then.get("at"),
        changes=changes(then, latest),
        completeness=_then_now(then, latest, "completeness_week"),
        records=_then_now(then, latest, "records_week"),
        error_rate=_then_now(then, latest, "error_rate_week"),
        errors_per_week=errors,
        value_at_stake=value,
        label_lag_s=None if label_at is None else rounded(max(now - float(label_at), 0.0)),
    )
    return out


def pattern(analysis: Mapping[str, Any] | None, error: str | None) -> dict[str, Any]:
    """The error pattern to fix now: the analysis' recommended lever, or why there is none."""
    return _pattern(analysis, error) or {"unavailable": "no analysis"}


def rank_lines(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """By value at stake (highest first), then by errors a week; ranks from 1."""

    def key(line: Mapping[str, Any]) -> tuple[int, float, float, str]:
        value = (line.get("value_at_stake") or {}).get("estimate")
        errors = line.get("errors_per_week")
        return (
            0 if value is not None else 1,
            -(value or 0.0),
            -(errors or 0.0),
            str(line["model"]),
        )

    ranked = sorted(lines, key=key)
    for i, line in enumerate(ranked):
        line["rank"] = i + 1
    return ranked
