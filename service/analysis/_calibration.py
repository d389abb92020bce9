"""Calibration: reliability diagram (predicted vs observed per bin) and ECE."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import stats

from service.analysis._frame import Frame
from service.analysis._groups import clean
from service.analysis._intervals import wilson


def _pairs(frame: Frame) -> tuple[str, np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """(what is calibrated, predicted probabilities, observed outcomes 0/1)."""
    if frame.mode == "scored":
        mask = frame.labelled & frame.served & ~np.isnan(frame.score)
        return "probability", frame.score[mask], frame.label_pos[mask].astype(np.float64)
    mask = frame.labelled & frame.served & ~np.isnan(frame.confidence)
    if frame.mode == "regression":
        mask = np.zeros(frame.n, dtype=bool)
    return "confidence", frame.confidence[mask], (~frame.error[mask]).astype(np.float64)


_WORDS = {
    "probability": ("too_high", "too_low"),
    "confidence": ("overconfident", "underconfident"),
}


def calibration(frame: Frame, *, bins: int = 10, level: float = 0.95) -> dict[str, Any]:
    """Equal-width bins of the predicted probability against the observed frequency.

    What is calibrated (``of``): for scored binary models the predicted probability of
    the positive class against the observed share of positives, which does not depend
    on the decision threshold; for label models with confidences the confidence against
    accuracy. Regression models have none.

    Per bin: records, mean prediction, observed frequency with its Wilson interval, the
    gap (prediction - observed) and a status: ``too_high``/``overconfident`` when the
    interval lies wholly below the mean prediction, ``too_low``/``underconfident`` when
    above, else ``ok`` (the status intervals are Bonferroni-widened over the non-empty
    bins). ``ece`` is the record-weighted mean |gap|; ``ece_noise`` is what a perfectly
    calibrated model would show from sampling noise alone at these bin sizes (an ECE
    near it is no evidence of miscalibration). ``gap`` tests the mean prediction
    against the observed frequency over all records (z test, variance under perfect
    calibration).
    """
    of, predicted, outcome = _pairs(frame)
    high_word, low_word = _WORDS[of]
    conf = np.clip(predicted, 0.0, 1.0)
    correct = outcome
    n_total = int(conf.size)
    idx = np.minimum((conf * bins).astype(np.int64), bins - 1)
    n_b = np.bincount(idx, minlength=bins)
    conf_sum = np.bincount(idx, weights=conf, minlength=bins)
    correct_sum = np.bincount(idx, weights=correct, minlength=bins)
    var_sum = np.bincount(idx, weights=conf * (1.0 - conf), minlength=bins)
    acc, lo, hi = wilson(correct_sum, n_b, level)
    # Statuses use Bonferroni-widened intervals, so a calibrated model flags no bin
    # with probability >= level (the intervals shown stay at ``level``).
    strict = 1.0 - (1.0 - level) / max(int(np.sum(n_b > 0)), 1)
    _, s_lo, s_hi = wilson(correct_sum, n_b, strict)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_conf = np.where(n_b > 0, conf_sum / n_b, np.nan)
    rows: list[dict[str, Any]] = []
    ece = mce = noise = 0.0
    for b in range(bins):
        n = int(n_b[b])
        status = "empty"
        if n:
            gap = float(mean_conf[b] - acc[b])
            weight = n / n_total
            ece += weight * abs(gap)
            mce = max(mce, abs(gap))
            # E|N(0, s^2)| = s * sqrt(2 / pi), with s^2 the binomial variance of the bin.
            noise += weight * math.sqrt(2.0 / math.pi * float(var_sum[b])) / n
            status = (
                high_word
                if s_hi[b] < mean_conf[b]
                else low_word
                if s_lo[b] > mean_conf[b]
                else "ok"
            )
        rows.append(
            {
                "lower": b / bins,
                "upper": (b + 1) / bins,
                "records": n,
                "mean_predicted": clean(float(mean_conf[b])),
                "observed": {
                    "value": clean(float(acc[b])),
                    "ci": [clean(float(lo[b])), clean(float(hi[b]))],
                },
                "gap": clean(float(mean_conf[b] - acc[b])),
                "status": status,
            }
        )
    return {
        "of": of,
        "records": n_total,
        "bins": rows,
        "ece": clean(ece) if n_total else None,
        "ece_noise": clean(noise) if n_total else None,
        "mce": clean(mce) if n_total else None,
        **_overall_gap(conf, correct, high_word, low_word),
    }


def _overall_gap(
    conf: np.ndarray[Any, Any], correct: np.ndarray[Any, Any], high: str, low: str
) -> dict[str, Any]:
    n = conf.size
    if n == 0:
        return {"mean_predicted": None, "observed": None, "gap": None, "verdict": "no_data"}
    gap = float(conf.mean() - correct.mean())
    se = math.sqrt(float(np.sum(conf * (1.0 - conf)))) / n
    p = float(2.0 * stats.norm.sf(abs(gap) / se)) if se > 0 else (1.0 if gap == 0 else 0.0)
    verdict = "calibrated"
    if p < 0.05 and abs(gap) >= 0.01:
        verdict = high if gap > 0 else low
    return {
        "mean_predicted": clean(float(conf.mean())),
        "observed": clean(float(correct.mean())),
        "gap": {"value": clean(gap), "p_value": clean(p)},
        "verdict": verdict,
    }
