"""Large seeded validation of the stats engine: false-positive rate and power per design.

    .venv/bin/python scripts/validate_stats.py [--sims 2000] [--seed 20240601] [--only false]

Prints one table. Every number is a simulation of cumulative sufficient statistics
(per-unit draws only for the ratio-metric plan); the group-sequential and past-the-plan
rows run the engine's own `analyze_stats` per experiment, the other rows apply the
same verdict rule vectorised over all experiments and looks. References: the exact
power of `design_power`, chi-square at a single look (scipy), the pooled z-test
(statsmodels).
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import proportions_ztest

from service.results import primary_looks
from service.stats import (
    Design,
    ProportionStats,
    RatioStats,
    Spending,
    StatsBatch,
    analyze_stats,
    chi_square_p,
    compare_batch,
    cs_multiplier,
    design_power,
    guardrail_alpha,
    guardrail_arrays,
    guardrail_status_codes,
    plan_experiment,
    sequential_srm_p,
    srm_concentration,
)
from service.store.aggregates import Cell, ExperimentCells

ALPHA = 0.05
DAY_S = 86_400


@dataclass(frozen=True)
class Row:
    check: str
    design: str
    monitoring: str
    sims: int
    rate: float
    target: str
    passed: bool


def _cumulative(rng: np.random.Generator, sims: int, units: np.ndarray, p: float) -> np.ndarray:
    steps = np.diff(np.concatenate([[0], units]))
    return rng.binomial(np.broadcast_to(steps, (sims, len(units))), p).cumsum(axis=1).astype(float)


def _batch(n: np.ndarray, s: np.ndarray) -> StatsBatch:
    return StatsBatch.from_columns("proportion", np.broadcast_to(n, s.shape).ravel(), s.ravel())


def _z(n: np.ndarray, sc: np.ndarray, st: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    comp = compare_batch(_batch(n, sc), _batch(n, st), ALPHA)
    return comp.z.reshape(sc.shape), comp.abs_p.reshape(sc.shape)


def _engine_group_sequential(
    n: np.ndarray, sc: np.ndarray, st: np.ndarray, planned: int, spending: Spending | None = None
) -> np.ndarray:
    """'better' or 'worse' verdicts of the engine, experiment by experiment."""
    out = np.empty(sc.shape[0], dtype=object)
    for i in range(sc.shape[0]):
        looks = [
            (ProportionStats(int(n[k]), sc[i, k]), ProportionStats(int(n[k]), st[i, k]))
            for k in range(len(n))
        ]
        res = analyze_stats(
            looks,
            direction="increase",
            design="group_sequential",
            alpha=ALPHA,
            planned_units_per_variant=planned,
            spending=spending,
            with_p_value=False,
        )
        out[i] = res.status
    return out


def false_positive_rows(rng: np.random.Generator, sims: int) -> list[Row]:
    planned, p = 20_000, 0.10
    rows: list[Row] = []
    limit = ALPHA + 2.5 * math.sqrt(ALPHA * (1 - ALPHA) / sims)

    def add(design: str, monitoring: str, hits: np.ndarray, expect_ok: bool = True) -> None:
        rate = float(np.mean(hits))
        target = f"<= {ALPHA:.2f}" if expect_ok else "> 0.05 (broken on purpose)"
        rows.append(
            Row(
                "A/A FPR",
                design,
                monitoring,
                sims,
                rate,
                target,
                rate <= limit if expect_ok else rate > ALPHA,
            )
        )

    twenty = np.linspace(planned / 20, planned, 20).astype(int)
    sc, st = _cumulative(rng, sims, twenty, p), _cumulative(rng, sims, twenty, p)
    z, pv = _z(twenty, sc, st)
    add("fixed", "once, at the planned size", np.asarray(pv[:, -1] < ALPHA))
    add(
        "fixed (naive)",
        "20 peeks at p < 0.05",
        np.asarray((pv < ALPHA).any(axis=1)),
        expect_ok=False,
    )
    add(
        "group_sequential",
        "20 equal looks (OBF)",
        _engine_group_sequential(twenty, sc, st, planned) != "inconclusive",
    )
    add(
        "group_sequential",
        "20 equal looks (Pocock)",
        _engine_group_sequential(twenty, sc, st, planned, Spending("pocock")) != "inconclusive",
    )
    irregular = (np.array([0.03, 0.1, 0.12, 0.35, 0.36, 0.7, 0.95, 1.0]) * planned).astype(int)
    sc, st = _cumulative(rng, sims, irregular, p), _cumulative(rng, sims, irregular, p)
    add(
        "group_sequential",
        "8 irregular looks",
        _engine_group_sequential(irregular, sc, st, planned) != "inconclusive",
    )
    every = np.linspace(planned / 100, 2 * planned, 200).astype(int)
    sc, st = _cumulative(rng, sims, every, p), _cumulative(rng, sims, every, p)
    z, _ = _z(every, sc, st)
    crit = cs_multiplier(ALPHA, every / planned)
    add("always_valid", "200 looks, to 2x the plan", (np.abs(z) >= crit).any(axis=1))
    for look_every, label in ((300, "5m"), (3600, "1h")):
        add(
            "group_sequential",
            f"5 looks replayed from cells, every {label}",
            _replayed_looks(rng, sims, planned, p, look_every) != "inconclusive",
        )
    return rows


def _replayed_looks(
    rng: np.random.Generator, sims: int, planned: int, p: float, look_every: int
) -> np.ndarray:
    """A/A through the results' own look replay: 5-minute cells over ~3 days of diurnal
    traffic, 5 looks taken by ``primary_looks`` at the ``look_every`` cadence, then the
    engine at those looks (what ``GET /results`` does)."""
    width, start = 300, 1_750_000_000 // DAY_S * DAY_S
    windows = 3 * DAY_S // width
    hour_of_day = (np.arange(windows) * width % DAY_S) / 3600
    rate = 1.2 * planned / windows * (1 + 0.8 * np.sin((hour_of_day - 8) / 24 * 2 * np.pi))
    n = rng.poisson(np.broadcast_to(rate, (sims, 2, windows)))
    s = rng.binomial(n, p)
    out = np.empty(sims, dtype=object)
    for i in range(sims):
        cells = tuple(
            Cell(v, None, "m", start // width + w, int(n[i, a, w]), float(s[i, a, w]))
            for a, v in enumerate(("a", "b"))
            for w in range(windows)
            if n[i, a, w]
        )
        points = primary_looks(
            ExperimentCells("aa", ("m",), cells, cell_seconds=width),
            "m",
            "a",
            "b",
            planned,
            5,
            look_every,
            start + windows * width,
        )
        if not points:
            out[i] = "inconclusive"
            continue
        res = analyze_stats(
            [
                (
                    ProportionStats(q.baseline.n, q.baseline.sum),
                    ProportionStats(q.treatment.n, q.treatment.sum),
                )
                for q in points
            ],
            direction="increase",
            design="group_sequential",
            alpha=ALPHA,
            planned_units_per_variant=planned,
            with_p_value=False,
        )
        out[i] = res.status
    return out


def power_rows(rng: np.random.Generator, sims: int) -> list[Row]:
    rows: list[Row] = []
    # The brief's setup: Bernoulli 0.10, +6% relative, 20k units per arm, 20 peeks.
    p0, p1, planned = 0.10, 0.106, 20_000
    units = np.linspace(planned / 20, planned, 20).astype(int)
    sc, st = _cumulative(rng, sims, units, p0), _cumulative(rng, sims, units, p1)
    z, pv = _z(units, sc, st)
    fixed = float(np.mean((pv[:, -1] < ALPHA) & (z[:, -1] > 0)))
    seq = float(np.mean(_engine_group_sequential(units, sc, st, planned) == "better"))
    drift = (p1 - p0) / math.sqrt((p0 * (1 - p0) + p1 * (1 - p1)) / planned)
    exact_fixed = design_power("fixed", drift)
    exact_seq = design_power("group_sequential", drift, ALPHA, 20)
    rows.append(
        Row(
            "power, 20 peeks +6%",
            "fixed",
            f"exact {exact_fixed:.3f}",
            sims,
            fixed,
            "~0.51",
            abs(fixed - exact_fixed) < 0.03,
        )
    )
    rows.append(
        Row(
            "power, 20 peeks +6%",
            "group_sequential",
            f"exact {exact_seq:.3f}",
            sims,
            seq,
            f">= 0.9 x fixed = {0.9 * exact_fixed:.3f}",
            seq >= 0.9 * fixed,
        )
    )
    crit = cs_multiplier(ALPHA, units / planned)
    av = float(np.mean((z >= crit).any(axis=1)))
    rows.append(
        Row("power, 20 peeks +6%", "always_valid", "20 looks", sims, av, "(reference)", True)
    )

    # The plan's sample size delivers the requested 80% power.
    p0, mde, looks = 0.10, 0.10, 14
    designs: tuple[Design, ...] = ("fixed", "group_sequential", "always_valid")
    for design in designs:
        d: Design = design
        plan = plan_experiment(
            kind="proportion", baseline_mean=p0, mde=mde, design=d, looks=looks, power=0.8
        )
        n_plan = plan.units_per_variant
        units = np.linspace(n_plan / looks, n_plan, looks).astype(int)
        units[-1] = n_plan
        sc, st = _cumulative(rng, sims, units, p0), _cumulative(rng, sims, units, p0 * 1.1)
        if design == "group_sequential":
            hit = _engine_group_sequential(units, sc, st, n_plan) == "better"
        else:
            z, pv = _z(units, sc, st)
            if design == "fixed":
                hit = (pv[:, -1] < ALPHA) & (z[:, -1] > 0)
            else:
                hit = (z >= cs_multiplier(ALPHA, units / n_plan)).any(axis=1)
        rate = float(np.mean(hit))
        rows.append(
            Row(
                "plan delivers 80% power",
                design,
                f"{looks} looks, n={n_plan}/arm (x{plan.inflation:.3f})",
                sims,
                rate,
                "0.80 +/- 0.03",
                abs(rate - 0.8) <= 0.03,
            )
        )
    return rows


def horizon_rows(rng: np.random.Generator, sims: int) -> list[Row]:
    """A/A with looks continuing to twice the plan, the status read after every look."""
    planned, p = 20_000, 0.10
    looks = np.linspace(planned / 10, 2 * planned, 20).astype(int)  # 10 to the plan, 10 past
    sc, st = _cumulative(rng, sims, looks, p), _cumulative(rng, sims, looks, p)
    _, pv = _z(looks, sc, st)
    limit = ALPHA + 0.01
    retested = float((pv[:, 9:] < ALPHA).any(axis=1).mean())
    rows = [
        Row(
            "A/A past the plan",
            "re-tested (old)",
            "fixed test at each look from the plan on",
            sims,
            retested,
            "> 0.05 (what the engine did)",
            retested > ALPHA,
        )
    ]
    designs: tuple[Design, ...] = ("fixed", "group_sequential")
    for design in designs:
        ever = np.zeros(sims, dtype=bool)
        for i in range(sims):
            pairs = [
                (ProportionStats(int(n), sc[i, k]), ProportionStats(int(n), st[i, k]))
                for k, n in enumerate(looks)
            ]
            for k in range(1, len(pairs) + 1):
                res = analyze_stats(
                    pairs[:k],
                    direction="increase",
                    design=design,
                    alpha=ALPHA,
                    planned_units_per_variant=planned,
                    with_p_value=False,
                )
                if res.status != "inconclusive":
                    ever[i] = True
                    break
        rate = float(ever.mean())
        rows.append(
            Row(
                "A/A past the plan",
                design,
                "20 looks to 2x, status after each",
                sims,
                rate,
                f"<= {limit:.2f}",
                rate <= limit,
            )
        )
    return rows


SHARES = np.array([0.04, 0.06, 0.08, 0.10, 0.10, 0.10, 0.10, 0.12, 0.14, 0.16])
"""Ten segments' shares of the units; the planted regression goes to segment 3 (10 %)."""
GUARDS = ((0.10, False), (0.05, True), (0.50, True))
"""Three guardrails: a conversion rate that must not fall, two rates that must not rise."""
PLANNED_GUARD = 100_000


def _segment_units(drift: bool) -> npt.NDArray[np.int64]:
    """Units per arm of each segment at each of 20 looks up to the plan, (10, 20)."""
    looks = 20
    block = PLANNED_GUARD / looks
    if drift:  # shares swing by +/-50 % from one block to the next (weekday effects)
        phase = np.arange(len(SHARES))[:, None] + np.arange(looks)[None, :] * 2.1
        weights = SHARES[:, None] * (1 + 0.5 * np.sin(phase))
        weights = weights / weights.sum(axis=0)
    else:
        weights = np.repeat(SHARES[:, None], looks, axis=1)
    return np.asarray(np.round(weights * block).cumsum(axis=1), dtype=np.int64)


def _guardrail_world(
    rng: np.random.Generator,
    sims: int,
    planted: tuple[float, float] | None,
    drift: bool,
    old: bool = False,
) -> npt.NDArray[np.int8]:
    """Statuses (sims, 20 looks, 3 guardrails, 11 cells: overall then segments).

    `planted` = (rate, relative change) replaces the first guardrail with that rate and
    puts the change in segment 3. Each cell is tuned to its observed share of units;
    `old` applies the engine's former rule instead: a two-sided mixture interval at
    alpha / cells, every cell tuned to the whole experiment's plan.
    """
    units = _segment_units(drift)
    overall_units = units.sum(axis=0)
    family = len(GUARDS) * (1 + len(SHARES))
    out = np.empty((sims, units.shape[1], len(GUARDS), 1 + len(SHARES)), dtype=np.int8)
    for g, (base, harmful_up) in enumerate(GUARDS):
        rate = base if planted is None or g else planted[0]
        arms = []
        for arm in (0, 1):
            cols = []
            for j in range(len(SHARES)):
                change = planted[1] if planted and g == 0 and j == 3 and arm else 0.0
                cols.append(_cumulative(rng, sims, units[j], rate * (1 + change)))
            arms.append(cols)
        for j in range(1 + len(SHARES)):
            n = overall_units if j == 0 else units[j - 1]
            share = n / overall_units
            c = np.sum(arms[0], axis=0) if j == 0 else arms[0][j - 1]
            t = np.sum(arms[1], axis=0) if j == 0 else arms[1][j - 1]
            if old:
                comp = compare_batch(_batch(n, c), _batch(n, t), ALPHA)
                mult = cs_multiplier(ALPHA / family, np.broadcast_to(n / PLANNED_GUARD, c.shape))
                half = mult.ravel() * comp.rel_se
                status = guardrail_status_codes(
                    comp.rel_estimate - half,
                    comp.rel_estimate + half,
                    np.full(half.shape, harmful_up),
                    np.full(half.shape, 0.02),
                )
                out[:, :, g, j] = status.reshape(c.shape)
                continue
            arrays = guardrail_arrays(
                _batch(n, c),
                _batch(n, t),
                harmful_up=harmful_up,
                margin=0.02,
                alpha_each=guardrail_alpha(ALPHA, family),
                planned_units_per_variant=np.broadcast_to(share * PLANNED_GUARD, c.shape).ravel(),
            )
            out[:, :, g, j] = arrays.status.reshape(c.shape)
    return out


def guardrail_rows(rng: np.random.Generator, sims: int) -> list[Row]:
    rows: list[Row] = []
    for drift in (False, True):
        alarmed = (_guardrail_world(rng, sims, None, drift) >= 2).any(axis=(1, 2, 3))
        rate = float(alarmed.mean())
        rows.append(
            Row(
                "guardrail false alarms",
                "always_valid",
                f"A/A 10 segments x 3 x 20 looks{', drifting shares' if drift else ''}",
                sims,
                rate,
                "<= 0.05 family-wise",
                rate <= ALPHA,
            )
        )
    for rate, target in ((0.10, 0.80), (0.05, 0.60)):
        status = _guardrail_world(rng, sims, (rate, -0.20), False)
        breached = float((status[:, :, 0, 4] == 3).any(axis=1).mean())
        former = _guardrail_world(rng, sims, (rate, -0.20), False, old=True)
        old = float((former[:, :, 0, 4] == 3).any(axis=1).mean())
        # As for the A/A rows: the target, less 2.5 standard errors of the simulation.
        slack = 2.5 * math.sqrt(target * (1 - target) / sims)
        rows.append(
            Row(
                "segment guardrail power",
                "always_valid",
                f"p={rate:.2f} -20% in a 10% segment (old: {old:.3f})",
                sims,
                breached,
                f">= {target:.2f} (-{slack:.3f} sim. error)",
                breached >= target - slack,
            )
        )
        others = np.ones(status.shape[3], dtype=bool)
        others[[0, 4]] = False
        per_segment = (status[:, :, :, others] >= 2).any(axis=(1, 2)).mean(axis=0)
        rows.append(
            Row(
                "segment guardrail power",
                "always_valid",
                f"p={rate:.2f}: alarms in other segments (max)",
                sims,
                float(per_segment.max()),
                "<= 0.01 each",
                float(per_segment.max()) <= 0.01,
            )
        )
    return rows


def _first_flag(
    treated: npt.NDArray[np.int64], total: npt.NDArray[np.int64], concentration: float
) -> npt.NDArray[np.bool_]:
    flagged = np.zeros(treated.shape[0], dtype=bool)
    for i in range(treated.shape[0]):
        for k in range(treated.shape[1]):
            counts = [int(total[k] - treated[i, k]), int(treated[i, k])]
            if sequential_srm_p(counts, [1, 1], concentration) < 0.001:
                flagged[i] = True
                break
    return flagged


def srm_rows(rng: np.random.Generator, sims: int) -> list[Row]:
    planned, checks = 200_000, 200
    block = planned // checks
    total = block * np.arange(1, checks + 1)
    tuned = srm_concentration(planned)
    rows: list[Row] = []
    aa = rng.binomial(block, 0.5, size=(sims, checks)).cumsum(axis=1)
    rate = float(_first_flag(aa, total, tuned).mean())
    rows.append(
        Row(
            "SRM false alarms",
            "sequential SRM",
            "A/A, 200 checks to 200k, p < 0.001",
            sims,
            rate,
            "<= 0.001",
            rate <= 0.001,
        )
    )
    off = rng.binomial(block, 0.505, size=(sims, checks)).cumsum(axis=1)
    chi = float(np.mean([chi_square_p([planned - x, x], [1, 1]) < 0.001 for x in off[:, -1]]))
    default = float(_first_flag(off, total, 1000.0).mean())
    power = float(_first_flag(off, total, tuned).mean())
    rows.append(
        Row(
            "SRM power 50.5/49.5",
            "sequential SRM",
            f"by 200k, k={tuned:.0f} (k=1000: {default:.3f})",
            sims,
            power,
            f"> k=1000; chi2 once {chi:.3f}",
            power > default,
        )
    )
    return rows


def _pooled_p(
    sc: npt.NDArray[np.float64],
    nc: npt.NDArray[np.float64],
    st: npt.NDArray[np.float64],
    nt: npt.NDArray[np.float64],
) -> npt.NDArray[np.float64]:
    """statsmodels' pooled two-proportion z-test, the engine's former p-value."""
    with np.errstate(all="ignore"):  # both arms all 0 or all 1: NaN, never significant
        pairs = zip(sc, nc, st, nt, strict=True)
        return np.array([proportions_ztest([b, a], [m, n])[1] for a, n, b, m in pairs])


def agreement_rows(rng: np.random.Generator, sims: int) -> list[Row]:
    """Small two-proportion comparisons: does the verdict match the CIs?"""
    size = sims * 10
    nc = rng.integers(50, 1000, size).astype(float)
    nt = rng.integers(50, 1000, size).astype(float)
    p = rng.uniform(0.02, 0.3, size)
    lift = rng.normal(0.0, 0.3, size)
    sc = rng.binomial(nc.astype(np.int64), p).astype(float)
    st = rng.binomial(nt.astype(np.int64), np.clip(p * (1 + lift), 0, 1)).astype(float)
    comp = compare_batch(
        StatsBatch.from_columns("proportion", nc, sc),
        StatsBatch.from_columns("proportion", nt, st),
        ALPHA,
    )
    ok = comp.error == 0
    significant = comp.abs_p < ALPHA
    pooled = _pooled_p(sc, nc, st, nt)
    abs_excludes = (comp.abs_lower > 0) | (comp.abs_upper < 0)
    rel_excludes = (comp.rel_lower > 0) | (comp.rel_upper < 0)
    old = float(((pooled < ALPHA) != abs_excludes)[ok].mean())
    q = 1.959963984540054
    delta = (comp.rel_estimate - q * comp.rel_se > 0) | (comp.rel_estimate + q * comp.rel_se < 0)
    old_rel = float((significant != delta)[ok].mean())
    rows = [
        Row(
            "verdict vs CI disagree",
            "fixed proportions",
            f"50-1000/arm; pooled p (old): {old:.3f}",
            size,
            float((significant != abs_excludes)[ok].mean()),
            "0 (absolute CI)",
            bool((significant == abs_excludes)[ok].all()),
        ),
        Row(
            "verdict vs CI disagree",
            "fixed proportions",
            f"relative CI (Fieller); delta (old): {old_rel:.3f}",
            size,
            float((significant != rel_excludes)[ok].mean()),
            "0 (relative CI)",
            bool((significant == rel_excludes)[ok].all()),
        ),
    ]
    aa_t = rng.binomial(nt.astype(np.int64), p).astype(float)
    aa = compare_batch(
        StatsBatch.from_columns("proportion", nc, sc),
        StatsBatch.from_columns("proportion", nt, aa_t),
        ALPHA,
    )
    fpr = float((aa.abs_p < ALPHA)[aa.error == 0].mean())
    aa_pooled = _pooled_p(sc, nc, aa_t, nt)
    pooled_fpr = float((aa_pooled < ALPHA)[aa.error == 0].mean())
    rows.append(
        Row(
            "A/A FPR",
            "fixed proportions",
            f"Wald z, 50-1000/arm (pooled: {pooled_fpr:.4f})",
            size,
            fpr,
            "<= 0.06 (small samples)",
            fpr <= 0.06,
        )
    )
    return rows


def _ratio_arm(
    rng: np.random.Generator, sims: int, n: int, level: float, binomial: bool
) -> StatsBatch:
    """Sessions per unit 1 + Poisson(4); per session a click (binomial) or revenue."""
    cols = np.zeros((5, sims))
    for lo in range(0, sims, 200):
        den = rng.poisson(4, (min(200, sims - lo), n)) + 1.0
        if binomial:
            num = rng.binomial(den.astype(np.int64), level).astype(float)
        else:
            num = rng.gamma(2.0 * den, level)
        sums = (num.sum(1), (num**2).sum(1), den.sum(1), (den**2).sum(1), (num * den).sum(1))
        cols[:, lo : lo + num.shape[0]] = np.array(sums)
    return StatsBatch.from_columns("ratio", np.full(sims, n), *cols)


def ratio_plan_rows(rng: np.random.Generator, sims: int) -> list[Row]:
    """Per-unit draws at the plan's size; the old plan used the baseline's sd twice."""
    rows: list[Row] = []
    mde = 0.10
    for name, level, binomial in (("click-through", 0.10, True), ("revenue", 1.0, False)):
        history = _ratio_arm(rng, 1, 100_000, level, binomial)
        hist = RatioStats(
            100_000,
            float(history.sum[0]),
            float(history.sum_sq[0]),
            float(history.other_sum[0]),
            float(history.other_sum_sq[0]),
            float(history.cross_sum[0]),
        )
        plan = plan_experiment(kind="ratio", baseline_stats=hist, mde=mde, design="fixed")
        effect = mde * hist.mean / math.sqrt(hist.variance)
        old_n = math.ceil(NormalIndPower().solve_power(effect_size=effect, alpha=ALPHA, power=0.8))
        powers = []
        for n in (plan.units_per_variant, old_n):
            comp = compare_batch(
                _ratio_arm(rng, sims, n, level, binomial),
                _ratio_arm(rng, sims, n, level * (1 + mde), binomial),
                ALPHA,
            )
            powers.append(float(((comp.abs_p < ALPHA) & (comp.abs_estimate > 0)).mean()))
        rows.append(
            Row(
                "ratio plan, 80% power",
                "fixed",
                f"{name} +10%, n={plan.units_per_variant} (old {old_n}: {powers[1]:.3f})",
                sims,
                powers[0],
                ">= 0.80 - 0.03",
                powers[0] >= 0.77,
            )
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sims", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument(
        "--only", default="", help="run only the parts whose name starts so (e.g. 'false')"
    )
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    rows: list[Row] = []
    parts: list[Callable[[np.random.Generator, int], list[Row]]] = [
        false_positive_rows,
        power_rows,
        horizon_rows,
        guardrail_rows,
        srm_rows,
        agreement_rows,
        ratio_plan_rows,
    ]
    for part in parts:
        if not part.__name__.startswith(args.only):
            continue
        rows.extend(part(rng, args.sims))
    header = f"{'check':<24} {'design':<18} {'monitoring':<46} {'sims':>5} {'rate':>7}  target"
    print(header)
    print("-" * len(header))
    for r in rows:
        mark = "ok " if r.passed else "FAIL"
        print(
            f"{r.check:<24} {r.design:<18} {r.monitoring:<46} {r.sims:>5} {r.rate:>7.4f}  "
            f"{r.target}  [{mark}]"
        )
    print(
        f"\n{len(rows)} checks, {sum(not r.passed for r in rows)} failed, "
        f"{time.perf_counter() - started:.1f} s"
    )
    return 0 if all(r.passed for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
