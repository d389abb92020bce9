"""The lever rules, on arrays and on one simulated scenario per lever."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from service.analysis import LEVERS, analyze, build_reference
from service.analysis._names import BIT
from service.analysis.taxonomy import classify, lever_of, rank
from tests.analysis._sim import records

NAN = float("nan")


def test_rules_in_order() -> None:
    flags = np.array(
        [
            BIT["timeout"] | BIT["input_missing"],  # serving beats data
            BIT["input_invalid"] | BIT["out_of_distribution"],  # data beats shift
            BIT["out_of_distribution"],
            0,  # in slice, confident
            0,  # in slice, unsure
            0,  # outside slices, confident
            0,  # no confidence
            BIT["serving_error"],  # declared by the client: rule 0 wins
        ]
    )
    in_slice = np.array([True, True, True, True, True, False, True, False])
    conf = np.array([0.9, 0.9, 0.9, 0.95, 0.6, 0.95, NAN, 0.9])
    declared = np.array([-1, -1, -1, -1, -1, -1, -1, LEVERS.index("feature_gap")])
    got = [LEVERS[i] for i in classify(flags, in_slice, conf, declared, high_confidence=0.8)]
    assert got == [
        "serving",
        "data",
        "distribution_shift",
        "feature_gap",
        "capacity",
        "capacity",
        "capacity",
        "feature_gap",
    ]


def test_aliases_and_rank() -> None:
    assert lever_of("Drift") == "distribution_shift"
    assert lever_of("timeout") == "serving"
    assert lever_of("wrong merchant") is None and lever_of(None) is None
    assert rank({"capacity": 5, "data": 5, "serving": 1}) == [
        "data",
        "capacity",
        "serving",
        "distribution_shift",
        "feature_gap",
    ]


def _levers(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["lever"]: row for row in report["levers"]}


def test_serving_scenario() -> None:
    recs = records(4000, seed=41, base_error=0.05)
    for r in recs[::5]:
        r["prediction"] = None  # not served: 20% of records
    for r in recs[1::20]:
        r["flags"] = ["timeout"]
        r["prediction"] = 1 - r["label"]
    report = analyze(recs)
    assert report["recommendation"]["lever"] == "serving"
    serving = _levers(report)["serving"]
    assert serving["first"] and serving["error_share"] > 0.7
    assert serving["facts"]["no_prediction"] == 800
    assert serving["facts"]["timeout"] == 200
    assert "failed serving" in serving["evidence"][0]


def test_data_scenario() -> None:
    recs = records(4000, seed=42, base_error=0.05)
    rng = np.random.default_rng(42)
    for r in recs:
        if rng.random() < 0.15:
            r["features"] = {"amount": None}  # derived input_missing
            if rng.random() < 0.6:
                r["prediction"] = 1 - r["label"]
    report = analyze(recs)
    assert report["recommendation"]["lever"] == "data"
    data = _levers(report)["data"]
    flagged, rest = data["facts"]["flagged"], data["facts"]["rest"]
    assert flagged["error_rate"] > 0.5 > 0.1 > rest["error_rate"]
    assert data["facts"]["input_missing"] == data["errors"]


def test_distribution_shift_scenario() -> None:
    rng = np.random.default_rng(43)
    recs = records(6000, seed=43, base_error=0.04)
    for i, r in enumerate(recs):
        shifted = i >= 3000 and rng.random() < 0.3
        r["features"] = {
            "amount": float(rng.normal(6.0 if shifted else 0.0, 1.0)),
            "age": float(rng.normal(40, 5)),
        }
        if shifted and rng.random() < 0.6:
            r["prediction"] = 1 - r["label"]
    reference = build_reference(recs[:1000], source="first_records")
    assert set(reference.features) == {"age", "amount"}
    report = analyze(recs, reference=reference)
    assert report["recommendation"]["lever"] == "distribution_shift"
    shift = _levers(report)["distribution_shift"]
    assert next(iter(shift["facts"]["features"])) == "amount"
    assert shift["facts"]["flagged"]["error_rate"] > 3 * shift["facts"]["rest"]["error_rate"]
    assert report["reference"]["source"] == "first_records"
    ood = next(f for f in report["flags"] if f["flag"] == "out_of_distribution")
    assert ood["records"] > 800


def test_feature_gap_scenario() -> None:
    recs = records(
        20_000,
        seed=44,
        base_error=0.03,
        planted={"country": "IN", "device": "web"},
        planted_error=0.6,
        planted_confidence=0.95,
        confidence=0.65,
    )
    report = analyze(recs)
    assert report["recommendation"]["lever"] == "feature_gap"
    gap = _levers(report)["feature_gap"]
    assert gap["facts"]["slices"][0]["attributes"] == {"country": "IN", "device": "web"}
    assert "country=IN & device=web" in gap["evidence"][0]
    assert gap["facts"]["mean_confidence"] > 0.9


def test_capacity_scenario() -> None:
    recs = records(10_000, seed=45, base_error=0.15, confidence=0.6)
    report = analyze(recs)
    assert report["slices"] == []
    assert report["recommendation"]["lever"] == "capacity"
    cap = _levers(report)["capacity"]
    assert cap["error_share"] == pytest.approx(1.0)
    assert cap["facts"]["outside_slices"] == cap["errors"]


def test_client_category_names_the_lever() -> None:
    recs = records(2000, seed=46, base_error=0.1)
    for r in recs:
        if r["prediction"] != r["label"]:
            r["error_category"] = "drift"
    report = analyze(recs)
    assert report["recommendation"]["lever"] == "distribution_shift"
    assert any(
        "error_category" in line for line in _levers(report)["distribution_shift"]["evidence"]
    )


def test_no_errors_no_recommendation() -> None:
    recs = [{"record_id": str(i), "prediction": 1, "label": 1} for i in range(50)]
    report = analyze(recs)
    assert report["recommendation"] is None
    assert all(row["errors"] == 0 and not row["first"] for row in report["levers"])
