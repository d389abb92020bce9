"""The lever report: per lever the errors, how many pulling it should fix, and why.

Expected errors fixed (``expected_fixed``), with the method named in each row:

* serving, data: the *excess* errors of the records with the problem over the clean
  records' error rate (what fixing the problem brings them down to), with Newcombe's
  interval for the difference of two proportions times the records; label-noise errors
  are added as fixed (a corrected label removes them);
* distribution_shift: the excess errors of novel records over the other clean records
  (same interval);
* threshold and capacity: the errors the lever's out-of-fold model gets right minus the
  correct records it would get wrong, over the records no earlier lever claims, with a
  paired normal interval (:func:`service.analysis.taxonomy.paired_sum`);
* feature_gap: no estimate (it needs information the records do not carry); the errors
  themselves are the upper bound.

The ranking is by the estimate, ties (and feature_gap, which has none) to the cheaper
lever in the order of ``LEVERS``. With ``value_per_error`` (the line's
``impact.value_per_unit``, one fixed error counted as one unit) a yearly value is the
estimate per day of the analysed period times 365 times that value.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from statsmodels.stats.proportion import confint_proportions_2indep

from service import format as fmt
from service.analysis._frame import BoolArray, FloatArray, Frame, IntArray
from service.analysis._groups import clean as finite
from service.analysis._names import LEVERS, Lever
from service.analysis._novelty import named
from service.analysis.taxonomy import DATA_REASONS, SERVING_REASONS, Assignment, paired_sum

__all__ = ["ACTIONS", "SPEC_LEVER", "lever_rows", "record_evidence"]

ACTIONS: dict[Lever, str] = {
    "serving": "fix the serving path (timeouts, fallbacks, feature fetching at serving time) "
    "before touching the model",
    "data": "fix the input pipeline (nulls, absent or invalid values) and relabel the "
    "contradicted records",
    "threshold": "recalibrate the scores or set a per-segment threshold: the ranking is right, "
    "the cut is wrong (cheap, no retraining)",
    "distribution_shift": "retrain or fine-tune on recent data that covers the novel region; "
    "monitor the features named",
    "capacity": "a more flexible model on the same features (trees, interactions, depth): "
    "a probe already gets these right",
    "feature_gap": "add information: these errors are in distribution, clean and correctly "
    "served, yet no model on the logged features gets them right",
}
SPEC_LEVER: dict[Lever, str] = {
    "serving": "serving",
    "data": "data",
    "threshold": "threshold",
    "distribution_shift": "data",
    "capacity": "architecture",
    "feature_gap": "features",
}
"""The ``lever`` an experiment spec that pulls this lever names (the journal's vocabulary)."""
EXAMPLES = 5
_Z95 = 1.959963984540054


@dataclass(frozen=True, slots=True)
class Fixed:
    estimate: float | None
    ci: tuple[float | None, float | None]
    method: str


def _round(x: float | None) -> float | None:
    return None if x is None or not np.isfinite(x) else round(float(x), 1)


def _excess(errors_in: int, n_in: int, errors_ref: int, n_ref: int, level: float) -> Fixed:
    method = "excess errors over the clean records' rate (Newcombe interval x records)"
    if n_in == 0 or n_ref == 0:
        return Fixed(float(errors_in) if n_in else 0.0, (None, None), method)
    low, high = confint_proportions_2indep(
        errors_in, n_in, errors_ref, n_ref, method="newcomb", compare="diff", alpha=1 - level
    )
    diff = errors_in / n_in - errors_ref / n_ref
    return Fixed(diff * n_in, (float(low) * n_in, float(high) * n_in), method)


def _paired(gain: FloatArray, level: float) -> Fixed:
    total, (lo, hi), _ = paired_sum(gain, level)
    return Fixed(total, (lo, hi), "errors fixed minus made, out-of-fold (paired normal interval)")


def _fixed(frame: Frame, a: Assignment, lever: Lever, level: float) -> Fixed:
    lab, err = frame.labelled, frame.error
    clean = a.clean
    ref_e, ref_n = int((clean & err).sum()), int(clean.sum())
    mine = a.lever == LEVERS.index(lever)
    if lever == "serving":
        group = lab & a.serving
        return _excess(int((group & err).sum()), int(group.sum()), ref_e, ref_n, level)
    if lever == "data":
        noise = mine & (a.data_reason == DATA_REASONS.index("label_noise"))
        group = lab & a.data & ~noise
        base = _excess(int((group & err).sum()), int(group.sum()), ref_e, ref_n, level)
        k = float(noise.sum())
        est = (base.estimate or 0.0) + k
        lo, hi = base.ci
        method = base.method + "; plus label-noise errors, counted as fixed"
        return Fixed(est, (None if lo is None else lo + k, None if hi is None else hi + k), method)
    novel = a.novelty.novel if a.novelty is not None else np.zeros(frame.n, dtype=bool)
    if lever == "distribution_shift":
        if not mine.any():
            return Fixed(0.0, (0.0, 0.0), "nothing blamed on shift")
        inside, outside = clean & novel, clean & ~novel
        return _excess(
            int((inside & err).sum()),
            int(inside.sum()),
            int((outside & err).sum()),
            int(outside.sum()),
            level,
        )
    if lever == "feature_gap":
        return Fixed(None, (None, None), "not estimable: upper bound is the errors themselves")
    fit = a.recalibration if lever == "threshold" else a.probe
    if fit is None or not mine.any():
        return Fixed(0.0, (0.0, 0.0), f"nothing blamed on {lever}")
    claimed = a.lever >= 0
    earlier = np.isin(a.lever, [LEVERS.index(x) for x in ("distribution_shift", "threshold")])
    scope = clean & ~np.isnan(fit.value) & ~(claimed & earlier & ~mine)
    if lever == "threshold" or a.recalibration is None:
        base_right = ~err
    else:
        recal = a.recalibration
        base_right = np.where(np.isnan(recal.value), ~err, recal.right)
    gain = np.where(mine, 1.0, 0.0) - (~err & base_right & ~fit.right).astype(np.float64)
    return _paired(gain[scope], level)


def _strength(frame: Frame, a: Assignment, lever: Lever) -> FloatArray:
    """Which errors make the clearest examples of a lever (larger first)."""
    if lever == "distribution_shift" and a.novelty is not None:
        return a.novelty.score
    fit = a.recalibration if lever == "threshold" else a.probe if lever == "capacity" else None
    if fit is not None:
        y = frame.target
        sure = np.where(y == 1.0, fit.value, 1.0 - fit.value)
        return (
            np.where(np.isnan(sure), 0.0, sure)
            if frame.mode != "regression"
            else -np.abs(fit.value - y)
        )
    if lever == "feature_gap":
        return np.where(np.isnan(frame.confidence), 0.0, frame.confidence)
    return np.zeros(frame.n)


def _examples(frame: Frame, a: Assignment, lever: Lever) -> list[str]:
    rows = a.rows(lever)
    if rows.size == 0:
        return []
    strength = _strength(frame, a, lever)[rows]
    order = np.argsort(-np.nan_to_num(strength, nan=-np.inf), kind="stable")[:EXAMPLES]
    return [frame.ids[int(i)] for i in rows[order]]


def _pct(x: float) -> str:
    return fmt.pct(x, sign=False)


def _count_reasons(codes: IntArray, names: Sequence[str], mine: BoolArray) -> dict[str, int]:
    out = {name: int((mine & (codes == i)).sum()) for i, name in enumerate(names)}
    return {k: v for k, v in out.items() if v}


def _evidence(frame: Frame, a: Assignment, lever: Lever) -> tuple[list[str], dict[str, Any]]:
    mine = a.lever == LEVERS.index(lever)
    n = int(mine.sum())
    facts: dict[str, Any] = {}
    lines: list[str] = []
    if lever == "serving":
        facts = dict(_count_reasons(a.serving_reason, SERVING_REASONS, mine))
        if facts:
            lines.append(
                "errors on records served badly: "
                + ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in facts.items())
            )
    elif lever == "data":
        facts = dict(_count_reasons(a.data_reason, DATA_REASONS, mine))
        if facts:
            lines.append(
                "errors on records with bad input: "
                + ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in facts.items())
            )
        if facts.get("label_noise"):
            lines.append(
                f"{facts['label_noise']} labels are contradicted by near-identical records "
                "(label noise: check these labels first)"
            )
        feats = a.data_feature[mine]
        named_feats = [a.columns[int(j)] for j in feats if j >= 0]
        if named_feats:
            worst = sorted(set(named_feats), key=lambda f: -named_feats.count(f))[:5]
            facts["features"] = {f: named_feats.count(f) for f in worst}
            lines.append(
                "features at fault: " + ", ".join(f"{f} ({named_feats.count(f)})" for f in worst)
            )
    elif lever in ("distribution_shift", "threshold", "capacity"):
        test = a.tests.get(lever)
        lines.append(_test_text(lever, a, test))
        if test is not None:
            facts = {"test": _test_dict(test)}
        if lever == "distribution_shift" and a.novelty is not None and n:
            counts: dict[str, int] = {}
            for row in np.flatnonzero(mine):
                for name in named(a.novelty.features[row], a.columns):
                    counts[name] = counts.get(name, 0) + 1
            top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
            facts["features"] = dict(top)
            if top:
                lines.append(
                    "features that make these records novel: "
                    + ", ".join(f"{k} ({v})" for k, v in top)
                )
    else:
        lines.append(
            f"{n} errors are in distribution, clean and correctly served, and neither the "
            "recalibration nor the probe gets them right"
        )
    return lines, facts


def _test_dict(test: Any) -> dict[str, Any]:
    return {
        "estimate": finite(float(test.estimate)),
        "ci": [finite(float(test.ci[0])), finite(float(test.ci[1]))],
        "p_value": finite(float(test.p_value)),
        "p_adjusted": finite(float(test.p_adjusted)),
        "passed": test.passed,
        "records": test.n,
        "method": test.method,
        **test.detail,
    }


def _test_text(lever: Lever, a: Assignment, test: Any) -> str:
    if test is None:
        if lever == "distribution_shift":
            if a.novelty is None:
                return "no reference rows to compare with: nothing can be blamed on shift"
            return "no clean record is novel relative to the reference: nothing blamed on shift"
        what = "recalibration" if lever == "threshold" else "probe"
        return f"the {what} could not be fitted (too few labelled records or no scores)"
    p = f"p = {fmt.p_value(test.p_adjusted)} after Holm"
    if lever == "distribution_shift":
        d = test.detail
        r_in = d["novel_errors"] / d["novel"] if d["novel"] else 0.0
        r_out = d["rest_errors"] / d["rest"] if d["rest"] else 0.0
        text = (
            f"novel records err at {_pct(r_in)} (n={fmt.count(d['novel'])}) vs {_pct(r_out)} "
            f"for the rest (n={fmt.count(d['rest'])}), {p}"
        )
        if test.passed:
            return text + ": their errors are blamed on shift"
        return text + ": novel records do not err significantly more, so nothing is blamed on shift"
    what = "per-segment recalibration" if lever == "threshold" else "the probe"
    d = test.detail
    text = (
        f"{what} fixes {fmt.count(d['fixed'])} and breaks {fmt.count(d['made'])} out-of-fold ({p})"
    )
    if test.passed:
        return text
    return text + ": not significantly better, so nothing is blamed on " + lever


def _value(fixed: Fixed, value_per_error: float | None, days: float) -> dict[str, Any] | None:
    if value_per_error is None or fixed.estimate is None:
        return None
    scale = value_per_error * 365.0 / days

    def times(x: float | None) -> float | None:
        return None if x is None else round(x * scale, 0)

    lo, hi = times(fixed.ci[0]), times(fixed.ci[1])
    if lo is not None and hi is not None and lo > hi:
        lo, hi = hi, lo
    return {"per_year": {"estimate": times(fixed.estimate), "ci": [lo, hi]}, "days": round(days, 1)}


def lever_rows(
    frame: Frame,
    a: Assignment,
    *,
    level: float,
    value_per_error: float | None = None,
    currency: str | None = None,
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """The lever rows, ranked, and the recommendation (None without labelled errors)."""
    total = int((a.lever >= 0).sum())
    ts = frame.ts[frame.labelled & ~np.isnan(frame.ts)]
    days = max(float(ts.max() - ts.min()) / 86_400.0, 1.0) if ts.size else 1.0
    rows: list[dict[str, Any]] = []
    for lever in LEVERS:
        n = int((a.lever == LEVERS.index(lever)).sum())
        fixed = _fixed(frame, a, lever, level) if n else Fixed(0.0, (0.0, 0.0), "no errors")
        evidence, facts = _evidence(frame, a, lever)
        value = _value(fixed, value_per_error, days) if n else None
        if value is not None:
            value["currency"] = currency
        rows.append(
            {
                "lever": lever,
                "errors": n,
                "share": n / total if total else 0.0,
                "expected_fixed": {
                    "estimate": _round(fixed.estimate),
                    "ci": [_round(fixed.ci[0]), _round(fixed.ci[1])],
                    "method": fixed.method,
                    "upper_bound": n,
                },
                "value": value,
                "action": ACTIONS[lever],
                "spec_lever": SPEC_LEVER[lever],
                "evidence": evidence if n or evidence else ["no errors assigned to this lever"],
                "facts": facts,
                "examples": _examples(frame, a, lever),
            }
        )

    def key(row: dict[str, Any]) -> tuple[float, int]:
        est = row["expected_fixed"]["estimate"]
        usable = est if (est is not None and row["errors"]) else -1.0
        return (-usable, LEVERS.index(row["lever"]))

    rows.sort(key=key)
    for position, row in enumerate(rows):
        row["rank"] = position + 1
        row["first"] = False
    if total == 0:
        return rows, None
    top = next(
        (r for r in rows if r["errors"] and (r["expected_fixed"]["estimate"] or 0) > 0), None
    )
    if top is None:
        top = next(r for r in rows if r["lever"] == "feature_gap")
        why = (
            f"no cheaper lever is expected to fix any of the {fmt.count(total)} errors; "
            "they need information the features do not carry"
        )
    else:
        est = top["expected_fixed"]
        why = (
            f"{fmt.count(top['errors'])} of {fmt.count(total)} errors ({_pct(top['share'])}) "
            f"point at {top['lever']}; pulling it should fix about {fmt.count(est['estimate'])} "
            f"(95% CI {fmt.count(est['ci'][0])} to {fmt.count(est['ci'][1])}), "
            "more than any other lever"
        )
    top["first"] = True
    return rows, {"lever": top["lever"], "action": top["action"], "why": why + "."}


def record_evidence(frame: Frame, a: Assignment) -> list[dict[str, Any]]:
    """One row per labelled error: record_id, lever, the evidence that decided it, segment."""
    out: list[dict[str, Any]] = []
    nov = a.novelty
    attrs = list(frame.attributes.items())
    describe: dict[Lever, Callable[[int], dict[str, Any]]] = {
        "serving": lambda i: (
            {"reason": SERVING_REASONS[int(a.serving_reason[i])]}
            if a.serving_reason[i] >= 0
            else {"reason": "flagged"}
        ),
        "data": lambda i: _data_evidence(a, i),
        "distribution_shift": lambda i: {
            "novelty": _r3(nov.score[i]) if nov else None,
            "cutoff": _r3(nov.cutoff) if nov else None,
            "features": named(nov.features[i], a.columns) if nov else [],
        },
        "threshold": lambda i: {
            "recalibrated": _r3(a.recalibration.value[i]) if a.recalibration else None
        },
        "capacity": lambda i: {"probe": _r3(a.probe.value[i]) if a.probe else None},
        "feature_gap": lambda i: {
            "recalibrated": _r3(a.recalibration.value[i]) if a.recalibration else None,
            "probe": _r3(a.probe.value[i]) if a.probe else None,
        },
    }
    for i in np.flatnonzero(a.lever >= 0):
        lever = LEVERS[int(a.lever[i])]
        segment = {
            name: codes.values[int(codes.codes[i])] for name, codes in attrs if codes.codes[i] >= 0
        }
        out.append(
            {
                "record_id": frame.ids[int(i)],
                "lever": lever,
                "evidence": describe[lever](int(i)),
                "segment": segment,
            }
        )
    return out


def _data_evidence(a: Assignment, i: int) -> dict[str, Any]:
    code = int(a.data_reason[i])
    out: dict[str, Any] = {"reason": DATA_REASONS[code] if code >= 0 else "flagged"}
    if a.data_feature[i] >= 0:
        out["feature"] = a.columns[int(a.data_feature[i])]
    return out


def _r3(x: float) -> float | None:
    return None if not np.isfinite(x) else round(float(x), 3)
