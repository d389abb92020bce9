"""Input drift: the day's distribution of each input against the reference's.

Numeric inputs are kept as fine sketches (``_contrib.value_bin``); for the comparison
they are cut into up to ten bins of equal reference mass along the axis, plus one bin for
missing values (absent or null), so that both samples are binned the same way.
Categorical inputs (attributes, predicted classes, features the reference declares
categorical) compare their values, the rare ones pooled. A row drifts when its PSI
reaches ``psi_threshold`` (how large) and the homogeneity test rejects at ``alpha_each``
(more than noise); both samples need ``min_records``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from service.modelwatch._contrib import SEP, bin_position, bin_range
from service.modelwatch._windows import Bucket, Windows
from service.stats import homogeneity_p, population_stability_index

__all__ = ["DriftInput", "coarse_bins", "drift_row", "window_drift"]

MISSING = "missing"
_COARSE = 10
_MIN_EXPECTED = 5.0


@dataclass(frozen=True, slots=True)
class DriftInput:
    """One input's counts in the reference and in the window (bin -> count), with the
    records each sample has in all (so that absent values count as missing)."""

    name: str
    source: str  # feature, attribute or prediction
    categorical: bool
    reference: Mapping[str, float]
    current: Mapping[str, float]
    reference_records: float
    current_records: float


def _with_missing(counts: Mapping[str, float], records: float) -> dict[str, float]:
    out = {k: v for k, v in counts.items() if k != "na" and v > 0}
    missing = max(records - sum(out.values()), 0.0)
    if missing > 0.5:
        out[MISSING] = missing
    return out


def coarse_bins(reference: Mapping[str, float], current: Mapping[str, float]) -> list[list[str]]:
    """Sketch bins grouped into up to ten runs of equal reference mass along the axis
    (bins only the window has join the run they fall in); ``missing`` on its own."""
    keys = sorted((set(reference) | set(current)) - {MISSING}, key=bin_position)
    mass = sum(reference.get(k, 0.0) for k in keys)
    groups: list[list[str]] = [[]]
    seen = 0.0
    for key in keys:
        share = reference.get(key, 0.0)
        if groups[-1] and mass > 0 and seen / mass >= len(groups) / _COARSE and share > 0:
            groups.append([])
        groups[-1].append(key)
        seen += share
    groups = [g for g in groups if g]
    if MISSING in reference or MISSING in current:
        groups.append([MISSING])
    return groups


def _categories(reference: Mapping[str, float], current: Mapping[str, float]) -> list[list[str]]:
    """One bin per value whose expected count reaches 5 in both samples; the rest pooled."""
    nr, nc = sum(reference.values()), sum(current.values())
    total = nr + nc
    own: list[list[str]] = []
    pooled: list[str] = []
    for key in sorted(set(reference) | set(current)):
        col = reference.get(key, 0.0) + current.get(key, 0.0)
        if total > 0 and min(col * nr, col * nc) / total >= _MIN_EXPECTED:
            own.append([key])
        else:
            pooled.append(key)
    return own + ([pooled] if pooled else [])


def _sum(counts: Mapping[str, float], group: list[str]) -> float:
    return sum(counts.get(k, 0.0) for k in group)


def _round(x: float | None, digits: int = 4) -> float | None:
    if x is None or not math.isfinite(x):
        return None
    return round(x, digits)


def drift_row(
    item: DriftInput, *, alpha_each: float, psi_threshold: float, min_records: float
) -> dict[str, Any]:
    """The drift report of one input: PSI, p-value, status and the compared bins."""
    reference = _with_missing(item.reference, item.reference_records)
    current = _with_missing(item.current, item.current_records)
    nr, nc = sum(reference.values()), sum(current.values())
    row: dict[str, Any] = {
        "feature": item.name,
        "source": item.source,
        "kind": "categorical" if item.categorical else "numeric",
        "reference_records": round(nr),
        "records": round(nc),
        "psi": None,
        "p_value": None,
        "status": "insufficient",
        "bins": [],
    }
    if nr < min_records or nc < min_records:
        row["reason"] = f"fewer than {min_records:.0f} records in the window or the reference"
        return row
    groups = (_categories if item.categorical else coarse_bins)(reference, current)
    r = [_sum(reference, g) for g in groups]
    c = [_sum(current, g) for g in groups]
    psi = population_stability_index(r, c)
    p = homogeneity_p(r, c)
    drifted = psi >= psi_threshold and p < alpha_each
    row.update(
        psi=_round(psi),
        p_value=_round(p, 6) if p >= 1e-6 else 0.0,
        status="drift" if drifted else "ok",
        bins=[
            {
                "bin": _describe(g, item.categorical),
                "reference_share": _round(rr / nr),
                "share": _round(cc / nc),
            }
            for g, rr, cc in zip(groups, r, c, strict=True)
        ],
    )
    return row


def _describe(group: list[str], categorical: bool) -> str:
    """What a compared bin holds, for people: values, or a range of values."""
    if group == [MISSING]:
        return MISSING
    if categorical:
        return group[0] if len(group) == 1 else f"{len(group)} rarer values"
    low, high = bin_range(group[0])[0], bin_range(group[-1])[1]
    return f"{low:.3g}" if low == high else f"{low:.3g} to {high:.3g}"


ReferenceSet = Mapping[str, tuple[Mapping[str, float], float, bool]]
"""An uploaded reference, per feature: (sketch counts, rows, categorical)."""


def _codes(sketch: Mapping[str, float]) -> dict[str, float]:
    """Category codes of a sketch (``i3`` -> ``3``)."""
    return {k[1:] if k.startswith("i") else k: v for k, v in sketch.items()}


def _attribute_counts(window: Bucket, attribute: str) -> dict[str, float]:
    prefix = f"v{SEP}{attribute}{SEP}"
    rows = {
        c[len(prefix) :]: s.get("n", 0.0) for c, s in window.cells.items() if c.startswith(prefix)
    }
    rest = window.cell(f"a{SEP}{attribute}").get("n", 0.0) - sum(rows.values())
    if rest > 0.5:
        rows["(values without a row)"] = rest
    return rows


def _inputs(
    windows: Windows, uploaded: ReferenceSet, attributes: Sequence[str]
) -> list[DriftInput]:
    day, ref = windows.day, windows.reference
    n_day, n_ref = day.cell("").get("n", 0.0), ref.cell("").get("n", 0.0)
    out = []
    prefix = f"f{SEP}"
    logged = {k[len(prefix) :] for b in (day, ref) for k in b.inputs if k.startswith(prefix)}
    for name in sorted(logged | set(uploaded)):
        current = day.inputs.get(f"{prefix}{name}", {})
        if name in uploaded:
            sketch, rows, categorical = uploaded[name]
            if categorical:
                sketch, current = _codes(sketch), _codes(current)
            out.append(DriftInput(name, "feature", categorical, sketch, current, rows, n_day))
        else:
            reference = ref.inputs.get(f"{prefix}{name}", {})
            out.append(DriftInput(name, "feature", False, reference, current, n_ref, n_day))
    for attribute in attributes:
        reference, current = _attribute_counts(ref, attribute), _attribute_counts(day, attribute)
        out.append(
            DriftInput(
                f"attribute:{attribute}", "attribute", True, reference, current, n_ref, n_day
            )
        )
    return out


def _prediction(windows: Windows) -> DriftInput | None:
    day, ref = windows.day.inputs, windows.reference.inputs
    if day.get("s") or ref.get("s"):
        scores, now = ref.get("s", {}), day.get("s", {})
        return DriftInput(
            "prediction", "prediction", False, scores, now, sum(scores.values()), sum(now.values())
        )
    if day.get("p") or ref.get("p"):
        n_day = windows.day.cell("").get("n", 0.0)
        n_ref = windows.reference.cell("").get("n", 0.0)
        return DriftInput(
            "prediction", "prediction", True, ref.get("p", {}), day.get("p", {}), n_ref, n_day
        )
    return None


def window_drift(
    windows: Windows,
    uploaded: ReferenceSet,
    attributes: Sequence[str],
    *,
    alpha: float,
    psi_threshold: float,
    min_records: float,
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """The drift rows of every input (features: against the uploaded reference set when
    it has them, else the reference period; attributes) and of the predictions; ``alpha``
    is split over them (Bonferroni)."""
    inputs = _inputs(windows, uploaded, attributes)
    prediction = _prediction(windows)
    each = alpha / max(len(inputs) + (prediction is not None), 1)
    rows = [
        drift_row(i, alpha_each=each, psi_threshold=psi_threshold, min_records=min_records)
        for i in inputs
    ]
    if prediction is None:
        return rows, None
    return rows, drift_row(
        prediction, alpha_each=each, psi_threshold=psi_threshold, min_records=min_records
    )
