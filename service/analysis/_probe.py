"""Cross-fitted recalibration and probe: would a new cut, or a more flexible model, be right?

Both are fitted with k-fold cross-fitting: the rows are split at random into ``folds``
parts and each part is predicted by a model fitted on the others, so no record is
judged by a model that saw it.

* **Recalibration** (the threshold lever): a monotone map of the model's own output,
  per segment. Binary models: logistic regression of the label on the score's logit,
  with an intercept and a slope per attribute value (a per-segment threshold);
  its probability is cut at the model's own decision threshold. Regression models:
  the same design with a least-squares (ridge) fit, right when within the tolerance.
* **Probe** (the capacity lever): scikit-learn's ``HistGradientBoostingClassifier``
  (``...Regressor`` for regression) on the logged features plus the model's own output,
  so it can only add to what the model knows. Missing values are handled natively.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.linear_model import LogisticRegression, Ridge

from service.analysis._frame import BoolArray, FloatArray, Frame, IntArray

__all__ = ["Fit", "fold_ids", "probe", "recalibrate"]

_EPS = 1e-6


@dataclass(frozen=True, slots=True)
class Fit:
    """Out-of-fold predictions over the frame's rows (NaN outside the fitted rows).

    ``value`` is the probability of the positive class (binary), the predicted value
    (regression) or the probability of the labelled class (other label models);
    ``right`` says whether the out-of-fold prediction matches the label.
    """

    right: BoolArray
    value: FloatArray
    folds: int
    method: str


def fold_ids(n: int, folds: int, seed: int) -> IntArray:
    """A random fold (0..folds-1) per row, as balanced as ``n`` allows."""
    rng = np.random.default_rng(seed)
    out: IntArray = rng.permutation(n) % folds
    return out


def _logit(p: FloatArray) -> FloatArray:
    q = np.clip(p, _EPS, 1.0 - _EPS)
    out: FloatArray = np.log(q) - np.log1p(-q)
    return out


def binary(frame: Frame) -> bool:
    """A model whose output is a probability of the positive class."""
    if frame.mode == "scored":
        return True
    return len(frame.classes) == 2 and bool(np.any(~np.isnan(frame.score)))


def _segments(frame: Frame, rows: IntArray) -> sp.csr_matrix:
    blocks = []
    for codes in frame.attributes.values():
        c = codes.codes[rows]
        present = c >= 0
        block = sp.csr_matrix(
            (np.ones(int(present.sum())), (np.flatnonzero(present), c[present])),
            shape=(rows.size, max(len(codes), 1)),
        )
        blocks.append(block)
    if not blocks:
        return sp.csr_matrix((rows.size, 0))
    return sp.hstack(blocks, format="csr")


def _right(frame: Frame, value: FloatArray, rows: IntArray) -> BoolArray:
    y = frame.target[rows]
    if frame.mode == "regression":
        out: BoolArray = np.abs(value - y) <= float(frame.tolerance or 0.0)
    elif binary(frame):
        out = (value >= frame.threshold) == (y == 1.0)
    else:
        out = value > 0.5  # callers pass the argmax hits instead for label models
    return out


def recalibrate(frame: Frame, rows: BoolArray, *, folds: int = 5, seed: int = 0) -> Fit | None:
    """Cross-fitted per-segment recalibration of the model's output (None if it has none)."""
    regression = frame.mode == "regression"
    if not (regression or binary(frame)):
        return None
    x = frame.output if regression else frame.score
    idx = np.flatnonzero(rows & ~np.isnan(x) & ~np.isnan(frame.target))
    if idx.size < 10 * folds:
        return None
    raw = x[idx] if regression else _logit(x[idx])
    seg = _segments(frame, idx)
    design = sp.hstack([sp.csr_matrix(raw[:, None]), seg, seg.multiply(raw[:, None])], format="csr")
    y = frame.target[idx]
    fold = fold_ids(idx.size, folds, seed)
    value = np.full(idx.size, np.nan)
    for f in range(folds):
        train, test = fold != f, fold == f
        if regression:
            reg = Ridge(alpha=1.0).fit(design[train], y[train])
            value[test] = reg.predict(design[test])
        else:
            if np.unique(y[train]).size < 2:
                return None
            clf = LogisticRegression(C=1.0, max_iter=500).fit(design[train], y[train])
            value[test] = clf.predict_proba(design[test])[:, 1]
    kind = "linear" if regression else "logistic"
    return _spread(frame, idx, value, folds, f"per-segment {kind} recalibration, {folds}-fold")


def _spread(
    frame: Frame,
    idx: IntArray,
    value: FloatArray,
    folds: int,
    method: str,
    hit: BoolArray | None = None,
) -> Fit:
    full = np.full(frame.n, np.nan)
    full[idx] = value
    right = np.zeros(frame.n, dtype=bool)
    right[idx] = _right(frame, value, idx) if hit is None else hit
    return Fit(right, full, folds, method)


def probe(
    frame: Frame,
    matrix: FloatArray,
    rows: BoolArray,
    *,
    folds: int = 5,
    seed: int = 0,
    max_iter: int = 100,
    categories: Mapping[int, FloatArray] | None = None,
) -> Fit | None:
    """Cross-fitted gradient-boosted probe on the features and the model's output.

    ``categories`` maps a column index to its reference values: such a column enters
    as a category (codes in that order; a value never seen is missing).
    """
    regression = frame.mode == "regression"
    own = frame.output if regression or not binary(frame) else frame.score
    if binary(frame):
        own = _logit(np.where(np.isnan(own), 0.5, own))
    idx = np.flatnonzero(rows & ~np.isnan(frame.target))
    if idx.size < 10 * folds:
        return None
    x = np.column_stack([matrix[idx], own[idx]])
    y = frame.target[idx]
    categorical = np.zeros(x.shape[1], dtype=bool)
    for j, cats in (categories or {}).items():
        col = x[:, j]
        at = np.minimum(np.searchsorted(cats, col), cats.size - 1)
        x[:, j] = np.where(cats[at] == col, at, np.nan)
        categorical[j] = True
    if not regression and not binary(frame):
        categorical[-1] = True  # the predicted class
        x[np.isnan(x[:, -1]), -1] = -1.0
    fold = fold_ids(idx.size, folds, seed)
    value = np.full(idx.size, np.nan)
    hit = np.zeros(idx.size, dtype=bool)
    common: dict[str, Any] = {
        "max_iter": max_iter,
        "learning_rate": 0.1,
        "max_leaf_nodes": 31,
        "min_samples_leaf": 40,
        "l2_regularization": 1.0,
        "early_stopping": False,
        "random_state": seed,
    }
    for f in range(folds):
        train, test = fold != f, fold == f
        if regression:
            reg = HistGradientBoostingRegressor(**common).fit(x[train], y[train])
            value[test] = reg.predict(x[test])
            continue
        if np.unique(y[train]).size < 2:
            return None
        clf = HistGradientBoostingClassifier(
            categorical_features=categorical if categorical.any() else None, **common
        ).fit(x[train], y[train])
        proba = clf.predict_proba(x[test])
        classes = list(clf.classes_)
        if binary(frame):
            value[test] = proba[:, classes.index(1.0)]
            continue
        col = np.array([classes.index(v) if v in classes else -1 for v in y[test]])
        value[test] = np.where(col >= 0, proba[np.arange(col.size), np.maximum(col, 0)], 0.0)
        hit[test] = clf.classes_[np.argmax(proba, axis=1)] == y[test]
    method = f"gradient-boosted probe, {folds}-fold cross-fitted"
    return _spread(frame, idx, value, folds, method, None if binary(frame) or regression else hit)
