"""The lever ranking of a report, with the evidence behind each lever."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from service.analysis._frame import BoolArray, Frame
from service.analysis._groups import clean
from service.analysis._intervals import wilson
from service.analysis._names import BIT, DATA_BITS, LEVERS, SERVING_BITS, SHIFT_BITS, Lever
from service.analysis.taxonomy import ACTIONS, classify, lever_of, rank


def _lever_index(lever: Lever | None) -> int:
    return -1 if lever is None else LEVERS.index(lever)


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1%}"


def _rate(frame: Frame, mask: BoolArray, level: float) -> dict[str, Any]:
    lab = mask & frame.labelled
    n, e = int(lab.sum()), int((lab & frame.error).sum())
    r, lo, hi = wilson(e, n, level)
    return {
        "labelled": n,
        "errors": e,
        "error_rate": clean(float(r)),
        "ci": [clean(float(lo)), clean(float(hi))],
    }


def _contrast(frame: Frame, mask: BoolArray, what: str, level: float) -> tuple[str, dict[str, Any]]:
    inside, outside = _rate(frame, mask, level), _rate(frame, ~mask, level)
    text = (
        f"records {what} err at {_pct(inside['error_rate'])} "
        f"(95% CI {_pct(inside['ci'][0])}-{_pct(inside['ci'][1])}, n={inside['labelled']}) "
        f"vs {_pct(outside['error_rate'])} for the rest (n={outside['labelled']})"
    )
    return text, {"flagged": inside, "rest": outside}


def lever_report(
    frame: Frame,
    *,
    in_slice: BoolArray,
    slices: list[dict[str, Any]],
    masks: list[BoolArray],
    ood_features: dict[str, BoolArray],
    calibration: dict[str, Any],
    high_confidence: float,
    level: float,
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """Classify every error (see :mod:`service.analysis.taxonomy`), rank the levers.

    Returns the lever rows, most errors first, and the recommendation (None when
    there are no errors).
    """
    err = frame.error
    rows_idx = np.flatnonzero(err)
    total = int(rows_idx.size)
    lut = np.array(
        [-1] + [_lever_index(lever_of(value)) for value in frame.category.values], dtype=np.int64
    )
    declared = lut[frame.category.codes[rows_idx] + 1]
    assigned = classify(
        frame.flags[rows_idx],
        in_slice[rows_idx],
        frame.confidence[rows_idx],
        declared,
        high_confidence=high_confidence,
    )
    counts: dict[Lever, int] = {lv: int(np.sum(assigned == i)) for i, lv in enumerate(LEVERS)}
    ordered = rank(counts)
    lever_mask: dict[Lever, BoolArray] = {}
    for i, lv in enumerate(LEVERS):
        mask = np.zeros(frame.n, dtype=bool)
        mask[rows_idx[assigned == i]] = True
        lever_mask[lv] = mask
    ctx = _Context(
        frame, in_slice, slices, masks, ood_features, calibration, high_confidence, level
    )
    rows: list[dict[str, Any]] = []
    for position, lv in enumerate(ordered):
        mine = lever_mask[lv]
        evidence, facts = _EVIDENCE[lv](ctx, mine)
        n = counts[lv]
        k = int(np.sum(declared[assigned == LEVERS.index(lv)] >= 0))
        if k:
            evidence.append(f"{k} of these errors were put here by the client's error_category")
        conf = frame.confidence[mine]
        conf = conf[~np.isnan(conf)]
        facts["mean_confidence"] = clean(float(conf.mean())) if conf.size else None
        rows.append(
            {
                "lever": lv,
                "errors": n,
                "error_share": n / total if total else 0.0,
                "rank": position + 1,
                "first": position == 0 and n > 0,
                "action": ACTIONS[lv],
                "evidence": evidence if n else ["no errors assigned to this lever"],
                "facts": facts,
            }
        )
    if total == 0:
        return rows, None
    top = rows[0]
    why = (
        f"{top['errors']} of {total} errors ({_pct(top['error_share'])}) point at "
        f"{top['lever']}, more than any other lever"
    )
    if len(rows) > 1 and rows[1]["errors"] == top["errors"]:
        why += f" (tied with {rows[1]['lever']}; the cheaper lever goes first)"
    return rows, {"lever": top["lever"], "action": top["action"], "why": why + "."}


Evidence = tuple[list[str], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class _Context:
    frame: Frame
    in_slice: BoolArray
    slices: list[dict[str, Any]]
    masks: list[BoolArray]
    ood_features: dict[str, BoolArray]
    calibration: dict[str, Any]
    high_confidence: float
    level: float


def _serving(ctx: _Context, mine: BoolArray) -> Evidence:
    frame = ctx.frame
    no_pred = int((mine & ~frame.served).sum())
    serving = int((mine & frame.has(BIT["serving_error"]) & frame.served).sum())
    timeouts = int((mine & frame.has(BIT["timeout"])).sum())
    unlabelled = int((frame.has(SERVING_BITS) & ~frame.labelled).sum())
    text = [
        f"{int(mine.sum())} errors came from failed serving: {no_pred} without a prediction, "
        f"{serving} more flagged serving_error, {timeouts} timeouts"
    ]
    if unlabelled:
        text.append(f"{unlabelled} more serving failures have no label yet and are not counted")
    facts = {
        "no_prediction": no_pred,
        "serving_error": serving,
        "timeout": timeouts,
        "unlabelled_failures": unlabelled,
    }
    return text, facts


def _data(ctx: _Context, mine: BoolArray) -> Evidence:
    frame = ctx.frame
    missing = int((mine & frame.has(BIT["input_missing"])).sum())
    invalid = int((mine & frame.has(BIT["input_invalid"])).sum())
    text, rates = _contrast(frame, frame.has(DATA_BITS), "with missing or invalid input", ctx.level)
    lines = [f"{missing} errors had missing input, {invalid} invalid input", text]
    return lines, {"input_missing": missing, "input_invalid": invalid, **rates}


def _shift(ctx: _Context, mine: BoolArray) -> Evidence:
    text, rates = _contrast(ctx.frame, ctx.frame.has(SHIFT_BITS), "out of distribution", ctx.level)
    by_feature = sorted(
        ((name, int((mine & flagged).sum())) for name, flagged in ctx.ood_features.items()),
        key=lambda kv: -kv[1],
    )
    top = [(k, v) for k, v in by_feature if v][:5]
    lines = [text]
    if top:
        lines.append(
            "features most often outside their reference range among these errors: "
            + ", ".join(f"{k} ({v})" for k, v in top)
        )
    elif not ctx.ood_features:
        lines.append("no reference ranges yet: only client out_of_distribution flags count")
    return lines, {**rates, "features": dict(top)}


def _gap(ctx: _Context, mine: BoolArray) -> Evidence:
    held = sorted(
        ((row, int((mine & mask).sum())) for row, mask in zip(ctx.slices, ctx.masks, strict=True)),
        key=lambda t: -t[1],
    )
    parts = [
        f"{_fmt(row['attributes'])} ({k} errors, error rate {_pct(row['error_rate'])}, "
        f"lift {row['lift']:.1f}x, p={row['p_value']:.2g})"
        for row, k in held[:3]
        if k
    ]
    lines = []
    if parts:
        lines.append(
            f"wrong at confidence >= {ctx.high_confidence:g} inside significant high-error "
            "slices: " + "; ".join(parts)
        )
    return lines, {"slices": [{"attributes": r["attributes"], "errors": k} for r, k in held if k]}


def _capacity(ctx: _Context, mine: BoolArray) -> Evidence:
    n = int(mine.sum())
    outside = int((mine & ~ctx.in_slice).sum())
    conf = ctx.frame.confidence[mine]
    with np.errstate(invalid="ignore"):
        low = int(np.sum(~(conf >= ctx.high_confidence)))
    lines = [
        f"{outside} of {n} errors fall outside every significant slice and {low} were made "
        f"at confidence below {ctx.high_confidence:g} (or none given): spread, uncertain errors"
    ]
    if ctx.calibration.get("ece") is not None:
        lines.append(
            f"calibration: ECE {ctx.calibration['ece']:.3f} ({ctx.calibration['verdict']})"
        )
    return lines, {"outside_slices": outside, "low_confidence": low}


def _fmt(attrs: dict[str, str]) -> str:
    return " & ".join(f"{k}={v}" for k, v in attrs.items())


_EVIDENCE: dict[Lever, Callable[[_Context, BoolArray], Evidence]] = {
    "serving": _serving,
    "data": _data,
    "distribution_shift": _shift,
    "feature_gap": _gap,
    "capacity": _capacity,
}
