"""Novelty: how unlike the reference each record is, and which features make it so.

Score: the mean Euclidean distance to the ``k`` nearest reference rows, on standardized
features. Numeric columns are centred on the reference median and divided by the
reference standard deviation; a binary column is mapped to 0/1 (its two reference
values) and left unscaled, so a rare but known value is not far by itself (its
neighbours share it), while a value the reference never took is. A column declared
categorical is one-hot over its reference values (two different values are 1 apart)
plus an "unseen" coordinate at 2 for a value the reference never took. Missing values
are imputed with the reference median (they are the data lever's business).

Cut-off: the reference is split at random into rows to search and held-out rows; a
record is *novel* when its score exceeds the ``quantile`` (default 99 %) of the
held-out rows' scores, so about 1 % of in-distribution records are novel by
construction. That is why novelty alone never blames a record on shift: the taxonomy
also requires novel records to err significantly more than the rest.

The features that make a record novel are those holding at least a quarter of its
squared distance to its neighbours (at most three, largest first).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.neighbors import NearestNeighbors

from service.analysis._frame import BoolArray, FloatArray, IntArray
from service.analysis._reference import Reference

__all__ = ["MAX_CATEGORIES", "Encoder", "Novelty", "encoder", "named", "novelty", "standardizer"]

_SHARE = 0.25
_TOP = 3
_CHUNK = 2_000
_HALF_SQRT2 = float(np.sqrt(0.5))
_UNSEEN = 2.0
MAX_CATEGORIES = 250
"""A categorical column with more reference values is treated as numeric."""


@dataclass(frozen=True, slots=True)
class Novelty:
    """Per record: score, novel flag and up to three feature indices (-1 = none)."""

    score: FloatArray
    novel: BoolArray
    features: IntArray
    cutoff: float
    k: int
    searched: int
    held_out: int
    quantile: float


def standardizer(ref: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Centre and scale per column (see the module docstring)."""
    centre = np.zeros(ref.shape[1])
    scale = np.ones(ref.shape[1])
    for j in range(ref.shape[1]):
        known = ref[:, j][~np.isnan(ref[:, j])]
        if known.size == 0:
            continue
        distinct = np.unique(known)
        if distinct.size <= 2:
            centre[j] = distinct[0]
            scale[j] = (distinct[-1] - distinct[0]) or 1.0
        else:
            centre[j] = float(np.median(known))
            sd = float(known.std())
            scale[j] = sd if sd > 0 else 1.0
    return centre, scale


def _standardize(x: FloatArray, centre: FloatArray, scale: FloatArray) -> FloatArray:
    z = (x - centre) / scale
    z[np.isnan(z)] = 0.0
    return np.asarray(z, dtype=np.float64)


@dataclass(frozen=True, slots=True)
class Encoder:
    """Records x columns into the space distances are measured in (module docstring)."""

    centre: FloatArray
    scale: FloatArray
    categories: dict[int, FloatArray]
    owner: IntArray
    """The column each output coordinate belongs to."""

    def transform(self, x: FloatArray) -> FloatArray:
        plain = [j for j in range(x.shape[1]) if j not in self.categories]
        blocks = [_standardize(x[:, plain], self.centre[plain], self.scale[plain])]
        for j, cats in self.categories.items():
            col = x[:, j]
            block = np.zeros((x.shape[0], cats.size + 1))
            at = np.minimum(np.searchsorted(cats, col), cats.size - 1)
            match = cats[at] == col
            rows = np.flatnonzero(match)
            block[rows, at[rows]] = _HALF_SQRT2
            block[~match & ~np.isnan(col), -1] = _UNSEEN
            blocks.append(block)
        return np.hstack(blocks)

    def by_column(self, contrib: FloatArray, columns: int) -> FloatArray:
        """Per-coordinate contributions (rows x coordinates) summed per column."""
        out = np.zeros((contrib.shape[0], columns))
        np.add.at(out.T, self.owner, contrib.T)
        return out


def encoder(ref: FloatArray, categorical: Sequence[int] = ()) -> Encoder:
    """The encoder of reference rows; ``categorical`` column indices are one-hot."""
    centre, scale = standardizer(ref)
    categories: dict[int, FloatArray] = {}
    for j in categorical:
        known = ref[:, j][~np.isnan(ref[:, j])]
        cats = np.unique(known)
        if 0 < cats.size <= MAX_CATEGORIES:
            categories[j] = cats
    plain = [j for j in range(ref.shape[1]) if j not in categories]
    owner = [*plain]
    for j, cats in categories.items():
        owner.extend([j] * (cats.size + 1))
    return Encoder(centre, scale, categories, np.array(owner, dtype=np.int64))


def novelty(
    matrix: FloatArray,
    reference: Reference,
    *,
    k: int = 5,
    max_search: int = 10_000,
    max_held_out: int = 2_000,
    quantile: float = 0.99,
    seed: int = 0,
) -> Novelty | None:
    """Score ``matrix`` (records x ``reference.columns``); None without enough reference."""
    ref = reference.rows
    n_ref = ref.shape[0]
    if ref.shape[1] == 0 or n_ref < 4 * k:
        return None
    rng = np.random.default_rng(seed)
    order = rng.permutation(n_ref)
    held = min(max_held_out, max(n_ref // 5, k))
    held_rows, search_rows = order[:held], order[held : held + max_search]
    enc = encoder(ref, reference.categorical_indices)
    search = enc.transform(ref[search_rows])
    index = NearestNeighbors(n_neighbors=k).fit(search)
    held_dist, _ = index.kneighbors(enc.transform(ref[held_rows]))
    cutoff = float(np.quantile(held_dist.mean(axis=1), quantile))
    z = enc.transform(matrix)
    features = np.full((matrix.shape[0], _TOP), -1, dtype=np.int64)
    if matrix.shape[0] == 0:
        empty = np.zeros(0)
        return Novelty(empty, empty.astype(bool), features, cutoff, k, 0, held, quantile)
    dist, idx = index.kneighbors(z)
    score = dist.mean(axis=1)
    novel = score > cutoff
    rows = np.flatnonzero(novel)
    for start in range(0, rows.size, _CHUNK):
        part = rows[start : start + _CHUNK]
        diff = (z[part, None, :] - search[idx[part]]) ** 2  # rows x k x coordinates
        contrib = enc.by_column(diff.mean(axis=1), matrix.shape[1])
        share = contrib / np.maximum(contrib.sum(axis=1, keepdims=True), 1e-12)
        top = np.argsort(-share, axis=1)[:, :_TOP]
        keep = np.take_along_axis(share, top, axis=1) >= _SHARE
        features[part, : top.shape[1]] = np.where(keep, top, -1)
    return Novelty(score, novel, features, cutoff, k, int(search.shape[0]), held, quantile)


def named(features: IntArray, columns: Sequence[str]) -> list[str]:
    """The feature names of one record's indices (-1 skipped)."""
    return [columns[int(j)] for j in features if j >= 0]
