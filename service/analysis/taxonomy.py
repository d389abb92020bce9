"""Error taxonomy: every labelled error gets exactly one lever, decided by evidence.

The evidence is examined in this order; the first lever whose evidence holds wins:

====================  ===========================================================
lever                 evidence
====================  ===========================================================
serving               flagged ``serving_error``/``timeout``, no prediction, or the
                      served prediction differs from ``offline_prediction`` (the
                      same model re-scored offline from the logged features)
data                  a feature null, absent (while the reference almost always has
                      it) or invalid (a binary feature with a value the reference
                      never took), a client flag for it; or the label is
                      contradicted by near-identical records (label noise)
distribution_shift    the record is novel relative to the reference (k-NN novelty,
                      :mod:`service.analysis._novelty`) **and** novel records err
                      significantly more than the rest (one-sided two-proportion z
                      test); otherwise nothing is blamed on shift
threshold             a per-segment recalibration, fitted out-of-fold, makes this
                      prediction right, **and** it fixes significantly more errors
                      than it makes (paired test over the clean records)
capacity              a more flexible probe on the same features, fitted
                      out-of-fold, gets this record right with a margin (its
                      probability of the true label at least 0.5 + ``probe_margin``,
                      default 0.1: a flexible model's estimate this close to a coin
                      flip is as likely noise as signal), **and** it beats the
                      (recalibrated) model significantly (paired test)
feature_gap           the rest: in distribution, clean, correctly served, and
                      neither recalibration nor the probe fixes it
====================  ===========================================================

The three tests (shift, threshold, capacity) are one family: their p-values are
Holm-adjusted together (:func:`service.stats.adjust_p_values`) before any is believed.
Each test's records do not depend on another test's outcome. Label noise needs a group
of 3 to 10 records with identical standardized features (to 3 decimals), at least two
others labelled, three quarters of them agreeing with the model against this label; a
larger group means the features are too coarse to tell a mislabel from noise. And the
model must give the label a probability of at most 0.1 (binary scores; for other label
models a confidence of at least 0.9): identical records can differ in truth (the same
person in another year), so only a label the model also finds implausible is a mislabel.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

from service.analysis._frame import BoolArray, FloatArray, Frame, IntArray
from service.analysis._names import BIT, DATA_BITS, LEVERS, SERVING_BITS, Lever
from service.analysis._novelty import Novelty, encoder, novelty, standardizer
from service.analysis._probe import Fit, binary, probe, recalibrate
from service.analysis._reference import Reference
from service.stats import adjust_p_values

__all__ = ["DATA_REASONS", "SERVING_REASONS", "Assignment", "GateTest", "assign", "paired_sum"]

SERVING_REASONS = ("no_prediction", "serving_error", "timeout", "offline_mismatch")
DATA_REASONS = ("input_missing", "input_invalid", "absent_feature", "invalid_value", "label_noise")
_ABSENT_SHARE = 0.01
_GROUP_MIN, _GROUP_MAX, _AGREE, _LABEL_P = 3, 10, 0.75, 0.1


@dataclass(frozen=True, slots=True)
class GateTest:
    """One piece of evidence tested for significance before a lever may be blamed."""

    lever: Lever
    estimate: float
    ci: tuple[float, float]
    p_value: float
    p_adjusted: float
    passed: bool
    n: int
    method: str
    detail: dict[str, float | int]


@dataclass(frozen=True, slots=True)
class Assignment:
    """The lever of every row (index into ``LEVERS``; -1 = not a labelled error)."""

    lever: IntArray
    serving_reason: IntArray
    data_reason: IntArray
    data_feature: IntArray
    serving: BoolArray
    data: BoolArray
    clean: BoolArray
    columns: tuple[str, ...]
    novelty: Novelty | None
    recalibration: Fit | None
    probe: Fit | None
    tests: dict[Lever, GateTest]

    def rows(self, lever: Lever) -> IntArray:
        return np.flatnonzero(self.lever == LEVERS.index(lever))


def paired_sum(gain: FloatArray, level: float) -> tuple[float, tuple[float, float], float]:
    """Sum of per-record gains (-1/0/+1) with a normal interval and a one-sided p (> 0).

    The interval is ``sum +- z * sqrt(n * var)`` with the sample variance of the gains
    (the normal approximation behind McNemar's test for paired outcomes).
    """
    n = gain.size
    total = float(gain.sum())
    if n < 2:
        return total, (total, total), 1.0
    sd = float(np.sqrt(n * gain.var(ddof=1)))
    z = float(stats.norm.ppf(0.5 + level / 2.0))
    if sd == 0:
        return total, (total, total), 0.0 if total > 0 else 1.0
    return total, (total - z * sd, total + z * sd), float(stats.norm.sf(total / sd))


def _serving(frame: Frame) -> IntArray:
    reason = np.full(frame.n, -1, dtype=np.int64)
    checks = [
        (~frame.served, "no_prediction"),
        (frame.has(BIT["serving_error"]) & frame.served, "serving_error"),
        (frame.has(BIT["timeout"]), "timeout"),
        (frame.offline_mismatch, "offline_mismatch"),
    ]
    for mask, name in reversed(checks):
        reason[mask] = SERVING_REASONS.index(name)
    return reason


def _data(frame: Frame, matrix: FloatArray, basis: FloatArray) -> tuple[IntArray, IntArray]:
    reason = np.full(frame.n, -1, dtype=np.int64)
    feature = np.full(frame.n, -1, dtype=np.int64)
    for j in range(matrix.shape[1]):
        col, ref = matrix[:, j], basis[:, j]
        known = ref[~np.isnan(ref)]
        if ref.size and (ref.size - known.size) / ref.size < _ABSENT_SHARE:
            hit = np.isnan(col) & (reason < 0)
            reason[hit], feature[hit] = DATA_REASONS.index("absent_feature"), j
        values = np.unique(known)
        if 0 < values.size <= 2:
            hit = ~np.isnan(col) & ~np.isin(col, values) & (reason < 0)
            reason[hit], feature[hit] = DATA_REASONS.index("invalid_value"), j
    # A null feature is absent too; say which flag when the client set one.
    reason[frame.has(BIT["input_invalid"])] = DATA_REASONS.index("input_invalid")
    reason[frame.has(BIT["input_missing"])] = DATA_REASONS.index("input_missing")
    return reason, feature


def _predicted_class(frame: Frame) -> FloatArray:
    if binary(frame):
        return np.where(frame.served, frame.pred_pos.astype(np.float64), np.nan)
    return frame.output


def _label_noise(frame: Frame, z: FloatArray, candidates: BoolArray) -> BoolArray:
    """Errors whose label near-identical records contradict (see the module docstring)."""
    out = np.zeros(frame.n, dtype=bool)
    if frame.mode == "regression" or z.shape[1] == 0 or (not frame.classes and not binary(frame)):
        return out
    usable = frame.labelled & ~np.isnan(z).any(axis=1) & ~np.isnan(frame.target)
    idx = np.flatnonzero(usable)
    if idx.size == 0:
        return out
    _, group, size = np.unique(_row_hash(z[idx]), return_inverse=True, return_counts=True)
    group = group.ravel()
    ok = (size[group] >= _GROUP_MIN) & (size[group] <= _GROUP_MAX)
    if not ok.any():
        return out
    n_classes = max(len(frame.classes), 2)
    y = frame.target[idx].astype(np.int64)
    counts = np.bincount(group * n_classes + y, minlength=size.size * n_classes).reshape(
        size.size, n_classes
    )
    pred = _predicted_class(frame)[idx]
    known = ~np.isnan(pred)
    p = np.where(known, pred, 0).astype(np.int64)
    others = size[group] - 1
    agree = counts[group, p] - (p == y)
    noisy = ok & known & (p != y) & (others >= 2) & (agree >= _AGREE * others)
    # Identical records may differ in truth (the same person in another year): only a
    # label the model itself finds implausible is called a mislabel.
    noisy &= _implausible(frame)[idx]
    out[idx[noisy]] = True
    return out & candidates


def _row_hash(z: FloatArray) -> IntArray:
    """One 64-bit key per row of values rounded to 3 decimals (equal rows, equal keys).

    A wrapping multiply-add over the columns with fixed odd multipliers: far cheaper than
    ``np.unique(axis=0)``, which holds the GIL for half a second on 100k rows; two
    different rows share a key with probability about 2^-64.
    """
    codes = np.round(z * 1000.0).astype(np.int64)
    mult = np.random.default_rng(12345).integers(1, 2**62, size=z.shape[1], dtype=np.int64) | 1
    with np.errstate(over="ignore"):
        out: IntArray = (codes * mult).sum(axis=1, dtype=np.int64)
    return out


def _implausible(frame: Frame) -> BoolArray:
    """The model gives the record's label a probability of at most ``_LABEL_P``."""
    if binary(frame):
        p_label = np.where(frame.target == 1.0, frame.score, 1.0 - frame.score)
        out: BoolArray = np.nan_to_num(p_label, nan=1.0) <= _LABEL_P
        return out
    out = np.nan_to_num(frame.confidence, nan=0.0) >= 1.0 - _LABEL_P
    return out


def _two_proportions(
    errors_in: int, n_in: int, errors_out: int, n_out: int, level: float
) -> tuple[float, tuple[float, float], float]:
    if n_in == 0 or n_out == 0:
        return 0.0, (0.0, 0.0), 1.0
    if errors_in + errors_out in (0, n_in + n_out):
        return 0.0, (0.0, 0.0), 1.0
    _, p = proportions_ztest([errors_in, errors_out], [n_in, n_out], alternative="larger")
    low, high = confint_proportions_2indep(
        errors_in, n_in, errors_out, n_out, method="newcomb", compare="diff", alpha=1 - level
    )
    return errors_in / n_in - errors_out / n_out, (float(low), float(high)), float(p)


def _sure(frame: Frame, fit: Fit, margin: float) -> BoolArray:
    """Rows where the fit's probability of the true label is at least 0.5 + margin."""
    if frame.mode == "regression":
        return np.ones(frame.n, dtype=bool)
    y = frame.target
    p_true = np.where(y == 1.0, fit.value, 1.0 - fit.value) if binary(frame) else fit.value
    out: BoolArray = np.nan_to_num(p_true, nan=0.0) >= 0.5 + margin
    return out


def _gain(baseline_right: BoolArray, new_right: BoolArray) -> FloatArray:
    out: FloatArray = new_right.astype(np.float64) - baseline_right.astype(np.float64)
    return out


def assign(
    frame: Frame,
    matrix: FloatArray,
    columns: Sequence[str],
    reference: Reference | None,
    *,
    alpha: float = 0.05,
    level: float = 0.95,
    folds: int = 5,
    seed: int = 0,
    probe_iter: int = 100,
    probe_margin: float = 0.1,
) -> Assignment:
    """Give every labelled error its lever (see the module docstring)."""
    lab = frame.labelled
    err = frame.error
    serving_reason = _serving(frame)
    basis = reference.rows if reference is not None else matrix
    data_reason, data_feature = _data(frame, matrix, basis)
    serving = (serving_reason >= 0) | frame.has(SERVING_BITS)
    data = ((data_reason >= 0) | frame.has(DATA_BITS)) & ~serving
    centre, scale = standardizer(basis)
    with np.errstate(invalid="ignore"):
        z = (matrix - centre) / scale
    noisy = _label_noise(frame, z, err & ~serving & ~data)
    data_reason[noisy] = DATA_REASONS.index("label_noise")
    data |= noisy
    clean = lab & frame.served & ~serving & ~data
    nov = novelty(matrix, reference, seed=seed) if reference is not None else None
    novel = nov.novel if nov is not None else np.zeros(frame.n, dtype=bool)
    tests: dict[Lever, GateTest] = {}
    raw: dict[
        Lever, tuple[float, tuple[float, float], float, int, str, dict[str, float | int]]
    ] = {}
    if nov is not None and (clean & novel).any():
        inside, outside = clean & novel, clean & ~novel
        e_in, n_in = int((inside & err).sum()), int(inside.sum())
        e_out, n_out = int((outside & err).sum()), int(outside.sum())
        diff, ci, p = _two_proportions(e_in, n_in, e_out, n_out, level)
        raw["distribution_shift"] = (
            diff,
            ci,
            p,
            n_in + n_out,
            "one-sided two-proportion z test, novel vs other clean records",
            {"novel": n_in, "novel_errors": e_in, "rest": n_out, "rest_errors": e_out},
        )
    recal = recalibrate(frame, clean, folds=folds, seed=seed)
    if recal is not None:
        scope = clean & ~np.isnan(recal.value)
        gain = _gain(~err[scope], recal.right[scope])
        total, ci, p = paired_sum(gain, level)
        raw["threshold"] = (
            total,
            ci,
            p,
            int(scope.sum()),
            "paired normal test of errors fixed minus made, out-of-fold",
            {"fixed": int((gain > 0).sum()), "made": int((gain < 0).sum())},
        )
    categories = (
        encoder(reference.rows, reference.categorical_indices).categories if reference else {}
    )
    fit = probe(
        frame,
        matrix,
        clean,
        folds=folds,
        seed=seed,
        max_iter=probe_iter,
        categories=categories,
    )
    if fit is not None:
        scope = clean & ~np.isnan(fit.value)
        base = ~err if recal is None else np.where(np.isnan(recal.value), ~err, recal.right)
        gain = _gain(base[scope], fit.right[scope])
        total, ci, p = paired_sum(gain, level)
        raw["capacity"] = (
            total,
            ci,
            p,
            int(scope.sum()),
            "paired normal test of the probe against the (recalibrated) model, out-of-fold",
            {"fixed": int((gain > 0).sum()), "made": int((gain < 0).sum())},
        )
    names = list(raw)
    adjusted = adjust_p_values([raw[k][2] for k in names], "holm", alpha)
    for k, p_adj, passed in zip(names, adjusted.p_values, adjusted.reject, strict=True):
        est, ci, p, n, method, detail = raw[k]
        ok = bool(passed) and est > 0
        tests[k] = GateTest(k, est, ci, p, p_adj, ok, n, method + "; Holm over the tests", detail)
    lever = np.full(frame.n, -1, dtype=np.int64)
    todo = lab & err
    rules: list[tuple[BoolArray, Lever]] = [
        (serving, "serving"),
        (data, "data"),
    ]
    if "distribution_shift" in tests and tests["distribution_shift"].passed:
        rules.append((novel, "distribution_shift"))
    if recal is not None and tests["threshold"].passed:
        rules.append((recal.right, "threshold"))
    if fit is not None and tests["capacity"].passed:
        rules.append((fit.right & _sure(frame, fit, probe_margin), "capacity"))
    rules.append((np.ones(frame.n, dtype=bool), "feature_gap"))
    for match, name in rules:
        hit = todo & match
        lever[hit] = LEVERS.index(name)
        todo &= ~hit
    return Assignment(
        lever=lever,
        serving_reason=serving_reason,
        data_reason=data_reason,
        data_feature=data_feature,
        serving=serving,
        data=data,
        clean=clean,
        columns=tuple(columns),
        novelty=nov,
        recalibration=recal,
        probe=fit,
        tests=tests,
    )
