"""Labelled prediction records whose every error has a known cause (seeded).

A binary scored model on ``d`` logged features (``x0`` ... ``x{d-3}`` standard normal,
``x{d-2}`` binary with 30 % ones, ``x{d-1}`` a rare binary, 1.5 % ones) and two
attributes (``channel``, ``region``). The production model is logistic in six of the
features; the truth adds what is planted. Each lever is planted in its own way:

=====================  ============================================================
cause                  how it is planted (share of records)
=====================  ============================================================
serving                1.5 % not served, 1 % timeouts answered with a fallback score
                       0.3, 1 % served from corrupted inputs (``offline_prediction``
                       holds the model re-scored from the logged features)
data                   2 % with a model feature logged as null (the model imputed 0),
                       0.5 % with the binary feature logged as 7 (and scored so);
                       label noise: 0.5 % entities logged 4 times, one copy's label
                       flipped
distribution_shift     5 % of records far outside the reference (``x2`` near 4,
                       ``x3`` near -3.5) where the relation is reversed
threshold              ``channel=partner``: the served score is shifted 2.5 logits
                       down (the ranking is right, the cut is wrong)
capacity               two boxes in (``x6``, ``x7``) and (``x8``, ``x9``) move the
                       logit by -/+ 7: an interaction the logistic model cannot fit
feature_gap            in ``region=east`` a hidden variable (not logged) moves the
                       logit by -/+ 6 for 15 % of records
noise                  the label is a Bernoulli draw from the true probability
=====================  ============================================================

The cause of an error is the first of these, in this order, that explains it: a
planted serving, data or shift record; a ``partner`` record that the calibrated model
gets right (threshold); a record the model with the interaction gets right (capacity);
one the model that also sees the hidden variable gets right (feature_gap); otherwise
irreducible noise, which the taxonomy should call ``feature_gap`` too (the information
is not in the features).

    .venv/bin/python scripts/planted_errors.py [--records 20000] [--seed 7] [--no shift]

prints the confusion table of the analysis against the planted causes (the README's).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

if __name__ == "__main__":  # run as a file: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

CAUSES = (
    "serving",
    "data",
    "distribution_shift",
    "threshold",
    "capacity",
    "feature_gap",
    "noise",
)
PLANTABLE = ("serving", "data", "distribution_shift", "threshold", "capacity", "feature_gap")
EXPECTED = {cause: ("feature_gap" if cause == "noise" else cause) for cause in CAUSES}
"""The lever the taxonomy should give each planted cause."""

T0 = 1_700_000_000.0
_BETA = 1.3 * np.array([1.6, -1.2, 1.0, 0.8, -0.7, 0.6])
_BINARY_BETA = 1.0
_INTERCEPT = -0.4


@dataclass(frozen=True)
class Planted:
    records: list[dict[str, Any]]
    columns: tuple[str, ...]
    reference: np.ndarray[Any, Any]
    reference_labels: np.ndarray[Any, Any]
    cause: dict[str, str]
    """record_id -> planted cause, for every labelled error."""


def _sigmoid(x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    return np.asarray(1.0 / (1.0 + np.exp(-x)))


def _features(rng: np.random.Generator, n: int, d: int) -> np.ndarray[Any, Any]:
    x = rng.normal(size=(n, d))
    x[:, d - 2] = (rng.random(n) < 0.3).astype(float)
    x[:, d - 1] = (rng.random(n) < 0.015).astype(float)
    return x


def _model_logit(x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    d = x.shape[1]
    return np.asarray(x[:, :6] @ _BETA + _BINARY_BETA * x[:, d - 2] + _INTERCEPT)


def _interaction(x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    box_down = (x[:, 6] > 0.6) & (x[:, 7] > 0.6)
    box_up = (x[:, 8] < -0.6) & (x[:, 9] < -0.6)
    return np.asarray(-7.0 * box_down + 7.0 * box_up)


def generate(
    n: int = 20_000,
    *,
    d: int = 20,
    seed: int = 7,
    plant: tuple[str, ...] = PLANTABLE,
    reference_rows: int = 20_000,
) -> Planted:
    """``n`` records with the causes in ``plant`` (noise always), and a reference sample."""
    if d < 12:
        raise ValueError("needs at least 12 features")
    rng = np.random.default_rng(seed)
    columns = tuple(f"x{j}" for j in range(d))
    on = set(plant)

    ref = _features(rng, reference_rows, d)
    ref_truth = _model_logit(ref) + (_interaction(ref) if "capacity" in on else 0.0)
    ref_labels = (rng.random(reference_rows) < _sigmoid(ref_truth)).astype(float)

    x = _features(rng, n, d)
    channel = rng.choice(["web", "app", "store", "partner"], n)
    region = rng.choice(["north", "south", "east", "west"], n)
    u = rng.random(n)
    shifted = (u < 0.05) if "distribution_shift" in on else np.zeros(n, dtype=bool)
    x[shifted, 2] = rng.normal(4.0, 0.5, int(shifted.sum()))
    x[shifted, 3] = rng.normal(-3.5, 0.5, int(shifted.sum()))

    f = _model_logit(x)
    cap = _interaction(x) if "capacity" in on else np.zeros(n)
    hidden = np.zeros(n)
    if "feature_gap" in on:
        east = region == "east"
        draw = rng.random(n)
        hidden = np.where(east & (draw < 0.075), -6.0, np.where(east & (draw > 0.925), 6.0, 0.0))
    truth = f + cap + hidden
    truth = np.where(shifted, -truth, truth)
    label = (rng.random(n) < _sigmoid(truth)).astype(int)

    # What the model was given and said.
    logged = x.copy()
    served_logit = f.copy()
    v = rng.random(n)
    free = ~shifted
    no_pred = timeout = corrupt = null_feat = invalid = np.zeros(n, dtype=bool)
    if "serving" in on:
        no_pred = free & (v < 0.015)
        timeout = free & (v >= 0.015) & (v < 0.025)
        corrupt = free & (v >= 0.025) & (v < 0.035)
        served_logit = np.where(corrupt, f + rng.normal(0.0, 4.0, n), served_logit)
    if "data" in on:
        null_feat = free & (v >= 0.035) & (v < 0.055)
        invalid = free & (v >= 0.055) & (v < 0.06)
        which = rng.integers(0, 6, n)
        rows = np.flatnonzero(null_feat)
        logged[rows, which[rows]] = np.nan
        imputed = x.copy()
        imputed[rows, which[rows]] = 0.0
        logged[invalid, d - 2] = 7.0
        imputed[invalid, d - 2] = 7.0
        served_logit = np.where(null_feat | invalid, _model_logit(imputed), served_logit)
    partner = channel == "partner"
    if "threshold" in on:
        served_logit = np.where(partner, served_logit - 2.5, served_logit)
    score = _sigmoid(served_logit)
    if "serving" in on:
        score = np.where(timeout, 0.3, score)

    # Label noise: entities logged four times, one copy's label flipped.
    copies = np.zeros(n, dtype=bool)
    flipped = np.zeros(n, dtype=bool)
    if "data" in on:
        pool = np.flatnonzero(free & ~(no_pred | timeout | corrupt | null_feat | invalid))
        heads = rng.choice(pool, size=max(1, n // 800), replace=False)
        taken = set(int(h) for h in heads)
        rest = np.array([i for i in pool if int(i) not in taken])
        followers = rng.choice(rest, size=3 * heads.size, replace=False).reshape(-1, 3)
        for head, group in zip(heads, followers, strict=True):
            for i in group:
                for arr in (x, logged):
                    arr[i] = arr[head]
                channel[i], region[i] = channel[head], region[head]
                score[i], label[i] = score[head], label[head]
                f[i], cap[i], hidden[i] = f[head], cap[head], hidden[head]
                copies[i] = True
            copies[head] = True
            label[group[0]] = 1 - label[group[0]]
            flipped[group[0]] = True

    records: list[dict[str, Any]] = []
    cause: dict[str, str] = {}
    pred_one = score >= 0.5
    for i in range(n):
        rid = f"r{i}"
        rec: dict[str, Any] = {
            "record_id": rid,
            "timestamp": T0 + i * (14 * 86_400.0 / n),
            "label": int(label[i]),
            "attributes": {"channel": str(channel[i]), "region": str(region[i])},
            "features": {
                c: (None if np.isnan(logged[i, j]) else float(logged[i, j]))
                for j, c in enumerate(columns)
            },
        }
        if not no_pred[i]:
            rec["prediction"] = float(score[i])
        if timeout[i]:
            rec["flags"] = ["timeout"]
        if corrupt[i]:
            rec["offline_prediction"] = float(
                _sigmoid(f[i] - (2.5 if partner[i] and "threshold" in on else 0.0))
            )
        records.append(rec)
        wrong = no_pred[i] or bool(pred_one[i]) != bool(label[i])
        if not wrong:
            continue
        y = bool(label[i])
        if no_pred[i] or timeout[i] or corrupt[i]:
            c = "serving"
        elif null_feat[i] or invalid[i] or flipped[i]:
            c = "data"
        elif shifted[i]:
            c = "distribution_shift"
        elif "threshold" in on and partner[i] and (f[i] >= 0) == y:
            c = "threshold"
        elif (f[i] + cap[i] >= 0) == y and cap[i] != 0:
            c = "capacity"
        elif (f[i] + cap[i] + hidden[i] >= 0) == y and hidden[i] != 0:
            c = "feature_gap"
        else:
            c = "noise"
        cause[rid] = c
    return Planted(records, columns, ref, ref_labels, cause)


def confusion(planted: Planted, levers: dict[str, str]) -> dict[str, dict[str, int]]:
    """cause -> lever -> errors, over the planted errors (``levers``: record_id -> lever)."""
    table: dict[str, dict[str, int]] = {c: {} for c in CAUSES}
    for rid, c in planted.cause.items():
        lever = levers.get(rid, "(none)")
        table[c][lever] = table[c].get(lever, 0) + 1
    return table


def scores(planted: Planted, levers: dict[str, str]) -> dict[str, tuple[float, float, int, int]]:
    """lever -> (precision, recall, planted errors, assigned errors); noise counts as gap."""
    out: dict[str, tuple[float, float, int, int]] = {}
    for lever in sorted(set(EXPECTED.values())):
        truth = {r for r, c in planted.cause.items() if EXPECTED[c] == lever}
        given = {r for r, lv in levers.items() if lv == lever}
        hit = len(truth & given)
        out[lever] = (
            hit / len(given) if given else float("nan"),
            hit / len(truth) if truth else float("nan"),
            len(truth),
            len(given),
        )
    return out


def run(planted: Planted) -> tuple[dict[str, Any], dict[str, str], float]:
    """The analysis of the planted records against their reference; (report, levers, s)."""
    from service.analysis import Reference, run_analysis

    reference = Reference(
        columns=planted.columns,
        rows=planted.reference,
        source="uploaded",
        labels=planted.reference_labels,
    )
    start = time.perf_counter()
    result = run_analysis(planted.records, reference=reference)
    seconds = time.perf_counter() - start
    levers = {row["record_id"]: row["lever"] for row in result.errors}
    return result.report, levers, seconds


def markdown(planted: Planted, levers: dict[str, str]) -> str:
    """The confusion table (planted cause x lever given) and per-lever precision/recall."""
    from service.analysis import LEVERS

    table = confusion(planted, levers)
    head = "| planted cause | " + " | ".join(LEVERS) + " |"
    lines = [head, "| --- " * (len(LEVERS) + 1) + "|"]
    for c in CAUSES:
        if not table[c]:
            continue
        cells = [
            f"**{table[c].get(lv, 0):,}**" if EXPECTED[c] == lv else f"{table[c].get(lv, 0):,}"
            for lv in LEVERS
        ]
        lines.append(f"| {c} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("| lever | planted errors | given | precision | recall |")
    lines.append("| --- | --- | --- | --- | --- |")
    for lever, (prec, rec, n_truth, n_given) in scores(planted, levers).items():
        p = "-" if np.isnan(prec) else f"{prec:.2f}"
        r = "-" if np.isnan(rec) else f"{rec:.2f}"
        lines.append(f"| {lever} | {n_truth:,} | {n_given:,} | {p} | {r} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no", action="append", default=[], choices=PLANTABLE)
    args = parser.parse_args(argv)
    plant = tuple(c for c in PLANTABLE if c not in args.no)
    planted = generate(args.records, d=args.features, seed=args.seed, plant=plant)
    _, levers, seconds = run(planted)
    errors = len(planted.cause)
    print(
        f"{args.records:,} records x {args.features} features, seed {args.seed}, planted: "
        f"{', '.join(plant) or 'noise only'}; {errors:,} errors; analysis {seconds:.1f} s\n"
    )
    print(markdown(planted, levers))


if __name__ == "__main__":
    main()
