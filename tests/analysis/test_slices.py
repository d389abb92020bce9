"""Slice discovery finds planted slices first and reports nothing on noise."""

from __future__ import annotations

import numpy as np
import pytest

from service.analysis import AnalysisParams, analyze
from tests.analysis._sim import records

PLANTED = {"country": "BR", "device": "android"}  # 1/5 x 1/4 = 5% of traffic


def test_planted_pair_ranks_first() -> None:
    # base 4%, planted 50%: the slice holds ~40% of all errors.
    recs = records(20_000, seed=21, base_error=0.04, planted=PLANTED, planted_error=0.5)
    report = analyze(recs)
    first = report["slices"][0]
    assert first["attributes"] == PLANTED
    assert first["record_share"] == pytest.approx(0.05, abs=0.01)
    assert first["error_share"] == pytest.approx(0.40, abs=0.05)
    assert first["lift"] > 5
    assert first["p_value"] < 1e-6
    # Its parents and overlapping siblings are explained by it and not repeated.
    others = [s["attributes"] for s in report["slices"][1:]]
    assert {"country": "BR"} not in others and {"device": "android"} not in others
    assert not any(PLANTED.items() <= s.items() for s in others)
    # Pareto: the slice comes first, the rest after; shares add up.
    top = report["pareto"][0]
    assert top["attributes"] == PLANTED
    assert report["pareto"][-1]["cumulative_error_share"] == pytest.approx(1.0)
    assert report["pareto"][-1]["cumulative_record_share"] == pytest.approx(1.0)
    shares = [p["error_rate"] for p in report["pareto"]]
    assert shares == sorted(shares, reverse=True)


def test_planted_triple_is_found_with_order_three() -> None:
    planted = {**PLANTED, "plan": "pro"}  # 2.5% of traffic
    recs = records(20_000, seed=22, base_error=0.04, planted=planted, planted_error=0.7)
    report = analyze(recs)
    assert report["slices"][0]["attributes"] == planted
    assert report["slice_search"]["max_order"] == 3
    two = analyze(recs, AnalysisParams(max_order=2))
    assert all(len(s["attributes"]) <= 2 for s in two["slices"])


@pytest.mark.parametrize("seed", [31, 32, 33])
def test_no_slice_on_pure_noise(seed: int) -> None:
    recs = records(20_000, seed=seed, base_error=0.1)
    report = analyze(recs)
    assert report["slices"] == []
    assert report["slice_search"]["examined"] > 50
    assert report["slice_search"]["significant"] == 0
    assert len(report["pareto"]) == 1  # everything is one region


def test_without_correction_noise_produces_false_slices() -> None:
    hits = 0
    for seed in (31, 33):
        recs = records(20_000, seed=seed, base_error=0.1)
        found = analyze(recs, AnalysisParams(correction="none"))["slice_search"]["significant"]
        hits += found
    assert hits > 0  # the correction is what keeps the noise runs clean


def test_slice_numbers_match_a_direct_count() -> None:
    recs = records(10_000, seed=23, base_error=0.05, planted=PLANTED, planted_error=0.4)
    report = analyze(recs)
    s = report["slices"][0]
    inside = [r for r in recs if all(r["attributes"][k] == v for k, v in PLANTED.items())]
    errors = sum(r["prediction"] != r["label"] for r in inside)
    total_errors = sum(r["prediction"] != r["label"] for r in recs)
    assert s["records"] == len(inside) and s["errors"] == errors
    assert s["error_share"] == pytest.approx(errors / total_errors)
    assert s["lift"] == pytest.approx((errors / len(inside)) / (total_errors / len(recs)))
    assert np.isfinite(s["p_value"])
