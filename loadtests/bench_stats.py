"""Stats engine cost: one results page of an experiment, against gbstats on the same cells.

The experiment: baseline and candidate x 50 segment values x 10 metrics (4 means,
4 proportions, 2 ratios) = 500 comparisons of 1,000 arm statistics. "Analyse" means
what the results page needs for every cell: absolute and relative effects with
fixed-horizon CIs and p-values, always-valid CIs and p-values, a guardrail status, Holm
across all cells and an SRM check per segment.

gbstats 0.8.0 (GrowthBook's engine, which pins numpy<2 and pandas<2) runs in its own
virtualenv, ``loadtests/.venv-gbstats`` (created on first use), in a subprocess, on
the same cells: per cell a frequentist two-sided t-test (absolute and relative) and
a sequential two-sided t-test, i.e. the same work. Both sides start from plain numbers
(building their statistics objects is timed). Where the methods coincide, Welch's
t-test on mean metrics, the numbers are compared (for the relative effect, the
delta-method standard error: our interval is Fieller's, gbstats' the delta method's).

Times are process CPU time per analysis (``time.process_time``; other processes on a
shared machine disturb it far less than wall time), best of several rounds with the
median beside it.

    .venv/bin/python -m loadtests.bench_stats [--rounds 15] [--no-gbstats]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy import special

from service.stats import (
    MeanStats,
    ProportionStats,
    RatioStats,
    Stats,
    StatsBatch,
    adjust_p_values,
    always_valid_p,
    compare,
    compare_batch,
    cs_multiplier,
    guardrail_alpha,
    guardrail_multiplier,
    guardrail_status_codes,
    srm_check,
)

SEGMENTS = 50
KINDS = ["mean"] * 4 + ["proportion"] * 4 + ["ratio"] * 2
PLANNED = 20_000
ALPHA = 0.05
TARGET_MS = 50.0
TARGET_RATIO = 10.0
VENV = Path(__file__).resolve().parent / ".venv-gbstats"
GBSTATS = "gbstats==0.8.0"


def make_cells(seed: int = 7) -> list[dict[str, Any]]:
    """Seeded sufficient statistics for every metric x segment, both arms."""
    rng = np.random.default_rng(seed)
    cells: list[dict[str, Any]] = []
    for m, kind in enumerate(KINDS):
        for s in range(SEGMENTS):
            cell: dict[str, Any] = {"metric": m, "segment": s, "kind": kind}
            for arm, lift in (("control", 0.0), ("treatment", rng.normal(0.0, 0.02))):
                n = int(rng.integers(2_000, 20_000))
                if kind == "proportion":
                    p = rng.uniform(0.05, 0.3) if arm == "control" else cell["p0"] * (1 + lift)
                    cell.setdefault("p0", p)
                    cell[arm] = {"n": n, "sum": float(rng.binomial(n, min(p, 1.0)))}
                    continue
                mean = (40.0 if kind == "mean" else 1.0) * (1 + lift)
                sd = 15.0 if kind == "mean" else 0.8
                total = n * mean + rng.normal(0, sd * np.sqrt(n))
                sum_sq = (n - 1) * sd**2 + total**2 / n
                stats: dict[str, float] = {"n": n, "sum": total, "sum_sq": sum_sq}
                if kind == "ratio":
                    den_mean, den_sd, corr = 3.0, 1.5, 0.6
                    den = n * den_mean + rng.normal(0, den_sd * np.sqrt(n))
                    stats["den_sum"] = den
                    stats["den_sum_sq"] = (n - 1) * den_sd**2 + den**2 / n
                    stats["cross_sum"] = (n - 1) * corr * sd * den_sd + total * den / n
                cell[arm] = stats
            cells.append(cell)
    return cells


def _stats(kind: str, a: dict[str, float]) -> Stats:
    if kind == "proportion":
        return ProportionStats(int(a["n"]), a["sum"])
    if kind == "mean":
        return MeanStats(int(a["n"]), a["sum"], a["sum_sq"])
    return RatioStats(
        int(a["n"]), a["sum"], a["sum_sq"], a["den_sum"], a["den_sum_sq"], a["cross_sum"]
    )


def analyse_batch(cells: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """The engine's vectorised path over every cell of the page."""
    out: dict[str, list[np.ndarray]] = {}
    for kind in ("mean", "proportion", "ratio"):
        group = [c for c in cells if c["kind"] == kind]

        def column(arm: str, key: str, group: list[dict[str, Any]] = group) -> list[float]:
            return [c[arm].get(key, 0.0) for c in group]

        def batch(arm: str, kind: Any = kind) -> StatsBatch:
            sum_sq = None if kind == "proportion" else column(arm, "sum_sq")
            other = kind == "ratio"
            return StatsBatch.from_columns(
                kind,
                column(arm, "n"),
                column(arm, "sum"),
                sum_sq,
                column(arm, "den_sum") if other else None,
                column(arm, "den_sum_sq") if other else None,
                column(arm, "cross_sum") if other else None,
            )

        comp = compare_batch(batch("control"), batch("treatment"), ALPHA)
        t = 2.0 / (1.0 / comp.control_n + 1.0 / comp.treatment_n) / PLANNED
        mult = cs_multiplier(ALPHA, t)
        av_p = always_valid_p(comp.z, t, ALPHA)
        av_lo, av_hi = comp.relative_interval(mult)
        guard = guardrail_multiplier(guardrail_alpha(ALPHA, len(cells)), t)
        lo, hi = comp.rel_estimate - guard * comp.rel_se, comp.rel_estimate + guard * comp.rel_se
        status = guardrail_status_codes(
            lo, hi, np.zeros(len(comp), dtype=bool), np.full(len(comp), 0.02)
        )
        for key, value in (
            ("metric", np.array([c["metric"] for c in group])),
            ("segment", np.array([c["segment"] for c in group])),
            ("abs_estimate", comp.abs_estimate),
            ("abs_lower", comp.abs_lower),
            ("abs_upper", comp.abs_upper),
            ("abs_p", comp.abs_p),
            ("rel_estimate", comp.rel_estimate),
            ("rel_lower", comp.rel_lower),
            ("rel_upper", comp.rel_upper),
            ("rel_p", comp.rel_p),
            ("rel_se", comp.rel_se),
            ("df", comp.df),
            ("abs_se", comp.abs_se),
            ("av_p", av_p),
            ("av_lower", av_lo),
            ("av_upper", av_hi),
            ("guardrail", status),
        ):
            out.setdefault(key, []).append(value)
    result = {k: np.concatenate(v) for k, v in out.items()}
    result["holm"] = np.array(adjust_p_values(list(result["abs_p"]), "holm", ALPHA).p_values)
    for s in range(SEGMENTS):  # the split is the same for every metric: check it once
        cell = next(c for c in cells if c["segment"] == s)
        srm_check([cell["control"]["n"], cell["treatment"]["n"]], [1, 1])
    return result


def analyse_per_cell(cells: list[dict[str, Any]]) -> int:
    """The scalar API, one `compare` per cell (what a naive caller would write)."""
    done = 0
    for c in cells:
        res = compare(_stats(c["kind"], c["control"]), _stats(c["kind"], c["treatment"]), ALPHA)
        done += res.error is None
    return done


GBSTATS_RUNNER = r"""
import json, statistics, sys, time, warnings
warnings.filterwarnings("ignore")
from gbstats.frequentist.tests import (FrequentistConfig, SequentialConfig,
    SequentialTwoSidedTTest, TwoSidedTTest)
from gbstats.models.statistics import (ProportionStatistic, RatioStatistic,
    SampleMeanStatistic)

cells = json.load(open(sys.argv[1]))
rounds = int(sys.argv[2])
planned_total = 2 * int(sys.argv[3])

def stat(kind, a):
    n = int(a["n"])
    if kind == "proportion":
        return ProportionStatistic(n=n, sum=a["sum"])
    m = SampleMeanStatistic(n=n, sum=a["sum"], sum_squares=a["sum_sq"])
    if kind == "mean":
        return m
    d = SampleMeanStatistic(n=n, sum=a["den_sum"], sum_squares=a["den_sum_sq"])
    return RatioStatistic(n=n, m_statistic=m, d_statistic=d, m_d_sum_of_products=a["cross_sum"])

absolute = FrequentistConfig(difference_type="absolute")
relative = FrequentistConfig(difference_type="relative")
sequential = SequentialConfig(sequential_tuning_parameter=planned_total)

def analyse():
    out = []
    for c in cells:
        a, b = stat(c["kind"], c["control"]), stat(c["kind"], c["treatment"])
        ab = TwoSidedTTest(a, b, absolute).compute_result()
        rel = TwoSidedTTest(a, b, relative).compute_result()
        seq = SequentialTwoSidedTTest(a, b, sequential).compute_result()
        out.append((ab, rel, seq))
    return out

times = []
for _ in range(rounds):
    t0 = time.process_time()
    res = analyse()
    times.append(time.process_time() - t0)
print(json.dumps({
    "best_ms": 1000 * min(times), "median_ms": 1000 * statistics.median(times),
    "results": [{"abs_estimate": ab.expected, "abs_ci": ab.ci, "abs_p": ab.p_value,
                 "rel_estimate": rel.expected, "rel_ci": rel.ci, "rel_p": rel.p_value,
                 "seq_rel_ci": seq.ci} for ab, rel, seq in res],
}))
"""


def ensure_gbstats_venv() -> Path:
    """Create loadtests/.venv-gbstats with gbstats 0.8.0 on first use."""
    python = VENV / "bin" / "python"
    if not python.exists():
        print(f"creating {VENV} with {GBSTATS} (first run only)...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", GBSTATS], check=True)
    return python


def run_gbstats(cells: list[dict[str, Any]], rounds: int) -> dict[str, Any]:
    python = ensure_gbstats_venv()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "cells.json"
        data.write_text(json.dumps(cells))
        done = subprocess.run(
            [str(python), "-c", GBSTATS_RUNNER, str(data), str(rounds), str(PLANNED)],
            check=True,
            capture_output=True,
            text=True,
        )
    parsed: dict[str, Any] = json.loads(done.stdout)
    return parsed


def _timed(fn: Any, cells: list[dict[str, Any]], rounds: int) -> tuple[float, float]:
    fn(cells)  # warm caches and imports
    times = []
    for _ in range(rounds):
        started = time.process_time()
        fn(cells)
        times.append(time.process_time() - started)
    return 1000 * min(times), 1000 * statistics.median(times)


def _delta_se(ci: list[float], df: float) -> float:
    """The standard error behind a symmetric t interval."""
    return (ci[1] - ci[0]) / 2.0 / float(special.stdtrit(df, 1.0 - ALPHA / 2.0))


def compare_numbers(
    cells: list[dict[str, Any]], ours: dict[str, np.ndarray], theirs: list[dict[str, Any]]
) -> dict[str, float]:
    """Largest differences on Welch-t cells (means), where both run the same test."""
    index = {
        (int(m), int(s)): i
        for i, (m, s) in enumerate(zip(ours["metric"], ours["segment"], strict=True))
    }
    diffs: dict[str, float] = {}
    for c, g in zip(cells, theirs, strict=True):
        if c["kind"] != "mean":
            continue
        i = index[(c["metric"], c["segment"])]
        pairs = {
            "absolute estimate": (ours["abs_estimate"][i], g["abs_estimate"]),
            "absolute CI": (ours["abs_lower"][i], g["abs_ci"][0]),
            "absolute p-value": (ours["abs_p"][i], g["abs_p"]),
            "relative estimate": (ours["rel_estimate"][i], g["rel_estimate"]),
            "relative se": (ours["rel_se"][i], _delta_se(g["rel_ci"], float(ours["df"][i]))),
        }
        for name, (a, b) in pairs.items():
            diffs[name] = max(diffs.get(name, 0.0), abs(float(a) - float(b)))
    return diffs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="stats engine against gbstats")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--no-gbstats", action="store_true", help="time our engine only")
    args = parser.parse_args(argv)
    cells = make_cells()
    print(
        f"cells: {len(cells)} comparisons ({len(KINDS)} metrics x {SEGMENTS} segments, "
        f"baseline vs candidate), {args.rounds} rounds"
    )
    best, median = _timed(analyse_batch, cells, args.rounds)
    print(
        f"sharpen (vectorised page):   best {best:8.2f} ms   median {median:8.2f} ms   "
        f"target <= {TARGET_MS:.0f} ms: {'met' if best <= TARGET_MS else 'MISSED'}"
    )
    cell_best, cell_median = _timed(analyse_per_cell, cells, max(3, args.rounds // 3))
    print(f"sharpen (compare per cell):  best {cell_best:8.2f} ms   median {cell_median:8.2f} ms")
    if args.no_gbstats:
        return 0
    try:
        gb = run_gbstats(cells, max(3, args.rounds // 3))
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"gbstats unavailable ({exc}); our figures stand alone")
        return 0
    ratio = gb["best_ms"] / best
    print(
        f"gbstats {GBSTATS.split('==')[1]} (per cell):    best {gb['best_ms']:8.2f} ms   "
        f"median {gb['median_ms']:8.2f} ms"
    )
    print(
        f"ratio gbstats / sharpen: {ratio:.1f}x (target >= {TARGET_RATIO:.0f}x: "
        f"{'met' if ratio >= TARGET_RATIO else 'MISSED'}); per-cell API "
        f"{gb['best_ms'] / cell_best:.1f}x"
    )
    diffs = compare_numbers(cells, analyse_batch(cells), gb["results"])
    print("same method (Welch t, mean metrics), largest absolute difference:")
    for name, d in diffs.items():
        print(f"  {name:<18} {d:.2e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
