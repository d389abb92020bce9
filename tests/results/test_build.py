"""Results from cells: numbers against numpy/scipy, guardrails by segment, SRM, decisions."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest
from scipy import stats as sps

from service.results import build_results, spec_plan
from service.spec import ExperimentRecord, parse_spec
from service.stats import ProportionStats, compare, plan_experiment
from tests._factories import metric, simple_spec
from tests.results.cellgen import Units, to_cells

HOUR = 3600
T0 = 1_750_000_000.0
START_HOUR = int(T0 // HOUR)
COUNTRIES = ["US", "CA", "DE", "FR"]


def _spec(**analysis: Any) -> dict[str, Any]:
    return simple_spec(
        "exp-r",
        segments=["country"],
        metrics=[
            metric("conversion", value="converted", role="primary", mde=0.05, baseline_mean=0.3),
            metric("recall", "ratio", numerator="tp", denominator="pos", role="guardrail",
                   margin=0.02),
            metric("latency", "mean", value="latency_ms", role="guardrail", direction="decrease",
                   margin=0.05),
        ],
        analysis={"design": "always_valid", "min_days": 7, "looks": 4, **analysis},
    )  # fmt: skip


def _record(spec: dict[str, Any], days: float) -> ExperimentRecord:
    return ExperimentRecord(
        key=spec["key"],
        spec=parse_spec(spec),
        status="running",
        created_at=T0,
        updated_at=T0,
        started_at=T0 - days * 86_400,
    )


def _simulate(
    n: int,
    *,
    lift: float = 0.0,
    recall_drop_in: str | None = None,
    imbalance: float = 0.5,
    hours: int = 48,
    seed: int = 1,
) -> Units:
    rng = np.random.default_rng(seed)
    units = Units()
    for _ in range(n):
        variant = "treatment" if rng.random() < imbalance else "control"
        country = COUNTRIES[int(rng.integers(len(COUNTRIES)))]
        p = 0.3 * (1 + lift if variant == "treatment" else 1)
        converted = float(rng.random() < p)
        positives = float(rng.integers(0, 4))
        recall_p = 0.8
        if variant == "treatment" and recall_drop_in is not None:
            # Better everywhere but in one segment, where it is much worse.
            recall_p = 0.64 if country == recall_drop_in else 0.86
        tp = float(rng.binomial(int(positives), recall_p))
        latency = float(rng.normal(100, 10))
        units.add(
            variant,
            START_HOUR - hours + int(rng.integers(hours)),
            {"country": country},
            {"conversion": (converted, 0.0), "recall": (tp, positives), "latency": (latency, 0.0)},
        )
    return units


def test_numbers_match_numpy_and_scipy() -> None:
    spec = _spec()
    units = _simulate(6000, lift=0.1)
    cells = to_cells("exp-r", units, ["country"])
    res = build_results(_record(spec, 3), cells, T0)
    variant = np.array(units.variant)
    conv = np.array([y for y, _ in units.values["conversion"]])
    assert res["units"] == {
        "control": int((variant == "control").sum()),
        "treatment": int((variant == "treatment").sum()),
    }
    row = next(r for r in res["metrics"] if r["metric"] == "conversion" and r["segment"] is None)
    c, t = conv[variant == "control"], conv[variant == "treatment"]
    assert row["baseline"]["mean"] == pytest.approx(c.mean(), rel=1e-12)
    assert row["treatment"]["mean"] == pytest.approx(t.mean(), rel=1e-12)
    assert row["absolute"]["estimate"] == pytest.approx(t.mean() - c.mean(), rel=1e-9)
    assert row["relative"]["estimate"] == pytest.approx(t.mean() / c.mean() - 1, rel=1e-9)
    lo, hi = row["relative"]["ci"]
    assert lo < row["relative"]["estimate"] < hi
    # Always-valid intervals are wider than the fixed-horizon one.
    se = np.sqrt(c.var(ddof=1) / c.size + t.var(ddof=1) / t.size)
    fixed_half = sps.norm.ppf(0.975) * se
    abs_lo, abs_hi = row["absolute"]["ci"]
    assert (abs_hi - abs_lo) / 2 > fixed_half
    # SRM against 50/50, chi-square as scipy computes it.
    counts = [res["units"]["control"], res["units"]["treatment"]]
    assert res["srm"]["chi_square_p"] == pytest.approx(sps.chisquare(counts).pvalue, rel=1e-9)
    assert res["srm"]["ok"] is True
    segs = {next(iter(r["segment"].values())) for r in res["metrics"] if r["segment"]}
    assert segs == set(COUNTRIES)


def test_segment_regression_is_breached_there_alone_and_rolls_back() -> None:
    spec = _spec()
    cells = to_cells(
        "exp-r", _simulate(40_000, lift=0.08, recall_drop_in="DE", seed=2), ["country"]
    )
    res = build_results(_record(spec, 10), cells, T0)
    recall = [g for g in res["guardrails"] if g["metric"] == "recall"]
    breached = [g for g in recall if g["status"] == "breached"]
    assert [g["segment"] for g in breached] == [{"country": "DE"}]
    assert all(g["status"] != "breached" for g in res["guardrails"] if g["metric"] == "latency")
    assert res["decision"]["action"] == "rollback"
    assert any("country=DE" in r for r in res["decision"]["reasons"])
    # Each segment's interval is tuned to its own expected size: its share of the units.
    units = res["units"]["control"] + res["units"]["treatment"]
    for g in recall:
        if g["segment"] is None:
            assert g["share"] == 1.0
        else:
            inside = g["units"]["baseline"] + g["units"]["treatment"]
            assert g["share"] == pytest.approx(inside / units, rel=0.02)
            assert 0.2 < g["share"] < 0.3  # four countries


def test_clean_win_ships_after_min_days_only() -> None:
    spec = _spec()
    cells = to_cells("exp-r", _simulate(40_000, lift=0.1, seed=3), ["country"])
    early = build_results(_record(spec, 2), cells, T0)
    assert early["decision"]["action"] == "continue"
    assert any("minimum" in r for r in early["decision"]["reasons"])
    late = build_results(_record(spec, 8), cells, T0)
    primary = next(r for r in late["metrics"] if r["role"] == "primary")
    assert primary["status"] == "better"
    overall = [g for g in late["guardrails"] if g["segment"] is None]
    assert {g["status"] for g in overall} == {"ok"}
    assert late["decision"] == {**late["decision"], "action": "ship", "variant": "treatment"}


def test_sample_ratio_mismatch_blocks_shipping() -> None:
    spec = _spec()
    cells = to_cells("exp-r", _simulate(40_000, lift=0.1, imbalance=0.53, seed=4), ["country"])
    res = build_results(_record(spec, 8), cells, T0)
    assert res["srm"]["ok"] is False and res["srm"]["p_value"] < 0.001
    assert res["decision"]["action"] != "ship"
    assert any("sample ratio mismatch" in r for r in res["decision"]["reasons"])


def test_group_sequential_reads_planned_looks_only() -> None:
    spec = _spec(design="group_sequential", looks=4)
    planned = spec_plan(parse_spec(spec))["units_per_variant"]
    # Half the planned sample per variant over 48 hours: looks 1 and 2 are reached.
    units = _simulate(int(planned * 2 * 0.55), lift=0.0, seed=5)
    res = build_results(_record(spec, 2), to_cells("exp-r", units, ["country"]), T0)
    picture = res["sequential"][0]
    assert [look["look"] for look in picture["looks"]] == [1, 2]
    assert all(0.24 < look["information"] < 0.56 for look in picture["looks"])
    bounds = [look["boundary"] for look in picture["looks"]]
    assert bounds[0] > bounds[1] > 1.96, "O'Brien-Fleming boundaries shrink toward the end"
    assert picture["next_look_units"] == pytest.approx(planned * 3 / 4)


def test_group_sequential_before_first_look_is_inconclusive() -> None:
    spec = _spec(design="group_sequential", looks=4)
    res = build_results(
        _record(spec, 1), to_cells("exp-r", _simulate(300, lift=0.5), ["country"]), T0
    )
    primary = next(r for r in res["metrics"] if r["role"] == "primary")
    assert primary["status"] == "inconclusive"
    assert res["sequential"][0]["looks"] == []


def test_plan_matches_the_engine() -> None:
    spec = parse_spec(
        {
            **_spec(design="group_sequential", looks=14),
            "analysis": {
                "design": "group_sequential",
                "looks": 14,
                "min_days": 14,
                "expected_daily_units": 20_000,
            },
        }
    )
    plan = spec_plan(spec)
    engine = plan_experiment(
        kind="proportion",
        baseline_mean=0.3,
        mde=0.05,
        looks=14,
        design="group_sequential",
        daily_units=20_000,
        min_days=14,
    )
    assert plan["units_per_variant"] == engine.units_per_variant
    assert plan["days"] == max(14, engine.days or 0)
    assert [p["days"] for p in plan["mde_curve"]] == [7, 14, 21, 28, 42, 56]
    mdes = [p["mde"] for p in plan["mde_curve"]]
    assert mdes == sorted(mdes, reverse=True)


def test_empty_experiment_is_not_an_error() -> None:
    from service.store.aggregates import ExperimentCells

    res = build_results(_record(_spec(), 0.1), ExperimentCells("exp-r", (), ()), time.time())
    assert res["units"] == {"control": 0, "treatment": 0}
    assert res["decision"]["action"] == "continue"
    assert res["srm"]["ok"] is True


def test_hour_in_progress_is_not_a_look() -> None:
    spec = _spec(design="group_sequential", looks=4)
    planned = spec_plan(parse_spec(spec))["units_per_variant"]
    units = _simulate(int(planned * 2 * 0.55), lift=0.0, hours=1, seed=6)
    cells = to_cells("exp-r", units, ["country"])
    during = build_results(_record(spec, 2), cells, (START_HOUR - 1) * HOUR + 1800)
    assert during["sequential"][0]["looks"] == [], "the hour in progress may still change"
    after = build_results(_record(spec, 2), cells, T0)
    assert [look["look"] for look in after["sequential"][0]["looks"]] == [1]


def _two_phases(planned: int, seed: int) -> Units:
    """A/A a little past the plan (hours -48..-27), then half as many units again with a
    big lift (hours -24..-3): the current totals are significant, the planned look not."""
    rng = np.random.default_rng(seed)
    units = Units()
    phases = ((0, int(2.2 * planned), 0.0, -48), (1, planned, 0.5, -24))
    for phase, count, lift, first_hour in phases:
        for _ in range(count):
            variant = "treatment" if rng.random() < 0.5 else "control"
            p = 0.3 * (1 + lift if variant == "treatment" else 1)
            units.add(
                variant,
                START_HOUR + first_hour + int(rng.integers(22)),
                {"country": COUNTRIES[int(rng.integers(len(COUNTRIES)))]},
                {
                    "conversion": (float(rng.random() < p), 0.0),
                    "recall": (1.0, 1.0),
                    "latency": (float(rng.normal(100, 10)), 0.0),
                },
            )
        assert phase in (0, 1)
    return units


@pytest.mark.parametrize("design", ["fixed", "group_sequential"])
def test_the_verdict_at_the_planned_size_is_final(design: str) -> None:
    spec = _spec(design=design, looks=2)
    spec["metrics"][0]["mde"] = 0.2
    planned = spec_plan(parse_spec(spec))["units_per_variant"]
    units = _two_phases(planned, seed=8)
    res = build_results(_record(spec, 3), to_cells("exp-r", units, ["country"]), T0)
    primary = next(r for r in res["metrics"] if r["role"] == "primary")
    picture = res["sequential"][0]
    planned_looks = 2 if design == "group_sequential" else 1
    assert [look["look"] for look in picture["looks"]] == list(range(1, planned_looks + 1))
    horizon = picture["looks"][-1]
    assert horizon["units"] >= planned and horizon["hour"] < (START_HOUR - 24) * HOUR
    assert picture["horizon_reached_at"] == picture["decided_at"] == planned_looks
    # The planned look is A/A: inconclusive, and it stays so although the current
    # totals, with the lift that came later, are far beyond any boundary.
    assert primary["status"] == "inconclusive"
    assert primary["baseline"]["units"] + primary["treatment"]["units"] <= 2.2 * planned
    latest = primary["latest"]
    assert latest["past_plan"] is True and latest["interval"] == "always_valid"
    # What the old fixed branch did: the horizon's test on the current totals.
    arms = [latest[arm] for arm in ("baseline", "treatment")]
    baseline, treatment = (ProportionStats(a["units"], round(a["mean"] * a["units"])) for a in arms)
    now = compare(baseline, treatment)
    assert now.absolute.p_value < 0.01, "re-tested, the later data would read 'better'"
    assert latest["information"] > 1.4
    assert res["decision"]["action"] == "stop"
    assert any("planned maximum" in r for r in res["decision"]["reasons"])
