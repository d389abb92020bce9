"""The backtest's paired analysis and its stricter bar."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest

from service.analysis._backtest_input import cell, nest_rows, rows_from_csv
from service.analysis._paired import paired_comparison
from service.analysis.backtest import BacktestPlan, run_backtest
from service.api.backtest import plan_from_spec
from service.spec import parse_spec
from tests.analysis._paired_sim import SPEC, paired

COUNTRIES = ("BR", "DE", "US")


def _plan(**overrides: Any) -> BacktestPlan:
    plan = plan_from_spec(parse_spec(SPEC))
    return dataclasses.replace(plan, **overrides)


def test_paired_estimator_matches_a_direct_computation() -> None:
    rng = np.random.default_rng(61)
    c = (rng.random(500) < 0.8).astype(float)
    t = np.where(rng.random(500) < 0.9, c, 1 - c)
    ones = np.ones_like(c)
    comp = paired_comparison(c, ones, t, ones, 0.05)
    d = t - c
    se = d.std(ddof=1) / np.sqrt(d.size)
    assert comp.absolute.estimate == pytest.approx(d.mean())
    assert comp.absolute.se == pytest.approx(se)
    assert comp.absolute.ci == pytest.approx((d.mean() - 1.959964 * se, d.mean() + 1.959964 * se))
    rel_infl = t / c.mean() - t.mean() / c.mean() ** 2 * c
    assert comp.relative.estimate == pytest.approx(t.mean() / c.mean() - 1)
    assert comp.relative.se == pytest.approx(rel_infl.std(ddof=1) / np.sqrt(d.size))
    # Pairing removes the shared variance: narrower than two independent samples.
    independent = np.sqrt(c.var(ddof=1) / c.size + t.var(ddof=1) / t.size)
    assert comp.absolute.se < 0.7 * independent
    assert paired_comparison(c[:1], ones[:1], t[:1], ones[:1], 0.05).error is not None


def test_clean_win_is_approved() -> None:
    recs = paired(6000, seed=62, base_error=0.15, candidate_error=dict.fromkeys(COUNTRIES, 0.10))
    result = run_backtest(_plan(), recs)
    verdict = result["verdict"]
    assert verdict["approved"] is True and verdict["action"] == "ship", verdict["reasons"]
    assert result["evidence"] == "historical"
    assert verdict["statement"].startswith("Historical evidence")
    primary = result["metrics"][0]
    assert primary["metric"] == "accuracy" and primary["status"] == "better"
    assert all(s["non_inferior"] for s in result["segments"])
    assert {s["segment"]["country"] for s in result["segments"]} == set(COUNTRIES)
    assert result["arms"]["baseline"]["error_rate"]["value"] == pytest.approx(0.15, abs=0.02)


def test_overall_win_that_loses_a_segment_is_not_approved() -> None:
    recs = paired(
        6000, seed=63, base_error=0.15, candidate_error={"BR": 0.22, "DE": 0.08, "US": 0.08}
    )
    result = run_backtest(_plan(), recs)
    assert result["metrics"][0]["status"] == "better"  # it wins overall
    verdict = result["verdict"]
    assert verdict["approved"] is False
    assert verdict["action"] in ("rollback", "stop")
    assert any("country=BR" in reason for reason in verdict["reasons"])
    br = next(s for s in result["segments"] if s["segment"] == {"country": "BR"})
    assert not br["non_inferior"]
    assert all(s["non_inferior"] for s in result["segments"] if s["segment"] != {"country": "BR"})


def test_stricter_bar_is_applied_and_reported() -> None:
    # 55 records fixed, 35 broken out of 2000: two-sided p ~ 0.035, between alpha/2 and alpha.
    n, fixed, broken = 2000, 55, 35
    recs = []
    for i in range(n):
        base_ok = i >= fixed  # the first `fixed` are baseline errors the candidate fixes
        cand_ok = not (fixed <= i < fixed + broken)
        recs.append(
            {
                "label": 1,
                "variants": {
                    "baseline": {"prediction": 1 if base_ok else 0},
                    "candidate": {"prediction": 1 if cand_ok else 0},
                },
            }
        )
    spec = {**SPEC, "segments": [], "metrics": [SPEC["metrics"][0]]}
    plan = plan_from_spec(parse_spec(spec))
    strict = run_backtest(plan, recs)
    assert strict["analysis"]["alpha"] == 0.025 and strict["analysis"]["spec_alpha"] == 0.05
    assert strict["verdict"]["bar"]["alpha"] == 0.025
    assert 0.025 < strict["metrics"][0]["p_value"] < 0.05
    assert strict["metrics"][0]["status"] == "inconclusive"
    assert strict["verdict"]["approved"] is False and strict["verdict"]["action"] == "stop"
    assert any("timestamps" in r for r in strict["verdict"]["reasons"])
    lenient = run_backtest(dataclasses.replace(plan, strict_alpha=0.05), recs)
    assert lenient["metrics"][0]["status"] == "better"
    assert lenient["verdict"]["approved"] is True


def test_short_history_waits_for_min_days() -> None:
    recs = paired(
        3000, seed=64, base_error=0.15, candidate_error=dict.fromkeys(COUNTRIES, 0.10), days=3
    )
    verdict = run_backtest(_plan(), recs)["verdict"]
    assert verdict["action"] == "continue" and not verdict["approved"]
    assert any("minimum 14 days" in r for r in verdict["reasons"])


def test_small_segments_are_listed_not_judged() -> None:
    recs = paired(3000, seed=65, base_error=0.15, candidate_error=dict.fromkeys(COUNTRIES, 0.10))
    for r in recs[:20]:
        r["attributes"]["country"] = "LU"
    result = run_backtest(_plan(), recs)
    lu = next(s for s in result["segments"] if s["segment"] == {"country": "LU"})
    assert lu["judged"] is False and lu["checks"] == []
    assert any("were not judged" in r and "country=LU" in r for r in result["verdict"]["reasons"])


def test_flat_rows_and_csv() -> None:
    text = (
        "record_id,timestamp,label,country,baseline.prediction,candidate.prediction,"
        "baseline.latency_ms,candidate.confidence\n"
        "a,2024-05-01T10:00:00Z,1,US,0,1,40.5,0.9\n"
        "b,,0,BR,0,0,,\n"
    )
    nested = nest_rows(rows_from_csv(text), ("baseline", "candidate"))
    assert nested[0] == {
        "record_id": "a",
        "timestamp": "2024-05-01T10:00:00Z",
        "label": 1,
        "attributes": {"country": "US"},
        "variants": {
            "baseline": {"prediction": 0, "values": {"latency_ms": 40.5}},
            "candidate": {"prediction": 1, "confidence": 0.9},
        },
    }
    assert "timestamp" not in nested[1]
    assert [cell(x) for x in ("1", "1.5", "-2e3", "true", "cat", " 7 ")] == [
        1,
        1.5,
        -2000.0,
        True,
        "cat",
        7,
    ]
