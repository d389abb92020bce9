"""What changed between two reports of a model, as alerts.

A segment x metric that becomes ``degraded`` (``model.degraded``, webhook), becomes a
``warning`` (logged), or comes back to ``ok`` from either (``model.recovered``,
webhook); an input that starts drifting (``model.drift``, webhook) or stops (logged).
Each change is identified by its subject and the previous report's time, so several
workers racing on one model send it once (``WatchStore.first_notice``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Change", "transitions"]


@dataclass(frozen=True, slots=True)
class Change:
    event: str
    subject: str
    since: float
    message: str
    webhook: bool
    data: dict[str, Any] = field(default_factory=dict)


def _statuses(report: Mapping[str, Any] | None) -> dict[tuple[str, str], str]:
    rows = (report or {}).get("statuses") or []
    return {(r["segment"], r["metric"]): r["status"] for r in rows}


def _drifts(report: Mapping[str, Any] | None) -> dict[str, Mapping[str, Any]]:
    rows = (report or {}).get("drift") or []
    return {r["feature"]: r for r in rows}


def _evidence(report: Mapping[str, Any], segment: str, metric: str) -> list[dict[str, Any]]:
    return [
        dict(c)
        for c in report.get("cells") or []
        if c["segment"] == segment and c["metric"] == metric
    ]


def _relative(rows: list[dict[str, Any]]) -> str:
    parts = []
    for row in rows:
        rel = row.get("relative") or {}
        estimate, ci = rel.get("estimate"), rel.get("ci") or [None, None]
        if estimate is None or None in ci:
            continue
        parts.append(
            f"{row['window']} {estimate:+.1%} (CI {ci[0]:+.1%} to {ci[1]:+.1%}; "
            f"{row['value']:.4g} vs {row['reference']:.4g})"
        )
    return "; ".join(parts) or "no interval"


def transitions(previous: Mapping[str, Any] | None, report: Mapping[str, Any]) -> list[Change]:
    """The alerts of ``report`` given the ``previous`` one (None: the first)."""
    since = float((previous or {}).get("analysed_at") or 0.0)
    before, now = _statuses(previous), _statuses(report)
    out = []
    for (segment, metric), status in now.items():
        was = before.get((segment, metric), "ok")
        if status == was:
            continue
        subject = f"{segment}|{metric}"
        rows = _evidence(report, segment, metric)
        data: dict[str, Any] = {"segment": segment, "metric": metric, "status": status}
        data.update(was=was, cells=rows)
        if status == "degraded":
            message = f"{metric} degraded in {segment}: {_relative(rows)}"
            out.append(Change("model.degraded", subject, since, message, True, data))
        elif status == "warning" and was != "degraded":
            message = f"{metric} worse than the reference in {segment}: {_relative(rows)}"
            out.append(Change("model.warning", subject, since, message, False, data))
        elif status == "ok" and was in ("degraded", "warning"):
            message = f"{metric} recovered in {segment} (was {was})"
            out.append(Change("model.recovered", subject, since, message, True, data))
    old_drift, new_drift = _drifts(previous), _drifts(report)
    for feature, row in new_drift.items():
        was = (old_drift.get(feature) or {}).get("status", "ok")
        data = {"feature": feature, "psi": row.get("psi"), "p_value": row.get("p_value")}
        data["bins"] = row.get("bins")
        if row["status"] == "drift" and was != "drift":
            message = f"input drift in {feature}: PSI {row['psi']}, p = {row['p_value']}"
            out.append(Change("model.drift", feature, since, message, True, data))
        elif row["status"] == "ok" and was == "drift":
            message = f"{feature} no longer drifts (PSI {row['psi']})"
            out.append(Change("model.drift_cleared", feature, since, message, False, data))
    return out
