"""The reference a model's traffic is compared with: a sample of training rows.

Where it comes from, in order of preference:

* ``uploaded``: a sample of training rows posted to ``POST /v1/models/{name}/reference``
  (features, optional labels);
* ``first_records``: the model's first ``SHARPEN_MODEL_REFERENCE_RECORDS`` records,
  frozen once that many have arrived;
* ``window``: the records of an explicit time window given at analysis time.

Columns are typed from the reference: a column with at most two distinct values is
``binary`` (reported as the share of its larger value, never as a percentile range); a
column the upload declares ``categorical`` (numeric codes) is reported by the share of
its most frequent values; any other is ``numeric`` (mean, standard deviation,
1st/50th/99th percentile). The rows themselves feed the novelty score
(:mod:`service.analysis._novelty`) and categorical columns are categories there and in
the probe.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from service.analysis._frame import FloatArray, feature_column

Kind = Literal["binary", "categorical", "numeric"]
MAX_FEATURES = 256
_TOP_CATEGORIES = 10


@dataclass(frozen=True, slots=True)
class Reference:
    """Reference rows (``rows[i, j]`` is feature ``columns[j]``; NaN where absent)."""

    columns: tuple[str, ...]
    rows: FloatArray
    source: str
    labels: FloatArray | None = None
    start: float | None = None
    end: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    categorical: tuple[str, ...] = ()
    """Columns holding category codes (declared by the upload)."""

    @property
    def records(self) -> int:
        return int(self.rows.shape[0])

    @property
    def categorical_indices(self) -> tuple[int, ...]:
        return tuple(j for j, name in enumerate(self.columns) if name in self.categorical)

    @property
    def kinds(self) -> dict[str, Kind]:
        return {
            name: "categorical" if name in self.categorical else column_kind(self.rows[:, j])
            for j, name in enumerate(self.columns)
        }

    def to_dict(self) -> dict[str, Any]:
        """What the report says about the reference (no rows)."""
        features: dict[str, Any] = {}
        for j, name in enumerate(self.columns):
            features[name] = describe(self.rows[:, j], categorical=name in self.categorical)
        out: dict[str, Any] = {
            "source": self.source,
            "records": self.records,
            "start": self.start,
            "end": self.end,
            "features": features,
            **self.extra,
        }
        if self.labels is not None:
            known = self.labels[~np.isnan(self.labels)]
            out["labelled"] = int(known.size)
        return out


def column_kind(values: FloatArray) -> Kind:
    """``binary`` when the column takes at most two distinct values, else ``numeric``."""
    known = values[~np.isnan(values)]
    return "binary" if np.unique(known).size <= 2 else "numeric"


def _round(x: float) -> float:
    return float(f"{x:.4g}")


def describe(values: FloatArray, *, categorical: bool = False) -> dict[str, Any]:
    """A column as a person reads it: binary share, top categories or numeric spread."""
    known = values[~np.isnan(values)]
    out: dict[str, Any] = {"n": int(known.size), "missing": int(values.size - known.size)}
    if known.size == 0:
        return {**out, "kind": "categorical" if categorical else "numeric"}
    distinct, counts = np.unique(known, return_counts=True)
    if categorical:
        top = np.argsort(-counts, kind="stable")[:_TOP_CATEGORIES]
        return {
            **out,
            "kind": "categorical",
            "distinct": int(distinct.size),
            "top": [
                {"value": _round(float(distinct[i])), "share": _round(counts[i] / known.size)}
                for i in top
            ],
        }
    if distinct.size <= 2:
        high = float(distinct[-1])
        return {
            **out,
            "kind": "binary",
            "values": [_round(float(v)) for v in distinct],
            "share_of_high": _round(float(np.mean(known == high))),
        }
    p1, p50, p99 = np.percentile(known, [1.0, 50.0, 99.0])
    return {
        **out,
        "kind": "numeric",
        "mean": _round(float(known.mean())),
        "sd": _round(float(known.std())),
        "p1": _round(float(p1)),
        "median": _round(float(p50)),
        "p99": _round(float(p99)),
    }


def feature_names(
    records: Sequence[Mapping[str, Any]], *, min_values: int = 20, max_features: int = MAX_FEATURES
) -> tuple[str, ...]:
    """Numeric features seen at least ``min_values`` times, the most frequent first kept."""
    seen: dict[str, int] = {}
    for r in records:
        for name, value in (r.get("features") or {}).items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                seen[name] = seen.get(name, 0) + 1
    names = sorted((n for n, c in seen.items() if c >= min_values), key=lambda n: (-seen[n], n))
    return tuple(sorted(names[:max_features]))


def feature_matrix(records: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> FloatArray:
    """Rows x columns of numeric features; NaN where absent or null."""
    out = np.full((len(records), len(columns)), np.nan)
    for j, name in enumerate(columns):
        out[:, j] = feature_column(records, name)
    return out


def build_reference(
    records: Sequence[Mapping[str, Any]], *, source: str, min_values: int = 20
) -> Reference:
    """The reference of some records (their numeric features; labels when binary/numeric)."""
    columns = feature_names(records, min_values=min_values)
    stamps = [float(r["timestamp"]) for r in records if r.get("timestamp") is not None]
    return Reference(
        columns=columns,
        rows=feature_matrix(records, columns),
        source=source,
        start=min(stamps) if stamps else None,
        end=max(stamps) if stamps else None,
    )


def reference_meta(reference: Reference) -> dict[str, Any]:
    """What the store keeps beside the rows to rebuild the reference."""
    return {
        "columns": list(reference.columns),
        "source": reference.source,
        "start": reference.start,
        "end": reference.end,
        "has_labels": reference.labels is not None,
        "categorical": list(reference.categorical),
        "extra": reference.extra,
    }


def pack_rows(reference: Reference) -> bytes:
    """Rows (and labels as a last column) as little-endian float32 bytes."""
    block = reference.rows
    if reference.labels is not None:
        block = np.column_stack([block, reference.labels])
    return np.ascontiguousarray(block, dtype="<f4").tobytes()


def unpack(meta: Mapping[str, Any], blob: bytes) -> Reference:
    """The reference the store kept (see :func:`reference_meta` and :func:`pack_rows`)."""
    columns = tuple(str(c) for c in meta.get("columns", []))
    has_labels = bool(meta.get("has_labels"))
    width = len(columns) + (1 if has_labels else 0)
    flat = np.frombuffer(blob, dtype="<f4").astype(np.float64)
    block = flat.reshape(-1, width) if width else np.zeros((0, 0))
    return Reference(
        columns=columns,
        rows=block[:, : len(columns)],
        source=str(meta.get("source", "unknown")),
        labels=block[:, -1] if has_labels else None,
        start=meta.get("start"),
        end=meta.get("end"),
        extra=dict(meta.get("extra") or {}),
        categorical=tuple(str(c) for c in meta.get("categorical") or ()),
    )
