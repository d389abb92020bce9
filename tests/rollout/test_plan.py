"""The plan's duration through a ramp: days at each step's traffic, then the full share.

Checked against an independent reference: the ramp run forward in small time steps, each
step left once its minimum time and units are reached.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.results import spec_plan
from service.spec import parse_spec
from service.stats import RampStep, StatsInputError, ramp_timing, ramp_units
from tests._factories import fraud_spec
from tests.rollout._support import STEPS

DT = 1e-4  # days per tick of the reference


def _forward(total: float, daily: float, steps: list[RampStep]) -> tuple[float, list[float]]:
    """Days until ``total`` units entered, and the days spent in each step (reference)."""
    t, entered, index, in_step, step_units = 0.0, 0.0, 0, 0.0, 0.0
    spent = [0.0] * len(steps)
    reached: float | None = None
    while reached is None or index < len(steps) - 1:
        step = steps[index]
        if (
            index < len(steps) - 1
            and in_step >= step.min_days - 1e-12
            and (step_units >= step.min_units - 1e-9)
        ):
            spent[index] = in_step
            index, in_step, step_units = index + 1, 0.0, 0.0
            continue
        arrive = daily * step.share * DT
        if reached is None and entered + arrive >= total:
            reached = t + (total - entered) / (daily * step.share)
        t, entered, in_step, step_units = (
            t + DT,
            entered + arrive,
            in_step + DT,
            step_units + arrive,
        )
    assert reached is not None
    spent[-1] = max(0.0, reached - sum(spent[:-1]))
    return reached, spent


ramp_steps = st.lists(
    st.tuples(
        st.floats(min_value=0.005, max_value=1.0),
        st.floats(min_value=0.0, max_value=2.0),
        st.floats(min_value=0.0, max_value=3000.0),
    ),
    min_size=1,
    max_size=4,
).map(
    lambda raw: (
        [RampStep(share, days, units) for share, days, units in sorted(raw)] + [RampStep(1.0)]
    )
)


@settings(max_examples=40, deadline=None)
@given(ramp_steps, st.floats(min_value=10.0, max_value=50_000.0),
       st.floats(min_value=500.0, max_value=20_000.0))  # fmt: skip
def test_ramp_timing_matches_running_the_ramp_forward(
    steps: list[RampStep], total: float, daily: float
) -> None:
    timing = ramp_timing(total, daily, steps)
    reached, spent = _forward(total, daily, steps)
    # the reference moves in ticks of DT: one tick of slack per step boundary
    slack = DT * (len(steps) + 1)
    assert timing.days == pytest.approx(reached, abs=slack)
    assert timing.step_days == pytest.approx(spent, abs=slack)
    assert ramp_units(timing.days, daily, steps) == pytest.approx(total, rel=1e-9, abs=1e-6)


def test_the_documented_example_in_numbers() -> None:
    """20,000 units a day at full share; 1 % waits for 2,000 units: 10 days, not 1 hour."""
    steps = [RampStep(0.01, 1 / 24, 2000), RampStep(0.05, 0.25), RampStep(0.2, 1.0), RampStep(1.0)]
    timing = ramp_timing(8454, 20_000, steps)
    assert timing.step_days[:3] == pytest.approx((10.0, 0.25, 1.0))
    assert timing.step_units[:3] == pytest.approx((2000.0, 250.0, 4000.0))
    # 2,204 units are left for the full share: 0.1102 days of it
    assert timing.days == pytest.approx(11.25 + 2204 / 20_000)
    # a plan reached during a step stops there
    early = ramp_timing(1000, 20_000, steps)
    assert early.days == pytest.approx(1000 / 200)
    assert early.step_days == pytest.approx((10.0, 0.25, 1.0, 0.0))


def test_bad_questions_name_the_field() -> None:
    with pytest.raises(StatsInputError) as caught:
        ramp_timing(100, 0, [RampStep(1.0)])
    assert caught.value.field == "daily_units"
    with pytest.raises(StatsInputError) as caught:
        ramp_timing(100, 10, [RampStep(0.0), RampStep(1.0)])
    assert caught.value.field == "steps.0.share"
    with pytest.raises(StatsInputError):
        ramp_timing(100, 10, [])


def test_the_plan_counts_days_at_each_steps_traffic() -> None:
    spec = fraud_spec(
        rollout={"steps": STEPS}, analysis={**fraud_spec()["analysis"], "min_days": 0}
    )
    plan = spec_plan(parse_spec(spec))
    flat = spec_plan(parse_spec(fraud_spec(analysis=spec["analysis"])))
    assert plan["total_units"] == flat["total_units"] == 8454
    assert flat["days"] == 1  # 8,454 units at 20,000 a day
    assert [s["days"] for s in plan["rollout"]] == [10.0, 0.25, 1.0, 0.1102]
    assert [s["units"] for s in plan["rollout"]] == [2000, 250, 4000, 2204]
    assert plan["ramp_days"] == 11.3602
    assert plan["days"] == 12
    # the MDE curve reads the units the ramp brings in by each day
    week = next(p for p in plan["mde_curve"] if p["days"] == 7)
    week_flat = next(p for p in flat["mde_curve"] if p["days"] == 7)
    assert week["units_per_variant"] == pytest.approx(700)  # 7 days at 1 %: 1,400 units
    assert week_flat["units_per_variant"] == pytest.approx(70_000)
    assert week["mde"] > 5 * week_flat["mde"]


def test_a_plan_at_a_partial_spec_traffic_scales_the_steps() -> None:
    """`expected_daily_units` is at the spec's traffic: a step at half of it gets half."""
    steps = [{"traffic": 0.25, "min_duration": "1d"}, {"traffic": 0.5}]
    spec = fraud_spec(traffic=0.5, rollout={"steps": steps})
    plan = spec_plan(parse_spec(spec))
    assert plan["rollout"][0] == {"step": 1, "traffic": 0.25, "days": 1.0, "units": 10_000}
    # 8,454 units arrive within the first step, at 10,000 a day
    assert plan["ramp_days"] == 0.8454
    assert plan["rollout"][1]["days"] == 0.0
