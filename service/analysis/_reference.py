"""Reference ranges of numeric features and the out-of-distribution flag.

The reference range of a feature is its 1st-99th percentile over a baseline
period: by default the first ``reference_records`` records a model ever sent
(frozen by the store when that many have arrived, so trimming never moves it),
or an explicit time window given at analysis time. A record is out of
distribution when any referenced feature lies outside its range.

By construction about 2% of baseline records fall outside each feature's range,
so with k features roughly 1 - 0.98^k of in-distribution traffic is flagged; the
shift lever's evidence therefore compares the error rate of flagged records with
the rest instead of trusting the flag alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from service.analysis._frame import BoolArray, FloatArray, feature_column


@dataclass(frozen=True, slots=True)
class FeatureRange:
    low: float
    high: float
    n: int


@dataclass(frozen=True, slots=True)
class Reference:
    """Frozen feature ranges and where they came from."""

    features: dict[str, FeatureRange]
    source: str
    records: int
    lower_pct: float = 1.0
    upper_pct: float = 99.0
    start: float | None = None
    end: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "records": self.records,
            "percentiles": [self.lower_pct, self.upper_pct],
            "start": self.start,
            "end": self.end,
            "features": {
                k: {"low": r.low, "high": r.high, "n": r.n}
                for k, r in sorted(self.features.items())
            },
            **self.extra,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Reference:
        low, high = data.get("percentiles", [1.0, 99.0])
        return cls(
            features={
                k: FeatureRange(float(v["low"]), float(v["high"]), int(v["n"]))
                for k, v in data.get("features", {}).items()
            },
            source=str(data.get("source", "unknown")),
            records=int(data.get("records", 0)),
            lower_pct=float(low),
            upper_pct=float(high),
            start=data.get("start"),
            end=data.get("end"),
        )


def build_reference(
    records: Sequence[Mapping[str, Any]],
    *,
    source: str,
    lower_pct: float = 1.0,
    upper_pct: float = 99.0,
    min_values: int = 20,
    max_features: int = 64,
) -> Reference:
    """Percentile ranges of every numeric feature seen at least ``min_values`` times."""
    seen: dict[str, int] = {}
    for r in records:
        for name, value in (r.get("features") or {}).items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                seen[name] = seen.get(name, 0) + 1
    names = sorted(n for n, c in seen.items() if c >= min_values)
    names = sorted(names, key=lambda n: -seen[n])[:max_features]
    ranges: dict[str, FeatureRange] = {}
    for name in sorted(names):
        column = feature_column(records, name)
        values = column[~np.isnan(column)]
        low, high = np.percentile(values, [lower_pct, upper_pct])
        ranges[name] = FeatureRange(float(low), float(high), int(values.size))
    stamps = [float(r["timestamp"]) for r in records if r.get("timestamp") is not None]
    return Reference(
        features=ranges,
        source=source,
        records=len(records),
        lower_pct=lower_pct,
        upper_pct=upper_pct,
        start=min(stamps) if stamps else None,
        end=max(stamps) if stamps else None,
    )


def out_of_range(
    features: Mapping[str, FloatArray], reference: Reference, n: int
) -> tuple[BoolArray, dict[str, int]]:
    """Rows with any feature outside its range, and how many rows each feature flags."""
    flagged = np.zeros(n, dtype=bool)
    per_feature: dict[str, int] = {}
    for name, rng in reference.features.items():
        column = features.get(name)
        if column is None:
            continue
        with np.errstate(invalid="ignore"):
            outside = (column < rng.low) | (column > rng.high)
        per_feature[name] = int(outside.sum())
        flagged |= outside
    return flagged, per_feature
