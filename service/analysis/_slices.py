"""Slice discovery: which attribute combinations concentrate the errors.

An Apriori-style search over labelled records:

1. level 1: every attribute value with at least ``support`` labelled records;
2. level 2: pairs of frequent values of two attributes (a pair can only be frequent
   if both its values are, so infrequent values are pruned before counting);
3. level 3 (``max_order=3``): frequent pairs whose error rate exceeds the overall
   rate are extended by one more attribute (a heuristic prune: error rate is not
   monotone, so a triple under a pair with an unremarkable rate can be missed).

Every frequent slice examined is tested against the rest of the records (one-sided
two-proportion z test with the pooled overall rate), and the p-values are corrected
over all slices examined (Holm by default, Benjamini-Hochberg on request).

Significant slices with lift > 1 are picked greedily by *excess errors* (errors
minus what the overall rate predicts for their size) over the records no earlier
pick covers: raw error mass would rank a broad parent above the small slice that
causes its errors, and overlapping siblings would repeat it (see ``_greedy``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any, Literal

import numpy as np
from scipy import stats

from service.analysis._frame import BoolArray, Frame, IntArray
from service.analysis._groups import clean
from service.analysis._intervals import wilson
from service.stats import adjust_p_values

Correction = Literal["holm", "bh", "none"]
Item = tuple[str, int]
_MAX_CANDIDATES = 200


@dataclass(frozen=True, slots=True)
class Slice:
    items: tuple[Item, ...]
    records: int
    errors: int


@dataclass(frozen=True, slots=True)
class SliceResult:
    """Chosen slices (JSON rows), their row masks, and what the search looked at."""

    slices: list[dict[str, Any]]
    masks: list[BoolArray]
    examined: int
    significant: int
    support: int
    candidates: list[tuple[Item, ...]] = field(default_factory=list)
    """Every significant slice with lift > 1 (the most excess errors first, at most 200)."""


def _cells(
    codes: IntArray, err: BoolArray, size: int, support: int
) -> Iterator[tuple[int, int, int]]:
    """(code, records, errors) of every cell with at least ``support`` records."""
    present = codes >= 0
    n = np.bincount(codes[present], minlength=size)
    e = np.bincount(codes[present & err], minlength=size)
    for code in np.flatnonzero(n >= support):
        yield int(code), int(n[code]), int(e[code])


def _search(
    codes: dict[str, IntArray],
    sizes: dict[str, int],
    err: BoolArray,
    support: int,
    max_order: int,
    rate: float,
) -> list[Slice]:
    found: list[Slice] = []
    pruned: dict[str, IntArray] = {}
    for name in sorted(codes):
        col = codes[name]
        frequent = np.zeros(sizes[name], dtype=bool)
        for code, n, e in _cells(col, err, sizes[name], support):
            frequent[code] = True
            found.append(Slice(((name, code),), n, e))
        if frequent.any():
            pruned[name] = np.where((col >= 0) & frequent[np.maximum(col, 0)], col, -1)
    if max_order < 2:
        return found
    names = sorted(pruned)
    pair_found: dict[tuple[str, str], tuple[IntArray, list[int]]] = {}
    for a, b in combinations(names, 2):
        ca, cb = pruned[a], pruned[b]
        size = sizes[a] * sizes[b]
        both = np.where((ca >= 0) & (cb >= 0), ca * sizes[b] + cb, -1)
        promising: list[int] = []
        for code, n, e in _cells(both, err, size, support):
            found.append(Slice(((a, code // sizes[b]), (b, code % sizes[b])), n, e))
            if e > n * rate and n >= 2 * support:
                promising.append(code)
        if promising:
            pair_found[(a, b)] = (both, promising)
    if max_order < 3:
        return found
    triples: dict[tuple[Item, ...], Slice] = {}
    for (a, b), (both, promising) in pair_found.items():
        inside = np.isin(both, promising)
        sub_pair = both[inside]
        sub_err = err[inside]
        for c in names:
            if c in (a, b):
                continue
            cc = pruned[c][inside]
            combo = np.where(cc >= 0, sub_pair * sizes[c] + cc, -1)
            for code, n, e in _cells(combo, sub_err, sizes[a] * sizes[b] * sizes[c], support):
                pair, vc = divmod(code, sizes[c])
                items = tuple(sorted(((a, pair // sizes[b]), (b, pair % sizes[b]), (c, vc))))
                triples.setdefault(items, Slice(items, n, e))
    found.extend(triples[k] for k in sorted(triples))
    return found


def _p_values(found: list[Slice], total_n: int, total_e: int) -> np.ndarray[Any, Any]:
    n = np.array([s.records for s in found], dtype=np.float64)
    e = np.array([s.errors for s in found], dtype=np.float64)
    rest_n = total_n - n
    pooled = total_e / total_n
    with np.errstate(divide="ignore", invalid="ignore"):
        se = np.sqrt(pooled * (1.0 - pooled) * (1.0 / n + 1.0 / rest_n))
        z = (e / n - (total_e - e) / rest_n) / se
    p = stats.norm.sf(z)
    return np.where((rest_n > 0) & (se > 0), p, 1.0)


def _mask(frame_codes: dict[str, IntArray], items: tuple[Item, ...], n: int) -> BoolArray:
    mask = np.ones(n, dtype=bool)
    for name, code in items:
        mask &= frame_codes[name] == code
    return mask


def discover(
    frame: Frame,
    *,
    min_support: int = 30,
    min_share: float = 0.01,
    max_order: int = 3,
    alpha: float = 0.05,
    correction: Correction = "holm",
    top_k: int = 10,
    level: float = 0.95,
) -> SliceResult:
    """Find the slices that hold the most excess errors (see the module docstring).

    A slice needs ``max(min_support, min_share x labelled)`` labelled records.
    Masks are over all rows of ``frame`` (not only labelled ones).
    """
    lab = frame.labelled
    total_n = int(lab.sum())
    total_e = int(frame.error[lab].sum())
    support = max(min_support, int(np.ceil(min_share * total_n)))
    if total_n == 0 or total_e == 0 or total_e == total_n:
        return SliceResult([], [], 0, 0, support)
    codes = {k: c.codes[lab] for k, c in frame.attributes.items()}
    sizes = {k: len(c) for k, c in frame.attributes.items()}
    rate = total_e / total_n
    found = _search(codes, sizes, frame.error[lab], support, max_order, rate)
    if not found:
        return SliceResult([], [], 0, 0, support)
    raw = _p_values(found, total_n, total_e)
    adjusted = np.asarray(adjust_p_values(raw.tolist(), correction, alpha).p_values)
    candidates = [
        i for i, s in enumerate(found) if adjusted[i] < alpha and s.errors > s.records * rate
    ]
    chosen, marginal = _greedy(found, candidates, codes, frame.error[lab], rate, alpha, top_k)
    full_codes = {k: c.codes for k, c in frame.attributes.items()}
    rows: list[dict[str, Any]] = []
    masks: list[BoolArray] = []
    for i in chosen:
        s = found[i]
        r, lo, hi = wilson(s.errors, s.records, level)
        rows.append(
            {
                "attributes": {k: frame.attributes[k].values[c] for k, c in s.items},
                "records": s.records,
                "errors": s.errors,
                "error_rate": clean(float(r)),
                "ci": [clean(float(lo)), clean(float(hi))],
                "error_share": s.errors / total_e,
                "record_share": s.records / total_n,
                "lift": clean(float(r) / rate),
                "excess_errors": clean(s.errors - s.records * rate),
                "p_value": clean(float(adjusted[i])),
                "p_value_raw": clean(float(raw[i])),
                "new_records": marginal[i][0],
                "new_errors": marginal[i][1],
            }
        )
        masks.append(_mask(full_codes, s.items, frame.n))
    significant = int(np.sum(adjusted < alpha))
    by_excess = sorted(candidates, key=lambda i: -(found[i].errors - found[i].records * rate))
    kept = [found[i].items for i in by_excess[:_MAX_CANDIDATES]]
    return SliceResult(rows, masks, len(found), significant, support, kept)


def _greedy(
    found: list[Slice],
    candidates: list[int],
    codes: dict[str, IntArray],
    err: BoolArray,
    rate: float,
    alpha: float,
    top_k: int,
) -> tuple[list[int], dict[int, tuple[int, int]]]:
    """Pick slices by the excess errors of the records no earlier pick covers.

    After each pick, every candidate loses the records the pick newly covers, so
    slices nested in it drop out, broader ones keep only their own excess and
    overlapping siblings are judged on what they add. A candidate that overlaps
    earlier picks must still show a significant excess on its uncovered part
    (one-sided z test at the Bonferroni level over all slices examined).
    """
    total = err.shape[0]
    n_rem = {i: float(found[i].records) for i in candidates}
    e_rem = {i: float(found[i].errors) for i in candidates}
    z_crit = float(stats.norm.isf(alpha / max(len(found), 1)))
    covered = np.zeros(total, dtype=bool)
    chosen: list[int] = []
    marginal: dict[int, tuple[int, int]] = {}

    def passes(i: int) -> bool:
        n, e = n_rem[i], e_rem[i]
        if n <= 0 or e - n * rate <= 0:
            return False
        if n == found[i].records:
            return True  # untouched by earlier picks: its corrected test already passed
        var = rate * (1.0 - rate) * n * (total - n) / total
        return bool(var > 0 and (e - n * rate) / np.sqrt(var) >= z_crit)

    while len(chosen) < top_k:
        live = [i for i in n_rem if passes(i)]
        if not live:
            break
        best = max(live, key=lambda i: (e_rem[i] - n_rem[i] * rate, -len(found[i].items), -i))
        chosen.append(best)
        marginal[best] = (int(n_rem[best]), int(e_rem[best]))
        fresh = np.flatnonzero(_mask(codes, found[best].items, total) & ~covered)
        covered[fresh] = True
        fresh_err = err[fresh]
        del n_rem[best], e_rem[best]
        for i in list(n_rem):
            inside = _mask(
                {k: codes[k][fresh] for k, _ in found[i].items}, found[i].items, fresh.size
            )
            n_rem[i] -= float(inside.sum())
            e_rem[i] -= float((inside & fresh_err).sum())
    return chosen, marginal


def pareto(
    frame: Frame, chosen: list[dict[str, Any]], masks: list[BoolArray]
) -> list[dict[str, Any]]:
    """Share of errors against share of records over disjoint regions, worst rate first.

    Regions: each chosen slice minus the slices before it, then everything else
    (``attributes: null``). Read the curve as "the first k regions hold x% of the
    labelled records and y% of the errors".
    """
    lab = frame.labelled
    total_n = int(lab.sum())
    total_e = int(frame.error[lab].sum())
    if total_n == 0:
        return []
    covered = np.zeros(frame.n, dtype=bool)
    regions: list[tuple[dict[str, Any] | None, int, int]] = []
    for row, mask in zip(chosen, masks, strict=True):
        region = mask & ~covered & lab
        covered |= mask
        regions.append((row["attributes"], int(region.sum()), int((region & frame.error).sum())))
    rest = lab & ~covered
    regions.append((None, int(rest.sum()), int((rest & frame.error).sum())))
    regions = [r for r in regions if r[1] > 0]
    regions.sort(key=lambda r: -(r[2] / r[1]))
    points: list[dict[str, Any]] = []
    cum_n = cum_e = 0
    for attrs, n, e in regions:
        cum_n += n
        cum_e += e
        points.append(
            {
                "attributes": attrs,
                "records": n,
                "errors": e,
                "error_rate": e / n,
                "record_share": n / total_n,
                "error_share": e / total_e if total_e else 0.0,
                "cumulative_record_share": cum_n / total_n,
                "cumulative_error_share": cum_e / total_e if total_e else 0.0,
            }
        )
    return points


def cover(frame: Frame, result: SliceResult, *, share: float = 0.8) -> dict[str, Any]:
    """The fewest significant high-error slices that together hold ``share`` of the errors.

    Greedy set cover over the significant slices with lift > 1 (each pick adds the most
    errors not yet covered), the usual approximation of the smallest cover. When those
    slices cannot reach ``share``, ``reached`` is false and the errors are spread.
    """
    lab = frame.labelled
    err = frame.error & lab
    total_e = int(err.sum())
    total_n = int(lab.sum())
    out: dict[str, Any] = {"target": share, "reached": False, "slices": []}
    if total_e == 0 or not result.candidates:
        return out
    codes = {k: c.codes for k, c in frame.attributes.items()}
    masks = [_mask(codes, items, frame.n) for items in result.candidates]
    covered = np.zeros(frame.n, dtype=bool)
    records = np.zeros(frame.n, dtype=bool)
    while int((covered & err).sum()) < share * total_e:
        gains = [int((m & err & ~covered).sum()) for m in masks]
        best = int(np.argmax(gains))
        if gains[best] == 0:
            break
        covered |= masks[best] & err
        records |= masks[best] & lab
        items = result.candidates[best]
        out["slices"].append(
            {
                "attributes": {k: frame.attributes[k].values[c] for k, c in items},
                "new_errors": gains[best],
                "cumulative_error_share": int(covered.sum()) / total_e,
                "cumulative_record_share": int(records.sum()) / total_n,
            }
        )
    out["reached"] = int(covered.sum()) >= share * total_e
    return out
