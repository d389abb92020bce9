"""The error taxonomy against errors whose cause is known by construction.

The records come from ``scripts/planted_errors.py`` (seeded): every error's cause is
planted, so each lever's precision and recall can be measured, and a lever that was
not planted must get (almost) nothing.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from scripts import planted_errors
from service.analysis import LEVERS, AnalysisParams, Reference, run_analysis
from service.analysis._novelty import encoder

pe = planted_errors


def _levers(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["lever"]: row for row in report["levers"]}


@pytest.fixture(scope="module")
def everything() -> tuple[Any, dict[str, Any], dict[str, str]]:
    planted = pe.generate(20_000, seed=7)
    report, levers, _ = pe.run(planted)
    return planted, report, levers


def test_every_planted_lever_found_with_precision_and_recall(everything: Any) -> None:
    planted, _, levers = everything
    scores = pe.scores(planted, levers)
    assert set(scores) == set(LEVERS)
    for lever, (precision, recall, n_truth, n_given) in scores.items():
        assert n_truth >= 100, f"too few planted {lever} errors to judge"
        assert precision >= 0.8, f"{lever}: precision {precision:.2f} ({n_given} given)"
        assert recall >= 0.8, f"{lever}: recall {recall:.2f} ({n_truth} planted)"


def test_every_error_gets_exactly_one_lever(everything: Any) -> None:
    planted, report, levers = everything
    assert set(levers) == set(planted.cause)  # every labelled error, nothing else
    rows = report["levers"]
    assert sum(r["errors"] for r in rows) == len(planted.cause)
    assert sum(r["share"] for r in rows) == pytest.approx(1.0)
    assert [r["rank"] for r in rows] == list(range(1, len(LEVERS) + 1))


def test_lever_rows_carry_expected_fixes_actions_and_examples(everything: Any) -> None:
    planted, report, levers = everything
    rows = _levers(report)
    for lever in ("serving", "data", "distribution_shift", "threshold", "capacity"):
        fixed = rows[lever]["expected_fixed"]
        lo, hi = fixed["ci"]
        assert 0 < lo <= fixed["estimate"] <= hi, (lever, fixed)
        assert fixed["method"]
        examples = rows[lever]["examples"]
        assert len(examples) == 5 and all(levers[r] == lever for r in examples)
        # The clearest evidence first: at least 4 of the 5 were planted as this lever.
        assert sum(pe.EXPECTED[planted.cause[r]] == lever for r in examples) >= 4, lever
    gap = rows["feature_gap"]["expected_fixed"]
    assert gap["estimate"] is None and gap["upper_bound"] == rows["feature_gap"]["errors"]
    shift = rows["distribution_shift"]
    assert set(shift["facts"]["features"]) >= {"x2"}  # the planted novel features are named
    assert set(list(shift["facts"]["features"])[:2]) == {"x2", "x3"}
    assert shift["facts"]["test"]["passed"]
    assert report["recommendation"]["lever"] == report["levers"][0]["lever"]
    estimates = [
        r["expected_fixed"]["estimate"]
        for r in report["levers"]
        if r["expected_fixed"]["estimate"] is not None
    ]
    assert estimates == sorted(estimates, reverse=True)


def test_the_rare_binary_feature_is_binary_not_a_range(everything: Any) -> None:
    _, report, _ = everything
    rare = report["reference"]["features"]["x19"]
    assert rare["kind"] == "binary" and "p1" not in rare and "p99" not in rare
    assert rare["share_of_high"] == pytest.approx(0.015, abs=0.005)
    assert report["reference"]["features"]["x0"]["kind"] == "numeric"


def test_nothing_blamed_on_levers_not_planted() -> None:
    planted = pe.generate(20_000, seed=11, plant=("serving", "data", "feature_gap"))
    report, levers, _ = pe.run(planted)
    total = len(levers)
    given = {lv: sum(1 for v in levers.values() if v == lv) for lv in LEVERS}
    for lever in ("distribution_shift", "threshold", "capacity"):
        assert given[lever] / total < 0.02, (lever, given[lever], total)
    shift = _levers(report)["distribution_shift"]
    assert any("nothing is blamed on shift" in line for line in shift["evidence"])
    novel = shift["facts"]["test"]
    assert novel["novel"] > 0  # ~1% of records are novel by construction, and harmless


def test_no_shift_planted_shift_gets_under_two_percent() -> None:
    plant = tuple(c for c in pe.PLANTABLE if c != "distribution_shift")
    planted = pe.generate(20_000, seed=12, plant=plant)
    _, levers, _ = pe.run(planted)
    shift = sum(1 for v in levers.values() if v == "distribution_shift")
    assert shift / len(levers) < 0.02
    for lever, (precision, recall, _, _) in pe.scores(planted, levers).items():
        if lever != "distribution_shift":
            assert precision >= 0.8 and recall >= 0.8, lever


def _regression_records(n: int, seed: int) -> tuple[list[dict[str, Any]], Reference]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n + 4000, 4))
    truth = 2.0 * x[:, 0] - x[:, 1] + 6.0 * (x[:, 2] > 0.8) * (x[:, 3] > 0.8)
    y = truth + rng.normal(0.0, 0.3, n + 4000)
    pred = 2.0 * x[:, 0] - x[:, 1] + 0.3  # linear: misses the box
    records = [
        {
            "record_id": f"g{i}",
            "timestamp": 1_700_000_000.0 + i,
            "prediction": float(pred[i]),
            "label": float(y[i]),
            "features": {f"x{j}": float(x[i, j]) for j in range(4)},
            "attributes": {"shop": "a" if i % 2 else "b"},
        }
        for i in range(n)
    ]
    reference = Reference(columns=("x0", "x1", "x2", "x3"), rows=x[n:], source="uploaded")
    return records, reference


def test_regression_errors_beyond_tolerance_and_the_probe_regresses() -> None:
    records, reference = _regression_records(8000, seed=5)
    result = run_analysis(records, AnalysisParams(tolerance=1.0), reference)
    report = result.report
    assert report["overall"]["mode"] == "regression"
    gaps = [abs(r["prediction"] - r["label"]) for r in records]
    assert report["overall"]["errors"] == sum(g > 1.0 for g in gaps)
    rows = _levers(report)
    # The box errs by ~6 - 0.3: the probe fixes it; the constant offset (0.3) is small.
    box = {
        r["record_id"]
        for r in records
        if r["features"]["x2"] > 0.8
        and r["features"]["x3"] > 0.8
        and abs(r["prediction"] - r["label"]) > 1.0
    }
    capacity = {e["record_id"] for e in result.errors if e["lever"] == "capacity"}
    assert len(box & capacity) >= 0.8 * len(box)
    assert len(box & capacity) >= 0.8 * len(capacity)
    assert rows["capacity"]["facts"]["test"]["passed"]
    assert report["calibration"]["records"] == 0


def test_tolerance_needs_numbers() -> None:
    records = [{"record_id": "a", "prediction": "cat", "label": "dog"}]
    with pytest.raises(ValueError, match="tolerance"):
        run_analysis(records, AnalysisParams(tolerance=1.0))


def test_without_a_reference_nothing_is_blamed_on_shift() -> None:
    planted = pe.generate(6000, seed=3)
    result = run_analysis(planted.records)
    rows = _levers(result.report)
    assert rows["distribution_shift"]["errors"] == 0
    assert "no reference" in rows["distribution_shift"]["evidence"][0]
    assert result.report["reference"]["source"] is None


def test_ties_go_to_the_cheaper_lever() -> None:
    recs = [
        {"record_id": f"s{i}", "prediction": None, "label": 1, "features": {"a": 1.0}}
        for i in range(10)
    ] + [
        {"record_id": f"d{i}", "prediction": 0, "label": 1, "features": {"a": None}}
        for i in range(10)
    ]
    recs += [
        {"record_id": f"c{i}", "prediction": 1, "label": 1, "features": {"a": 1.0}}
        for i in range(80)
    ]
    report = run_analysis(recs).report
    order = [r["lever"] for r in report["levers"]]
    assert order[:2] == ["serving", "data"]
    assert _levers(report)["serving"]["errors"] == _levers(report)["data"]["errors"] == 10
    assert report["recommendation"]["lever"] == "serving"


def test_no_errors_no_recommendation() -> None:
    recs = [{"record_id": str(i), "prediction": 1, "label": 1} for i in range(50)]
    report = run_analysis(recs).report
    assert report["recommendation"] is None
    assert all(row["errors"] == 0 and not row["first"] for row in report["levers"])


def test_a_declared_categorical_feature_is_a_category() -> None:
    rng = np.random.default_rng(8)
    ref = np.column_stack([rng.normal(size=4000), rng.integers(0, 6, 4000) * 10.0])
    reference = Reference(
        columns=("x", "store"), rows=ref, source="uploaded", categorical=("store",)
    )
    described = reference.to_dict()["features"]["store"]
    assert described["kind"] == "categorical" and described["distinct"] == 6
    assert "p1" not in described and len(described["top"]) == 6
    # Two different stores are one apart whatever their codes; an unseen store is far.
    enc = encoder(ref, reference.categorical_indices)
    z = enc.transform(np.array([[0.0, 0.0], [0.0, 10.0], [0.0, 50.0], [0.0, 70.0]]))
    assert np.linalg.norm(z[0] - z[1]) == pytest.approx(1.0)
    assert np.linalg.norm(z[0] - z[2]) == pytest.approx(1.0)
    assert np.linalg.norm(z[0] - z[3]) > 2.0
    x = rng.normal(size=5000)
    store = rng.integers(0, 6, 5000) * 10.0
    store[:300] = 70.0  # a store the reference never saw
    p = 1 / (1 + np.exp(-3 * x))
    y = (rng.random(5000) < p).astype(int)
    y[:300] = (p[:300] < 0.5).astype(int)  # the new store behaves the other way
    records = [
        {
            "record_id": f"s{i}",
            "prediction": float(p[i]),
            "label": int(y[i]),
            "features": {"x": float(x[i]), "store": float(store[i])},
        }
        for i in range(5000)
    ]
    result = run_analysis(records, reference=reference)
    shift = [e for e in result.errors if e["lever"] == "distribution_shift"]
    assert len(shift) >= 250
    assert all(e["evidence"]["features"] == ["store"] for e in shift)
    assert all(int(e["record_id"][1:]) < 300 for e in shift)


def test_a_multiclass_label_model_gets_a_probe_but_no_threshold() -> None:
    rng = np.random.default_rng(1)
    n = 6000
    x = rng.normal(size=(n, 3))
    rule = np.where(x[:, 0] > 0.5, "a", np.where(x[:, 1] > 0, "b", "c"))
    box = x[:, 2] > 1.0  # the truth is "c" there; the model's rule misses it
    label = np.where(box, "c", rule)
    records = [
        {
            "record_id": f"m{i}",
            "prediction": str(rule[i]),
            "label": str(label[i]),
            "features": {f"x{j}": float(x[i, j]) for j in range(3)},
        }
        for i in range(n)
    ]
    result = run_analysis(records)
    rows = _levers(result.report)
    planted = {f"m{i}" for i in range(n) if rule[i] != label[i]}
    capacity = {e["record_id"] for e in result.errors if e["lever"] == "capacity"}
    assert len(planted & capacity) >= 0.8 * len(planted)
    assert rows["threshold"]["errors"] == 0
    assert "could not be fitted" in rows["threshold"]["evidence"][0]
