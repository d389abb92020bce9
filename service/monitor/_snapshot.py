"""From a results document to the bounded Prometheus view of one experiment, and the
snapshots of every running experiment into ``GET /metrics`` (:func:`refresh_experiment_metrics`).

Segment label values are bounded per attribute: the first ``max_values`` values to appear
(largest segments first) keep their own label, later ones fold into ``attr=other``, and
the admitted values travel with the snapshot so the choice stays put across passes and
workers. Rows folding onto one label set show the worst of them (highest status).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from service import format as fmt
from service.metrics import GUARDRAIL_STATUS_CODES, ExperimentSnapshot, GuardrailSeries
from service.runtime import Runtime
from service.spec import ENDED
from service.store.connection import RedisError
from service.store.monitor_state import MonitorState

__all__ = [
    "OTHER",
    "build_snapshot",
    "dump_snapshot",
    "load_snapshot",
    "refresh_experiment_metrics",
    "segment_label",
]

OTHER = "other"
ALL = "all"
_FOLDED = frozenset({"__other__", OTHER})

Admitted = dict[str, list[str]]


def segment_label(segment: Mapping[str, Any] | None, admitted: Admitted, max_values: int) -> str:
    """``all`` for the whole population, else ``attr=value[,attr=value]`` with bounded values.

    ``admitted`` is updated in place: a new value is admitted while its attribute has room.
    """
    if not segment:
        return ALL
    parts = []
    for attr in sorted(segment):
        value = str(segment[attr])
        if value in _FOLDED:
            value = OTHER
        else:
            seen = admitted.setdefault(attr, [])
            if value not in seen:
                if len(seen) < max_values:
                    seen.append(value)
                else:
                    value = OTHER
        parts.append(f"{attr}={value}")
    return ",".join(parts)


def _segment_units(rows: Sequence[Any]) -> dict[str, float]:
    sizes: dict[str, float] = {}
    for row in rows:
        if not isinstance(row, Mapping) or not row.get("segment"):
            continue
        n = 0.0
        units = row.get("units")  # guardrail rows: {"baseline": n, "treatment": n}
        if isinstance(units, Mapping):
            n = sum(fmt.as_float(v) or 0.0 for v in units.values())
        for side in ("baseline", "treatment"):  # metric rows: {"units": n, "mean": x} each
            block = row.get(side)
            if isinstance(block, Mapping):
                n += fmt.as_float(block.get("units")) or 0.0
        fp = _fingerprint(row["segment"])
        sizes[fp] = max(sizes.get(fp, 0.0), n)
    return sizes


def _fingerprint(segment: Any) -> str:
    return orjson.dumps(segment, option=orjson.OPT_SORT_KEYS).decode() if segment else ""


def build_snapshot(
    doc: Mapping[str, Any],
    *,
    admitted: Admitted,
    max_values: int,
    at: float,
) -> ExperimentSnapshot:
    """The snapshot of one results document (docs/results.md)."""
    key = str(doc.get("experiment", ""))
    units_doc = doc.get("units")
    units = {
        str(v): int(n)
        for v, n in (units_doc.items() if isinstance(units_doc, Mapping) else [])
        if fmt.as_float(n) is not None
    }
    srm = doc.get("srm") if isinstance(doc.get("srm"), Mapping) else {}
    assert isinstance(srm, Mapping)
    rows = [r for r in doc.get("guardrails") or [] if isinstance(r, Mapping)]
    sizes = _segment_units([*(doc.get("metrics") or []), *rows])
    # Largest segments first, so they are the ones admitted when values must fold.
    order = sorted(
        range(len(rows)), key=lambda i: (-sizes.get(_fingerprint(rows[i].get("segment")), 0.0), i)
    )
    chosen: dict[tuple[str, str, str], GuardrailSeries] = {}
    for i in order:
        row = rows[i]
        status = GUARDRAIL_STATUS_CODES.get(str(row.get("status")), 1)
        rel = row.get("relative") if isinstance(row.get("relative"), Mapping) else {}
        assert isinstance(rel, Mapping)
        ci = rel.get("ci") if isinstance(rel.get("ci"), list | tuple) else [None, None]
        assert isinstance(ci, list | tuple)
        series = GuardrailSeries(
            metric=str(row.get("metric")),
            variant=str(row.get("variant")),
            segment=segment_label(row.get("segment"), admitted, max_values),
            status=status,
            estimate=fmt.as_float(rel.get("estimate")),
            lower=fmt.as_float(ci[0]) if len(ci) > 0 else None,
            upper=fmt.as_float(ci[1]) if len(ci) > 1 else None,
        )
        slot = (series.metric, series.variant, series.segment)
        if slot not in chosen or series.status > chosen[slot].status:
            chosen[slot] = series
    ok = srm.get("ok")
    return ExperimentSnapshot(
        experiment=key,
        analysed_at=at,
        units=units,
        srm_p_value=fmt.as_float(srm.get("p_value")),
        srm_ok=ok is not False,
        guardrails=tuple(chosen.values()),
    )


def dump_snapshot(snapshot: ExperimentSnapshot, admitted: Admitted) -> str:
    data = {
        "experiment": snapshot.experiment,
        "analysed_at": snapshot.analysed_at,
        "units": dict(snapshot.units),
        "srm_p_value": snapshot.srm_p_value,
        "srm_ok": snapshot.srm_ok,
        "guardrails": [
            [g.metric, g.variant, g.segment, g.status, g.estimate, g.lower, g.upper]
            for g in snapshot.guardrails
        ],
        "admitted": admitted,
        "streams": {k: list(v) for k, v in snapshot.streams.items()},
        "aggregation_lag_s": snapshot.aggregation_lag_s,
        "events_accepted": snapshot.events_accepted,
        "events_duplicates": snapshot.events_duplicates,
        "rollout_step": snapshot.rollout_step,
        "rollout_held": snapshot.rollout_held,
    }
    return orjson.dumps(data).decode()


def load_snapshot(raw: str) -> tuple[ExperimentSnapshot, Admitted]:
    data = orjson.loads(raw)
    snapshot = ExperimentSnapshot(
        experiment=data["experiment"],
        analysed_at=float(data["analysed_at"]),
        units={str(k): int(v) for k, v in data.get("units", {}).items()},
        srm_p_value=data.get("srm_p_value"),
        srm_ok=bool(data.get("srm_ok", True)),
        guardrails=tuple(GuardrailSeries(*row) for row in data.get("guardrails", [])),
        streams={str(k): (int(v[0]), int(v[1])) for k, v in data.get("streams", {}).items()},
        aggregation_lag_s=data.get("aggregation_lag_s"),
        events_accepted=data.get("events_accepted"),
        events_duplicates=data.get("events_duplicates"),
        rollout_step=data.get("rollout_step"),
        rollout_held=data.get("rollout_held"),
    )
    admitted = {str(k): [str(v) for v in vs] for k, vs in data.get("admitted", {}).items()}
    return snapshot, admitted


log = logging.getLogger("sharpen.metrics")


async def refresh_experiment_metrics(runtime: Runtime, now: float | None = None) -> None:
    """Statuses of every experiment, and the snapshots of running ones and of those that
    ended within ``metrics_ended_retention_s``. On a Redis error the last view stays."""
    now = time.time() if now is None else now
    retention = runtime.settings.metrics_ended_retention_s
    try:
        records = await runtime.experiments.list()
        shown = [
            r.key
            for r in records
            if r.status == "running"
            or (r.status in ENDED and r.ended_at is not None and now - r.ended_at <= retention)
        ]
        raws = await MonitorState(runtime.redis).snapshots(shown)
    except (RedisError, OSError) as exc:
        log.warning("metrics: experiment view not refreshed: %s", exc)
        return
    snapshots: list[ExperimentSnapshot] = []
    for key, raw in raws.items():
        try:
            snapshots.append(load_snapshot(raw)[0])
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("metrics: unreadable snapshot of %s: %s", key, exc)
    runtime.metrics.experiments.update(
        {r.key: r.status for r in records},
        snapshots,
        {r.key: r.started_at for r in records if r.started_at is not None},
    )
