"""Error taxonomy: every error goes to exactly one lever, by explicit, ordered rules.

The first rule that matches wins:

=====  ==========================================================  ==================
order  rule                                                        lever
=====  ==========================================================  ==================
0      the client's ``error_category`` names a lever (or an         that lever
       alias listed in ``CATEGORY_ALIASES``)
1      flag ``serving_error`` or ``timeout`` (derived: the          serving
       record has no prediction)
2      flag ``input_missing`` or ``input_invalid`` (derived: a      data
       feature sent as null)
3      flag ``out_of_distribution`` (client flag, or derived: a     distribution_shift
       numeric feature outside its reference range)
4      inside a significant high-error slice and confidence >=      feature_gap
       ``high_confidence``: the model is sure and wrong on a
       describable sub-population, so its inputs lack what
       separates it
5      everything else: in-distribution errors made at low          capacity
       confidence (or no confidence), or spread outside the
       significant slices
=====  ==========================================================  ==================

Levers are ranked by the errors they hold; ties go to the cheaper lever, in the
order of ``LEVERS`` (serving, data, distribution_shift, feature_gap, capacity).
The ranking's first lever is the one to try first. ``ACTIONS`` says what pulling
each lever means.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from service.analysis._names import DATA_BITS, LEVERS, SERVING_BITS, SHIFT_BITS, Lever

__all__ = ["ACTIONS", "CATEGORY_ALIASES", "LEVERS", "Lever", "classify", "lever_of", "rank"]

CATEGORY_ALIASES: dict[str, Lever] = {
    "serving": "serving",
    "serving_error": "serving",
    "timeout": "serving",
    "data": "data",
    "data_error": "data",
    "distribution_shift": "distribution_shift",
    "shift": "distribution_shift",
    "drift": "distribution_shift",
    "feature_gap": "feature_gap",
    "features": "feature_gap",
    "capacity": "capacity",
    "model_capacity": "capacity",
}
"""Client error categories that name a lever (rule 0), lower-cased."""

ACTIONS: dict[Lever, str] = {
    "serving": "fix the serving path (timeouts, fallbacks, replicas) before touching the model",
    "data": "fix the input pipeline (validation, upstream joins, defaults for missing values)",
    "distribution_shift": "retrain or fine-tune on recent data; monitor the drifting features",
    "feature_gap": "add features that separate the high-error slices; the model is confidently "
    "wrong there",
    "capacity": "more model capacity or training data (architecture, depth, longer training)",
}


def lever_of(category: str | None) -> Lever | None:
    """The lever a client ``error_category`` names, if any (rule 0)."""
    if category is None:
        return None
    return CATEGORY_ALIASES.get(category.strip().lower())


def classify(
    flags: npt.NDArray[np.int64],
    in_slice: npt.NDArray[np.bool_],
    confidence: npt.NDArray[np.float64],
    declared: npt.NDArray[np.int64] | None = None,
    *,
    high_confidence: float = 0.8,
) -> npt.NDArray[np.int64]:
    """Index into ``LEVERS`` for each row, applying the rules of the module docstring.

    ``flags`` is the bit mask of record flags, ``in_slice`` marks rows inside a
    significant high-error slice, ``confidence`` is NaN when unknown and ``declared``
    holds a lever index from rule 0 (or -1). Pass only the error rows.
    """
    n = flags.shape[0]
    out = np.full(n, LEVERS.index("capacity"), dtype=np.int64)
    with np.errstate(invalid="ignore"):
        confident = confidence >= high_confidence
    done = np.zeros(n, dtype=bool)
    if declared is not None:
        done = declared >= 0
        out[done] = declared[done]
    rules: list[tuple[npt.NDArray[np.bool_], Lever]] = [
        ((flags & SERVING_BITS) != 0, "serving"),
        ((flags & DATA_BITS) != 0, "data"),
        ((flags & SHIFT_BITS) != 0, "distribution_shift"),
        (in_slice & confident, "feature_gap"),
    ]
    for match, lever in rules:
        hit = match & ~done
        out[hit] = LEVERS.index(lever)
        done |= hit
    return out


def rank(errors: Mapping[Lever, int]) -> list[Lever]:
    """Levers by errors held, most first; ties to the cheaper lever. Empty levers last."""
    return sorted(LEVERS, key=lambda lever: (-errors.get(lever, 0), LEVERS.index(lever)))
