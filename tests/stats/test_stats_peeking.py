"""A/A under continuous peeking: each design keeps its false-positive rate at most alpha
with the monitoring pattern it allows; naive peeking at a fixed test does not."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest

from service.stats import (
    Design,
    MeanStats,
    ProportionStats,
    analyze_stats,
    compare_batch,
    cs_multiplier,
)
from tests.stats._sim import (
    cumulative_binomial,
    cumulative_normal,
    proportion_batch,
)

ALPHA = 0.05
SIMS = 400
PLANNED = 10_000
# Allowed slack: 2.5 binomial standard deviations at alpha over SIMS experiments.
SLACK = 2.5 * math.sqrt(ALPHA * (1 - ALPHA) / SIMS)


def _proportion_looks(
    seed: int, look_units: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    n, sc = cumulative_binomial(rng, SIMS, look_units, 0.10)
    _, st = cumulative_binomial(rng, SIMS, look_units, 0.10)
    return n, sc, st


def _pairs(
    i: int, n: np.ndarray, sc: np.ndarray, st: np.ndarray
) -> list[tuple[ProportionStats, ProportionStats]]:
    """Experiment i's (baseline, treatment) statistics at every look."""
    return [
        (ProportionStats(int(n[i, k]), sc[i, k]), ProportionStats(int(n[i, k]), st[i, k]))
        for k in range(n.shape[1])
    ]


def _significant_anywhere(
    design: Design, n: np.ndarray, sc: np.ndarray, st: np.ndarray
) -> np.ndarray:
    hits = np.zeros(SIMS, dtype=bool)
    for i in range(SIMS):
        looks = _pairs(i, n, sc, st)
        if design == "group_sequential":
            res = analyze_stats(
                looks,
                direction="increase",
                design=design,
                alpha=ALPHA,
                planned_units_per_variant=PLANNED,
                with_p_value=False,
            )
            hits[i] = res.verdict.significant
        else:  # fixed: the verdict at every look, as someone refreshing the page sees it
            for look in looks:  # (a fixed design reads only the latest look)
                res = analyze_stats(
                    [look],
                    direction="increase",
                    design=design,
                    alpha=ALPHA,
                    planned_units_per_variant=PLANNED,
                )
                if res.status != "inconclusive":
                    hits[i] = True
                    break
    return hits


def test_naive_peeking_at_a_fixed_test_inflates_errors() -> None:
    looks = np.linspace(PLANNED / 20, PLANNED, 20).astype(int)
    n, sc, st = _proportion_looks(1, looks)
    comp = compare_batch(proportion_batch(n, sc), proportion_batch(n, st), ALPHA)
    naive = (comp.abs_p.reshape(SIMS, -1) < ALPHA).any(axis=1).mean()
    assert naive > 0.12  # the harness can see a broken design


def test_fixed_design_verdicts_only_at_the_horizon() -> None:
    looks = np.linspace(PLANNED / 10, PLANNED, 10).astype(int)
    n, sc, st = _proportion_looks(2, looks)
    fpr = _significant_anywhere("fixed", n, sc, st).mean()
    assert fpr <= ALPHA + SLACK


@pytest.mark.parametrize(
    "fractions",
    [
        np.linspace(0.05, 1.0, 20),
        np.array([0.07, 0.2, 0.22, 0.5, 0.61, 0.9, 1.0]),
    ],
    ids=["20-equal-looks", "7-irregular-looks"],
)
def test_group_sequential_peeking_at_every_look(fractions: npt.NDArray[np.float64]) -> None:
    looks = (fractions * PLANNED).astype(int)
    n, sc, st = _proportion_looks(3, looks)
    fpr = _significant_anywhere("group_sequential", n, sc, st).mean()
    assert fpr <= ALPHA + SLACK


def _status_ever_significant(
    design: Design, n: np.ndarray, sc: np.ndarray, st: np.ndarray
) -> np.ndarray:
    """Whether the status read after any look (all looks so far sent) was ever decisive."""
    hits = np.zeros(SIMS, dtype=bool)
    for i in range(SIMS):
        looks = _pairs(i, n, sc, st)
        for k in range(1, len(looks) + 1):
            res = analyze_stats(
                looks[:k],
                direction="increase",
                design=design,
                alpha=ALPHA,
                planned_units_per_variant=PLANNED,
                with_p_value=False,
            )
            if res.status != "inconclusive":
                hits[i] = True
                break
    return hits


@pytest.mark.parametrize("design", ["fixed", "group_sequential"])
def test_looks_past_the_plan_buy_no_second_chance(design: Design) -> None:
    # 10 looks up to the plan, 10 more up to twice it, the status read after each. The
    # verdict at the horizon is final: re-testing later looks (as the engine used to)
    # gives ~10 %.
    looks = np.linspace(PLANNED / 10, 2 * PLANNED, 20).astype(int)
    n, sc, st = _proportion_looks(11, looks)
    assert _status_ever_significant(design, n, sc, st).mean() <= ALPHA + SLACK


def test_group_sequential_means_with_welch() -> None:
    rng = np.random.default_rng(5)
    looks = np.linspace(PLANNED / 10, PLANNED, 10).astype(int)
    n, s_c, q_c = cumulative_normal(rng, SIMS, looks, 50.0, 20.0)
    _, s_t, q_t = cumulative_normal(rng, SIMS, looks, 50.0, 20.0)
    hits = 0
    for i in range(SIMS):
        pairs = [
            (
                MeanStats(int(n[i, k]), s_c[i, k], q_c[i, k]),
                MeanStats(int(n[i, k]), s_t[i, k], q_t[i, k]),
            )
            for k in range(len(looks))
        ]
        res = analyze_stats(
            pairs,
            direction="decrease",
            design="group_sequential",
            alpha=ALPHA,
            planned_units_per_variant=PLANNED,
            with_p_value=False,
        )
        hits += res.verdict.significant
    assert hits / SIMS <= ALPHA + SLACK


def test_always_valid_under_continuous_monitoring() -> None:
    # 100 looks, one every 1% of the plan, and on to twice the planned size.
    looks = np.linspace(PLANNED / 50, 2 * PLANNED, 100).astype(int)
    n, sc, st = _proportion_looks(6, looks)
    comp = compare_batch(proportion_batch(n, sc), proportion_batch(n, st), ALPHA)
    t = (n / PLANNED).ravel()
    crossed = np.abs(comp.z) >= cs_multiplier(ALPHA, t)
    fpr = crossed.reshape(SIMS, -1).any(axis=1).mean()
    assert fpr <= ALPHA + SLACK
    # The engine's verdict is this same rule.
    for i in range(5):
        k = 40
        res = analyze_stats(
            [(ProportionStats(int(n[i, k]), sc[i, k]), ProportionStats(int(n[i, k]), st[i, k]))],
            direction="increase",
            design="always_valid",
            alpha=ALPHA,
            planned_units_per_variant=PLANNED,
        )
        assert res.verdict.significant == bool(crossed.reshape(SIMS, -1)[i, k])
