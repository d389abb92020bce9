"""Large seeded validation of the stats engine: false-positive rate and power per design.

    .venv/bin/python scripts/validate_stats.py [--sims 2000] [--seed 20240601]

Prints one table. Every number is a simulation of cumulative sufficient statistics
(no per-unit loops); the group-sequential rows run the engine's own `analyze_stats`
per experiment, the other rows apply the same verdict rule vectorised over all
experiments and looks.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from service.stats import (
    Design,
    ProportionStats,
    Spending,
    StatsBatch,
    analyze_stats,
    compare_batch,
    cs_multiplier,
    design_power,
    guardrail_alpha,
    guardrail_arrays,
    plan_experiment,
    sequential_srm_p,
)

ALPHA = 0.05


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
    add("fixed", "once, at the planned size", pv[:, -1] < ALPHA)
    add("fixed (naive)", "20 peeks at p < 0.05", (pv < ALPHA).any(axis=1), expect_ok=False)
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
    return rows


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
    for design in ("fixed", "group_sequential", "always_valid"):
        d: Design = design  # type: ignore[assignment]
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


def guardrail_rows(rng: np.random.Generator, sims: int) -> list[Row]:
    segments, looks, units = 10, 20, 20_000
    family = 3 * segments
    steps = np.linspace(units / looks, units, looks).astype(int)
    alarmed = np.zeros(sims, dtype=bool)
    for base, harmful_up in ((0.20, False), (0.05, True), (0.50, True)):
        for _ in range(segments):
            sc, st = _cumulative(rng, sims, steps, base), _cumulative(rng, sims, steps, base)
            arrays = guardrail_arrays(
                _batch(steps, sc),
                _batch(steps, st),
                harmful_up=harmful_up,
                margin=0.02,
                alpha_each=guardrail_alpha(ALPHA, family),
                planned_units_per_variant=units,
            )
            alarmed |= (arrays.status.reshape(sc.shape) >= 2).any(axis=1)
    rate = float(alarmed.mean())
    return [
        Row(
            "guardrail false alarms",
            "always_valid",
            "10 segments x 3 guardrails x 20 looks",
            sims,
            rate,
            "<= 0.05 family-wise",
            rate <= ALPHA,
        )
    ]


def srm_rows(rng: np.random.Generator, sims: int) -> list[Row]:
    checks, block = 100, 200
    treated = rng.binomial(block, 0.5, size=(sims, checks)).cumsum(axis=1)
    total = block * np.arange(1, checks + 1)
    flagged = np.zeros(sims, dtype=bool)
    for i in range(sims):
        for k in range(checks):
            if sequential_srm_p([int(total[k] - treated[i, k]), int(treated[i, k])], [1, 1]) < 0.05:
                flagged[i] = True
                break
    rate = float(flagged.mean())
    return [
        Row(
            "SRM false alarms",
            "sequential SRM",
            "100 checks, flagged at 0.05",
            sims,
            rate,
            "<= 0.05",
            rate <= 0.05,
        )
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sims", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=20240601)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    rows: list[Row] = []
    parts: list[Callable[[np.random.Generator, int], list[Row]]] = [
        false_positive_rows,
        power_rows,
        guardrail_rows,
        srm_rows,
    ]
    for part in parts:
        rows.extend(part(rng, args.sims))
    header = f"{'check':<24} {'design':<18} {'monitoring':<40} {'sims':>5} {'rate':>7}  target"
    print(header)
    print("-" * len(header))
    for r in rows:
        mark = "ok " if r.passed else "FAIL"
        print(
            f"{r.check:<24} {r.design:<18} {r.monitoring:<40} {r.sims:>5} {r.rate:>7.4f}  "
            f"{r.target}  [{mark}]"
        )
    print(
        f"\n{len(rows)} checks, {sum(not r.passed for r in rows)} failed, "
        f"{time.perf_counter() - started:.1f} s"
    )
    return 0 if all(r.passed for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
