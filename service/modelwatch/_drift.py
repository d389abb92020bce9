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
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from service.modelwatch._contrib import bin_position, bin_range
from service.stats import homogeneity_p, population_stability_index

__all__ = ["DriftInput", "coarse_bins", "drift_row"]

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
