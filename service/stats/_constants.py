"""Names shared by the whole stats engine: error codes and the choice aliases."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

MetricKind = Literal["mean", "proportion", "ratio"]
Direction = Literal["increase", "decrease"]
Design = Literal["fixed", "group_sequential", "always_valid"]
Correction = Literal["holm", "bh", "none"]
SpendingKind = Literal["obrien_fleming", "pocock", "power"]
MetricStatus = Literal["better", "worse", "inconclusive"]
GuardrailStatus = Literal["ok", "inconclusive", "warning", "breached"]
Action = Literal["ship", "rollback", "continue", "stop"]

METRIC_KINDS: tuple[MetricKind, ...] = ("mean", "proportion", "ratio")
DIRECTIONS: tuple[Direction, ...] = ("increase", "decrease")
DESIGNS: tuple[Design, ...] = ("fixed", "group_sequential", "always_valid")
CORRECTIONS: tuple[Correction, ...] = ("holm", "bh", "none")
SPENDING_KINDS: tuple[SpendingKind, ...] = ("obrien_fleming", "pocock", "power")

SRM_THRESHOLD = 0.001
"""p-value below which a sample-ratio mismatch is flagged."""


class ErrorCode(StrEnum):
    """Why a result could not be computed in full; degenerate data never raises.

    The string values are part of the HTTP contract (`error` fields).
    """

    INSUFFICIENT_DATA = "insufficient_data"
    """Fewer than two units in an arm: no variance can be estimated."""
    ZERO_VARIANCE = "zero_variance"
    """Both arms are constant: the standard error is zero."""
    ZERO_DENOMINATOR = "zero_denominator"
    """A ratio metric's denominator total is zero in an arm."""
    ZERO_BASELINE_MEAN = "zero_baseline_mean"
    """The baseline mean is zero: the relative change is undefined."""
    NO_INFORMATION = "no_information"
    """No look carried usable information (sequential designs)."""


ERROR_CODES: tuple[ErrorCode, ...] = tuple(ErrorCode)
FAILED: tuple[ErrorCode, ...] = (
    ErrorCode.INSUFFICIENT_DATA,
    ErrorCode.ZERO_DENOMINATOR,
    ErrorCode.ZERO_VARIANCE,
)
"""Codes after which no effect is estimated (a zero baseline mean still has an absolute one)."""
