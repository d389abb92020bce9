"""The one exception of the stats engine.

    ValueError
     └── StatsInputError   input that is not a valid question (negative counts, unknown
                           design, alpha outside (0, 1)); carries the field at fault

Degenerate *data* (n < 2, zero variance, zero denominator) is not an input error: it
yields a result carrying an `ErrorCode` instead.
"""

from __future__ import annotations


class StatsInputError(ValueError):
    """Invalid input to a stats function; `field` names the offending input."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
