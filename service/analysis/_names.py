"""Names shared by the analysis package: record flags, levers and their order."""

from __future__ import annotations

from typing import Literal

Flag = Literal["input_missing", "input_invalid", "out_of_distribution", "serving_error", "timeout"]
Lever = Literal["serving", "data", "threshold", "distribution_shift", "capacity", "feature_gap"]

FLAGS: tuple[Flag, ...] = (
    "input_missing",
    "input_invalid",
    "out_of_distribution",
    "serving_error",
    "timeout",
)
"""Record flags; a record's flags are kept as a bit mask in this order."""

LEVERS: tuple[Lever, ...] = (
    "serving",
    "data",
    "threshold",
    "distribution_shift",
    "capacity",
    "feature_gap",
)
"""The six levers, cheapest to pull first (also the tie-break order of the ranking)."""

EVIDENCE_ORDER: tuple[Lever, ...] = (
    "serving",
    "data",
    "distribution_shift",
    "threshold",
    "capacity",
    "feature_gap",
)
"""The order in which the evidence for each lever is examined (first match wins)."""

BIT: dict[Flag, int] = {flag: 1 << i for i, flag in enumerate(FLAGS)}

DATA_BITS = BIT["input_missing"] | BIT["input_invalid"]
SHIFT_BITS = BIT["out_of_distribution"]
SERVING_BITS = BIT["serving_error"] | BIT["timeout"]
