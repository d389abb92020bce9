"""Lan-DeMets boundaries by recursive integration, checked against published values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from service.stats import (
    Spending,
    crossing_probabilities,
    design_power,
    group_sequential_test,
    lan_demets_boundaries,
    repeated_p_value,
)

FIVE = [0.2, 0.4, 0.6, 0.8, 1.0]


def test_obrien_fleming_type_five_looks_known_values() -> None:
    # Lan & DeMets O'Brien-Fleming-type spending, 5 equal looks, two-sided 0.05
    # (Jennison & Turnbull 2000, Table 7.6; gsDesign sfLDOF).
    bounds = lan_demets_boundaries(FIVE, 0.05)
    assert bounds == pytest.approx([4.877, 3.357, 2.680, 2.290, 2.031], abs=1.5e-3)


def test_pocock_type_five_looks_known_values() -> None:
    bounds = lan_demets_boundaries(FIVE, 0.05, Spending("pocock"))
    assert bounds == pytest.approx([2.438, 2.427, 2.410, 2.397, 2.386], abs=1.5e-3)


@pytest.mark.parametrize(
    ("fractions", "spending", "alpha"),
    [
        (FIVE, Spending(), 0.05),
        ([0.1, 0.13, 0.5, 0.52, 0.9, 1.0], Spending(), 0.05),
        ([0.3, 0.7, 1.0], Spending("power", rho=2.0), 0.05),
        ([i / 20 for i in range(1, 21)], Spending(), 0.05),
        # Looks a hair apart: crossing falls off a cliff just above the last boundary.
        ([0.3, 0.30001, 0.30002, 0.6], Spending(), 0.2),
        ([0.5, 0.5000001, 0.9, 1.0], Spending("pocock"), 0.01),
    ],
)
def test_every_look_spends_exactly_its_share(
    fractions: list[float], spending: Spending, alpha: float
) -> None:
    bounds = lan_demets_boundaries(fractions, alpha, spending)
    upper, lower = crossing_probabilities(fractions, bounds)
    spent = np.array(upper) + np.array(lower)
    planned = np.diff([0.0, *(spending.cumulative(t, alpha) for t in fractions)])
    for got, want, c in zip(spent, planned, bounds, strict=True):
        if c < 8.5:  # the cap only bites where spending is below 1e-16
            assert got == pytest.approx(want, rel=1e-6, abs=1e-15)
    assert spent.sum() == pytest.approx(spending.cumulative(fractions[-1], alpha), abs=1e-9)


def test_single_look_is_the_fixed_test() -> None:
    assert lan_demets_boundaries([1.0], 0.05) == pytest.approx([1.959964], abs=1e-6)
    assert repeated_p_value([2.5], [1.0]) == pytest.approx(2 * sps.norm.sf(2.5), rel=2e-3)


def test_final_look_spends_what_is_left_even_early() -> None:
    early = lan_demets_boundaries([0.3, 0.6], 0.05, final=True)
    upper, lower = crossing_probabilities([0.3, 0.6], early)
    assert sum(upper) + sum(lower) == pytest.approx(0.05, abs=1e-6)
    assert early[1] < lan_demets_boundaries([0.3, 0.6], 0.05)[1]


def test_boundaries_depend_only_on_earlier_looks() -> None:
    # The Lan-DeMets property that makes unplanned, irregular looks possible.
    short = lan_demets_boundaries([0.25, 0.5], 0.05)
    long = lan_demets_boundaries([0.25, 0.5, 0.6, 0.95], 0.05)
    assert long[:2] == pytest.approx(short, abs=1e-12)


def test_crossing_probabilities_match_brownian_simulation() -> None:
    rng = np.random.default_rng(4)
    fractions = np.array([0.15, 0.4, 0.45, 0.8, 1.0])
    bounds = lan_demets_boundaries(fractions.tolist(), 0.05)
    drift = 2.5
    steps = np.diff(np.concatenate([[0.0], fractions]))
    score = np.cumsum(rng.normal(drift * steps, np.sqrt(steps), (40_000, 5)), axis=1)
    z = score / np.sqrt(fractions)
    crossed = (np.abs(z) >= bounds).any(axis=1)
    upper, lower = crossing_probabilities(fractions.tolist(), bounds, drift)
    assert crossed.mean() == pytest.approx(sum(upper) + sum(lower), abs=0.008)


def test_power_with_twenty_peeks_is_close_to_the_fixed_design() -> None:
    # Bernoulli p=0.10, +6% relative, 20k units per arm at the end, 20 equal looks.
    p0, p1, n = 0.10, 0.106, 20_000
    drift = (p1 - p0) / math.sqrt((p0 * (1 - p0) + p1 * (1 - p1)) / n)
    fixed = design_power("fixed", drift, 0.05)
    sequential = design_power("group_sequential", drift, 0.05, looks=20)
    assert fixed == pytest.approx(0.506, abs=0.005)
    assert 0.9 * fixed <= sequential < fixed
    assert sequential == pytest.approx(0.485, abs=0.01)


def test_group_sequential_test_verdicts_and_p_values() -> None:
    fractions = FIVE
    bounds = lan_demets_boundaries(fractions, 0.05)
    quiet = group_sequential_test([0.5, 1.0, 1.5, 1.8, 1.9], fractions)
    assert not quiet.crossed and quiet.p_value > 0.05
    assert quiet.boundary == pytest.approx(bounds[-1])
    early = group_sequential_test([1.0, 3.5, 2.0], fractions[:3])
    assert early.first_crossing == 2 and early.crossed
    assert early.p_value <= 0.05
    # Repeated p-value: the alpha at which the boundary would just be crossed.
    p = early.p_value
    at_p = lan_demets_boundaries(fractions[:3], p)
    assert max(abs(z) - c for z, c in zip([1.0, 3.5, 2.0], at_p, strict=True)) == pytest.approx(
        0.0, abs=5e-3
    )


def test_degenerate_and_repeated_looks() -> None:
    res = group_sequential_test([math.nan, 1.0, 1.5, 1.5, 2.5], [0.1, 0.5, 0.5, 1.0, 1.0])
    assert res.looks[0].crossed is False and math.isnan(res.looks[0].boundary)
    # A look with no new information is tested against the earlier look's boundary.
    assert res.looks[2].boundary == res.looks[1].boundary
    # A second look at the planned size comes after the horizon: not tested again
    # (the old code tested it against the final boundary and called this crossed).
    assert res.horizon == 4 and res.looks[4].past_plan and not res.crossed


def test_looks_past_the_plan_are_shown_not_tested() -> None:
    # The horizon (information 1) spends all the alpha: a later look, however large its
    # z, is kept, marked past the plan, and changes neither verdict nor p-value.
    at_plan = group_sequential_test([1.0, 1.5], [0.5, 1.0])
    res = group_sequential_test([1.0, 1.5, 3.5, 4.0], [0.5, 1.0, 1.3, 1.5])
    assert res.horizon == 2 and res.decided_at == 2
    assert not res.crossed and res.p_value == at_plan.p_value
    assert [look.past_plan for look in res.looks] == [False, False, True, True]
    assert all(math.isnan(look.boundary) and not look.crossed for look in res.looks[2:])
    assert res.looks[3].information == 1.5 and res.boundary == at_plan.boundary
    # A crossing before the horizon decides there.
    early = group_sequential_test([3.0, 1.0, 0.5], [0.5, 1.0, 1.2])
    assert early.first_crossing == 1 and early.decided_at == 1 and early.horizon == 2
    # Declared final before the plan: that look is the horizon.
    final = group_sequential_test([1.0, 1.9, 2.5], [0.4, 0.8, 0.9], final=True)
    assert final.horizon == 3 and final.crossed
