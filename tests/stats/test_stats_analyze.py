"""The `POST /v1/analyze` entry point: row shape, statuses, degenerate data, bad input."""

from __future__ import annotations

import json
from typing import Any

import pytest

from service.stats import ArmSummary, Design, Look, StatsInputError, analyze

DESIGN_EXAMPLE = [Look(ArmSummary(1000, 98, 98), ArmSummary(1000, 105, 105))]


@pytest.mark.parametrize("design", ["fixed", "group_sequential", "always_valid"])
def test_row_shape_is_the_results_metrics_row(design: Design) -> None:
    res = analyze(
        kind="mean",
        direction="increase",
        design=design,
        looks=DESIGN_EXAMPLE,
        planned_units_per_variant=20_000,
    )
    row: dict[str, Any] = res.to_dict()
    assert {
        "baseline",
        "treatment",
        "absolute",
        "relative",
        "p_value",
        "status",
        "boundary",
        "error",
    } <= set(row)
    assert row["baseline"] == {"units": 1000, "mean": 0.098}
    assert set(row["absolute"]) == {"estimate", "ci"} and len(row["absolute"]["ci"]) == 2
    assert row["status"] == "inconclusive"
    assert row["boundary"]["design"] == design and row["boundary"]["look"] == 1
    json.dumps(row, allow_nan=False)


def _looks(pairs: list[tuple[int, int, int]]) -> list[Look]:
    return [Look(ArmSummary(n, c), ArmSummary(n, t)) for n, c, t in pairs]


def test_group_sequential_status_is_the_first_crossing_and_direction_aware() -> None:
    looks = _looks([(4000, 400, 520), (8000, 800, 1000), (12000, 1200, 1380)])
    up = analyze(
        kind="proportion",
        direction="increase",
        design="group_sequential",
        looks=looks,
        planned_units_per_variant=20_000,
    )
    assert up.status == "better" and up.verdict.first_crossing == 2  # z 4.2 < 4.88, then 5.0
    assert up.p_value <= 0.05
    down = analyze(
        kind="proportion",
        direction="decrease",
        design="group_sequential",
        looks=looks,
        planned_units_per_variant=20_000,
    )
    assert down.status == "worse"
    # The repeated CI at the current look uses this look's boundary.
    half = (up.absolute_ci[1] - up.absolute_ci[0]) / 2
    assert half > 1.96 * abs(up.absolute_estimate / up.verdict.z)


def test_fixed_design_waits_for_the_horizon() -> None:
    looks = _looks([(5000, 500, 640)])
    early = analyze(
        kind="proportion",
        direction="increase",
        design="fixed",
        looks=looks,
        planned_units_per_variant=20_000,
    )
    assert early.p_value < 0.001 and early.status == "inconclusive"
    done = analyze(
        kind="proportion",
        direction="increase",
        design="fixed",
        looks=looks,
        planned_units_per_variant=5_000,
    )
    assert done.status == "better" and done.verdict.final


def test_ratio_metric_and_degenerate_looks() -> None:
    ratio = [
        Look(ArmSummary(500, 300, 500, 900, 2000, 800), ArmSummary(500, 330, 560, 905, 2030, 860))
    ]
    res = analyze(
        kind="ratio",
        direction="increase",
        design="always_valid",
        looks=ratio,
        planned_units_per_variant=5000,
    )
    assert res.error is None and res.baseline_mean == pytest.approx(300 / 900)
    empty = analyze(
        kind="mean",
        direction="increase",
        design="group_sequential",
        looks=[Look(ArmSummary(0, 0, 0), ArmSummary(1, 2, 4))],
        planned_units_per_variant=100,
    )
    assert empty.error is not None and empty.status == "inconclusive"
    row: dict[str, Any] = empty.to_dict()
    assert row["error"] == "insufficient_data"
    json.dumps(row, allow_nan=False)
    zero_den = analyze(
        kind="ratio",
        direction="increase",
        design="fixed",
        looks=[Look(ArmSummary(5, 0, 0, 0, 0, 0), ArmSummary(5, 1, 1, 2, 2, 1))],
    )
    assert zero_den.to_dict()["error"] == "zero_denominator"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"kind": "median"}, "metric.kind"),
        ({"direction": "up"}, "metric.direction"),
        ({"design": "bayesian"}, "design"),
        ({"alpha": 1.5}, "alpha"),
        ({"planned_units_per_variant": None}, "planned_units_per_variant"),
        ({"looks": []}, "looks"),
        ({"looks": [Look(ArmSummary(-1, 0, 0), ArmSummary(1, 1, 1))]}, "looks[0].baseline.units"),
        (
            {"looks": [Look(ArmSummary(10, 5, None), ArmSummary(10, 5, 5))]},
            "looks[0].baseline.sum_sq",
        ),
        ({"looks": [Look(ArmSummary(10, 5, 1), ArmSummary(10, 5, 5))]}, "looks[0].baseline.sum_sq"),
        (
            {
                "looks": [
                    Look(ArmSummary(10, 5, 5), ArmSummary(10, 5, 5)),
                    Look(ArmSummary(20, 9, 9), ArmSummary(8, 4, 4)),
                ]
            },
            "looks[1].treatment.units",
        ),
        (
            {"kind": "proportion", "looks": [Look(ArmSummary(10, 11), ArmSummary(10, 5))]},
            "looks[0].baseline.sum",
        ),
        (
            {"kind": "ratio", "looks": [Look(ArmSummary(10, 5, 5), ArmSummary(10, 5, 5))]},
            "looks[0].baseline.den_sum",
        ),
        (
            {"looks": [Look(ArmSummary(10, float("nan"), 5), ArmSummary(10, 5, 5))]},
            "looks[0].baseline.sum",
        ),
    ],
)
def test_bad_input_names_the_field(kwargs: dict[str, Any], field: str) -> None:
    args = {
        "kind": "mean",
        "direction": "increase",
        "design": "group_sequential",
        "looks": DESIGN_EXAMPLE,
        "alpha": 0.05,
        "planned_units_per_variant": 1000,
    }
    with pytest.raises(StatsInputError) as err:
        analyze(**{**args, **kwargs})
    assert err.value.field == field


def test_every_result_serialises_to_strict_json() -> None:
    from service.stats import adjust_p_values, srm_check

    looks = _looks([(4000, 400, 520), (8000, 800, 1000)])
    res = analyze(
        kind="proportion",
        direction="increase",
        design="group_sequential",
        looks=looks,
        planned_units_per_variant=20_000,
    )
    payloads = [
        res.to_dict(),
        res.verdict.to_dict(),
        adjust_p_values([0.01, 0.5]).to_dict(),
        srm_check([100, 120], [1, 1]).to_dict(),
    ]
    for payload in payloads:
        json.dumps(payload, allow_nan=False)
    looks_out: Any = res.verdict.to_dict()["looks"]
    assert [look["crossed"] for look in looks_out] == [False, True]


def test_integral_float_units_are_accepted() -> None:
    whole: Any = 1000.0  # as JSON may deliver it
    looks = [Look(ArmSummary(whole, 98, 98), ArmSummary(whole, 105, 105))]
    res = analyze(kind="proportion", direction="increase", design="fixed", looks=looks)
    assert res.baseline_units == 1000
    with pytest.raises(StatsInputError) as err:
        analyze(
            kind="proportion",
            direction="increase",
            design="fixed",
            looks=[Look(ArmSummary(whole / 100 + 0.5, 1), ArmSummary(10, 1))],
        )
    assert err.value.field == "looks[0].baseline.units"


@pytest.mark.parametrize("design", ["fixed", "group_sequential"])
def test_the_verdict_at_the_horizon_is_final(design: str) -> None:
    # The audit's reproduction: inconclusive at the planned 20,000 units, "better" when
    # a look at 22,000 was re-tested. Now the later look is shown, not tested.
    kw: dict[str, Any] = {
        "kind": "proportion",
        "direction": "increase",
        "design": design,
        "planned_units_per_variant": 20_000,
    }
    at_plan = analyze(looks=_looks([(20_000, 2000, 2090)]), **kw)
    later = analyze(looks=_looks([(20_000, 2000, 2090), (22_000, 2200, 2357)]), **kw)
    assert at_plan.status == later.status == "inconclusive"
    assert later.p_value == at_plan.p_value
    assert later.absolute_ci == at_plan.absolute_ci and later.treatment_units == 20_000
    row: dict[str, Any] = later.to_dict()
    assert row["horizon_reached_at"] == 1 and row["decided_at"] == 1
    assert row["boundary"]["look"] == 1 and row["boundary"]["final"] is True
    past = row["past_plan"]
    assert past["look"] == 2 and past["information"] == pytest.approx(1.1)
    assert past["treatment"] == {"units": 22_000, "mean": pytest.approx(2357 / 22_000)}
    assert past["interval"] == "always_valid"
    # The always-valid interval is wider than the fixed-horizon one at the same data.
    fixed_now = analyze(looks=_looks([(22_000, 2200, 2357)]), **{**kw, "design": "fixed"})
    lo, hi = past["absolute"]["ci"]
    assert lo < fixed_now.absolute_ci[0] and hi > fixed_now.absolute_ci[1]
    assert at_plan.to_dict()["past_plan"] is None
    json.dumps(row, allow_nan=False)


def test_a_decision_before_the_horizon_stands_and_says_where() -> None:
    looks = _looks([(4000, 400, 520), (8000, 800, 1000), (20_000, 2000, 2010)])
    res = analyze(
        kind="proportion",
        direction="increase",
        design="group_sequential",
        looks=looks,
        planned_units_per_variant=20_000,
    )
    assert res.status == "better" and res.verdict.decided_at == 2
    assert res.verdict.horizon == 3


def test_fixed_design_without_a_plan_needs_one_look() -> None:
    with pytest.raises(StatsInputError) as err:
        analyze(
            kind="proportion",
            direction="increase",
            design="fixed",
            looks=_looks([(1000, 100, 120), (2000, 200, 260)]),
        )
    assert err.value.field == "planned_units_per_variant"
