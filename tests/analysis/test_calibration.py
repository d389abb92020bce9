"""Calibration: a calibrated model has ECE near its noise floor; over-confidence is found."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from service.analysis import AnalysisParams, analyze


def _records(conf: np.ndarray[Any, Any], correct: np.ndarray[Any, Any]) -> list[dict[str, Any]]:
    return [
        {
            "record_id": str(i),
            "prediction": "a" if correct[i] else "b",
            "label": "a",
            "confidence": float(conf[i]),
        }
        for i in range(conf.size)
    ]


def test_calibrated_model_has_ece_near_zero() -> None:
    rng = np.random.default_rng(11)
    conf = rng.uniform(0.0, 1.0, 20_000)
    correct = rng.random(conf.size) < conf
    cal = analyze(_records(conf, correct))["calibration"]
    assert cal["ece"] < 0.02
    assert cal["ece"] < 2.5 * cal["ece_noise"]
    assert cal["verdict"] == "calibrated"
    assert all(b["status"] == "ok" for b in cal["bins"])
    assert sum(b["records"] for b in cal["bins"]) == conf.size


def test_overconfident_model_is_detected_in_the_right_bins() -> None:
    rng = np.random.default_rng(12)
    conf = rng.uniform(0.5, 1.0, 20_000)
    # Calibrated below 0.8; 20 points over-confident from 0.8 up.
    truth = np.where(conf >= 0.8, conf - 0.2, conf)
    correct = rng.random(conf.size) < truth
    cal = analyze(_records(conf, correct))["calibration"]
    status = {round(b["lower"], 1): b["status"] for b in cal["bins"]}
    assert status[0.8] == status[0.9] == "overconfident"
    assert status[0.5] == status[0.6] == status[0.7] == "ok"
    assert status[0.0] == "empty"
    assert cal["verdict"] == "overconfident"
    assert cal["gap"]["value"] == pytest.approx(0.2 * 0.4, abs=0.02)
    # ECE by hand: weighted |mean confidence - accuracy| per bin.
    idx = np.minimum((conf * 10).astype(int), 9)
    ece = sum(
        (idx == b).mean() * abs(conf[idx == b].mean() - correct[idx == b].mean())
        for b in range(5, 10)
    )
    assert cal["ece"] == pytest.approx(ece)
    bin9 = cal["bins"][9]
    assert bin9["observed"]["value"] == pytest.approx(correct[idx == 9].mean())
    assert bin9["mean_predicted"] == pytest.approx(conf[idx == 9].mean())
    assert cal["of"] == "confidence"


def test_underconfident_verdict() -> None:
    rng = np.random.default_rng(13)
    conf = rng.uniform(0.3, 0.7, 10_000)
    correct = rng.random(conf.size) < conf + 0.2
    cal = analyze(_records(conf, correct))["calibration"]
    assert cal["verdict"] == "underconfident"
    assert {b["status"] for b in cal["bins"] if b["records"]} == {"underconfident"}


def test_records_without_confidence_are_left_out() -> None:
    recs = [{"record_id": str(i), "prediction": "a", "label": "a"} for i in range(10)]
    cal = analyze(recs)["calibration"]
    assert cal["records"] == 0 and cal["ece"] is None and cal["verdict"] == "no_data"


def _scored(p: np.ndarray[Any, Any], y: np.ndarray[Any, Any]) -> list[dict[str, Any]]:
    return [
        {"record_id": str(i), "prediction": float(p[i]), "label": int(y[i])} for i in range(p.size)
    ]


def test_ece_of_a_scored_model_does_not_move_with_the_threshold() -> None:
    # The run: 0.0142 / 0.0259 / 0.1279 at 0.5 / 0.6 / 0.7 - calibration must be of
    # the predicted probability, whatever the cut.
    rng = np.random.default_rng(14)
    p = rng.beta(2.0, 3.0, 20_000)
    y = (rng.random(p.size) < p).astype(int)
    recs = _scored(p, y)
    eces = [
        analyze(recs, AnalysisParams(threshold=t))["calibration"]["ece"] for t in (0.5, 0.6, 0.7)
    ]
    assert eces[0] == eces[1] == eces[2]
    cal = analyze(recs)["calibration"]
    assert cal["of"] == "probability" and cal["verdict"] == "calibrated"
    # By hand: bins of p, |mean p - share of positives|, weighted by the bin's records.
    idx = np.minimum((p * 10).astype(int), 9)
    ece = sum((idx == b).mean() * abs(p[idx == b].mean() - y[idx == b].mean()) for b in range(10))
    assert cal["ece"] == pytest.approx(ece)


def test_scored_model_that_predicts_too_high_is_found() -> None:
    rng = np.random.default_rng(15)
    p = rng.uniform(0.05, 0.95, 20_000)
    y = (rng.random(p.size) < 0.7 * p).astype(int)
    cal = analyze(_scored(p, y))["calibration"]
    assert cal["verdict"] == "too_high"
    assert cal["gap"]["value"] == pytest.approx(0.3 * 0.5, abs=0.02)
