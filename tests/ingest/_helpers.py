"""Shared pieces of the ingestion tests: specs, event generators, a numpy reference, draining."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from service.settings import Settings
from service.store import (
    AggregationStore,
    ExperimentCells,
    RedisSettings,
    StreamStats,
    close,
    connect,
)
from service.worker import Aggregator
from tests._factories import spec as experiment_spec
from tests._wait import await_for

FIELDS = (
    "n",
    "sum",
    "sum_sq",
    "den_sum",
    "den_sum_sq",
    "cross_sum",
    "cov_sum",
    "cov_sum_sq",
    "cov_cross",
)

METRICS: list[dict[str, Any]] = [
    {
        "name": "revenue",
        "kind": "mean",
        "value": "revenue",
        "covariate": "pre_revenue",
        "role": "primary",
        "mde": 0.05,
    },
    {"name": "converted", "kind": "proportion", "value": "converted"},
    {"name": "ctr", "kind": "ratio", "numerator": "clicks", "denominator": "views"},
    {
        "name": "latency_ms",
        "kind": "mean",
        "value": "latency_ms",
        "role": "guardrail",
        "direction": "decrease",
        "margin": 0.1,
    },
]


def spec(
    key: str,
    *,
    unit: str = "user",
    segments: Sequence[str] = ("country", "device"),
    metrics: list[dict[str, Any]] | None = None,
    traffic: float = 1.0,
) -> dict[str, Any]:
    return experiment_spec(
        key, unit=unit, traffic=traffic, segments=list(segments), metrics=metrics or METRICS
    )


@dataclass
class Unit:
    unit_id: str
    variant: str
    attributes: dict[str, Any]
    covariate: float | None


@dataclass
class Workload:
    """Random units and events with known ground truth (values are floats or integers)."""

    key: str
    units: list[Unit]
    events: list[dict[str, Any]] = field(default_factory=list)


def make_units(
    rng: np.random.Generator, count: int, *, prefix: str = "u", missing_device: float = 0.1
) -> list[Unit]:
    countries = ["US", "CA", "DE", "FR"]
    devices = ["mobile", "desktop", "tablet"]
    units = []
    for i in range(count):
        attributes: dict[str, Any] = {"country": countries[int(rng.integers(len(countries)))]}
        if rng.random() > missing_device:
            attributes["device"] = devices[int(rng.integers(len(devices)))]
        covariate = None if rng.random() < 0.2 else float(rng.integers(0, 50))
        variant = "baseline" if rng.random() < 0.5 else "candidate"
        units.append(Unit(f"{prefix}{i}", variant, attributes, covariate))
    return units


def make_events(
    rng: np.random.Generator,
    key: str,
    units: Sequence[Unit],
    *,
    per_unit: tuple[int, int] = (1, 8),
    integers: bool = False,
    start: float | None = None,
    span_s: float = 4 * 3600,
) -> list[dict[str, Any]]:
    """Events of ``units``, sorted by timestamp (so hourly deltas are exact prefix sums)."""
    start = start if start is not None else time.time() - span_s - 60
    out = []
    for unit in units:
        for _ in range(int(rng.integers(per_unit[0], per_unit[1] + 1))):
            if integers:
                revenue: float = float(rng.integers(0, 100))
                latency: float = float(rng.integers(5, 500))
            else:
                revenue = float(np.round(rng.exponential(20.0), 3))
                latency = float(np.round(rng.gamma(2.0, 40.0), 3))
            values: dict[str, float] = {
                "revenue": revenue,
                "converted": float(rng.random() < 0.3),
                "latency_ms": latency,
            }
            if rng.random() < 0.8:
                values["views"] = float(rng.integers(0, 4))
                values["clicks"] = float(rng.integers(0, 3))
            event: dict[str, Any] = {
                "event_id": uuid.uuid4().hex,
                "experiment": key,
                "unit_id": unit.unit_id,
                "variant": unit.variant,
                "timestamp": start + float(rng.uniform(0, span_s)),
                "values": values,
                "attributes": unit.attributes,
            }
            if unit.covariate is not None:
                event["covariates"] = {"pre_revenue": unit.covariate}
            out.append(event)
    out.sort(key=lambda e: e["timestamp"])
    return out


def ok(accepted: int, duplicates: int = 0) -> dict[str, Any]:
    """The answer of ``POST /v1/events`` to a batch whose events were all valid."""
    return {"accepted": accepted, "duplicates": duplicates, "rejected": [], "rejected_count": 0}


def batches(items: Sequence[Any], size: int) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


# --- the numpy reference -----------------------------------------------------------------


def _metric_arrays(
    metric: dict[str, Any], rows: list[list[dict[str, Any]]], covs: list[float | None]
) -> dict[str, np.ndarray]:
    """Per-unit y, d, x of one metric (rows: each unit's events)."""
    kind = metric["kind"]
    if kind == "ratio":
        num = np.array([sum(e["values"].get(metric["numerator"], 0.0) for e in r) for r in rows])
        den = np.array([sum(e["values"].get(metric["denominator"], 0.0) for e in r) for r in rows])
        y = np.where(den != 0, num, 0.0)
        d = den
    else:
        vals = [[e["values"].get(metric["value"], 0.0) for e in r] for r in rows]
        if kind == "mean":
            y = np.array([float(np.sum(v)) if v else 0.0 for v in vals])
        else:
            y = np.array([1.0 if any(x > 0 for x in v) else 0.0 for v in vals])
        d = np.zeros(len(rows))
    if metric.get("covariate"):
        x = np.array([c if c is not None else 0.0 for c in covs])
    else:
        x = np.zeros(len(rows))
    return {"y": y, "d": d, "x": x}


def reference(
    spec_doc: dict[str, Any],
    events: Sequence[dict[str, Any]],
    exposures: Sequence[tuple[str, str, dict[str, Any]]] = (),
    *,
    until_hour: int | None = None,
) -> dict[tuple[str, tuple[str, str] | None, str], dict[str, float]]:
    """Expected all-time cells (or as of the end of ``until_hour``) computed with numpy."""
    per_request = spec_doc["unit"] == "request"
    segments = spec_doc["segments"]
    metrics = spec_doc["metrics"]
    rows: list[list[dict[str, Any]]] = []
    labels: list[tuple[str, dict[str, Any]]] = []
    covs: list[float | None] = []
    if per_request:
        for e in events:
            if until_hour is not None and e["timestamp"] // 3600 > until_hour:
                continue
            rows.append([e])
            labels.append((e["variant"], e.get("attributes") or {}))
            covs.append((e.get("covariates") or {}).get("pre_revenue"))
    else:
        index: dict[str, int] = {}

        def unit(unit_id: str, variant: str, attributes: dict[str, Any]) -> int:
            if unit_id not in index:
                index[unit_id] = len(rows)
                rows.append([])
                labels.append((variant, attributes))
                covs.append(None)
            return index[unit_id]

        for unit_id, variant, attributes in exposures:
            unit(unit_id, variant, attributes)
        for e in events:
            if until_hour is not None and e["timestamp"] // 3600 > until_hour:
                continue
            i = unit(e["unit_id"], e["variant"], e.get("attributes") or {})
            rows[i].append(e)
            if covs[i] is None and e.get("covariates"):
                covs[i] = e["covariates"].get("pre_revenue")
    variants = np.array([label[0] for label in labels])
    cells: list[tuple[str, tuple[str, str] | None, np.ndarray]] = []
    for variant in sorted(set(variants.tolist())):
        in_variant = variants == variant
        cells.append((variant, None, in_variant))
        for seg in segments:
            values = np.array([str(label[1].get(seg, "")) for label in labels])
            for value in sorted(set(values[in_variant].tolist()) - {""}):
                cells.append((variant, (seg, value), in_variant & (values == value)))
    out = {}
    for metric in metrics:
        arrays = _metric_arrays(metric, rows, covs)
        y, d, x = arrays["y"], arrays["d"], arrays["x"]
        for variant, segment, mask in cells:
            out[(variant, segment, metric["name"])] = {
                "n": float(mask.sum()),
                "sum": float(y[mask].sum()),
                "sum_sq": float((y[mask] ** 2).sum()),
                "den_sum": float(d[mask].sum()),
                "den_sum_sq": float((d[mask] ** 2).sum()),
                "cross_sum": float((y[mask] * d[mask]).sum()),
                "cov_sum": float(x[mask].sum()),
                "cov_sum_sq": float((x[mask] ** 2).sum()),
                "cov_cross": float((x[mask] * y[mask]).sum()),
            }
    return out


def observed(
    cells: ExperimentCells, hour: int | None = None
) -> dict[tuple[str, tuple[str, str] | None, str], dict[str, float]]:
    chosen = cells.totals() if hour is None else cells.cumulative(hour)
    return {
        (c.variant, c.segment, c.metric): {f: float(getattr(c, f)) for f in FIELDS} for c in chosen
    }


def assert_same(
    got: dict[Any, dict[str, float]], want: dict[Any, dict[str, float]], *, exact: bool = False
) -> None:
    assert set(got) == set(want), (sorted(set(got) ^ set(want), key=str)[:10],)
    for label, expected in want.items():
        for name, value in expected.items():
            actual = got[label][name]
            if exact:
                assert actual == value, (label, name, actual, value)
            else:
                assert np.isclose(actual, value, rtol=1e-9, atol=1e-7), (label, name, actual, value)


# --- draining the streams ------------------------------------------------------------------


async def wait_drained(settings: Settings, keys: Sequence[str], limit_s: float = 20.0) -> None:
    """Wait until every accepted event and exposure of ``keys`` has been aggregated."""
    assert settings.redis_url is not None
    redis = await connect(RedisSettings(settings.redis_url, cluster=settings.redis_cluster))
    store = AggregationStore(redis)

    def drained(stats: list[StreamStats]) -> bool:
        return not any(
            s.backlog_events
            or s.events_pending
            or s.exposures_pending
            or s.events_undelivered
            or s.exposures_undelivered
            or (s.events_length and s.events_undelivered is None)
            for s in stats
        )

    async def stats() -> list[StreamStats]:
        return [await store.stream_stats(key) for key in keys]

    try:
        await await_for(stats, until=drained, what=f"{list(keys)} drained", timeout_s=limit_s)
    finally:
        await close(redis)


async def aggregate(settings: Settings, keys: Sequence[str]) -> None:
    """Run an in-process aggregator until ``keys`` are drained."""
    aggregator = Aggregator(settings)
    await aggregator.start()
    try:
        await wait_drained(settings, keys)
    finally:
        await aggregator.stop()


async def read_cells(settings: Settings, key: str) -> ExperimentCells:
    from service.store import AggregateStore

    assert settings.redis_url is not None
    redis = await connect(RedisSettings(settings.redis_url, cluster=settings.redis_cluster))
    try:
        return await AggregateStore(redis).read(key)
    finally:
        await close(redis)


FAST = {
    "aggregator_block_ms": 20,
    "config_poll_interval_s": 0.05,
    "aggregator_trim_interval_s": 0.05,
}
"""Settings that make an in-process aggregator react quickly in tests."""
