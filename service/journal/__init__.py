"""The experiment journal: every ended experiment, negative results too, kept forever.

Each entry holds the hypothesis, the spec version, the final results, the decision with its
reasons and who took it, the lever it pulled and, when the spec prices the primary metric,
the estimated yearly value. Shipping makes the variant the baseline of its model line
(:func:`line_of`), and the journal adds up the improvement along each line and per lever.
"""

from __future__ import annotations

from service.journal._entry import (
    Decision,
    Interval,
    JournalEntry,
    PrimaryLift,
    YearlyValue,
    build_entry,
    line_of,
)
from service.journal._journal import Journal
from service.journal._summary import (
    Cumulative,
    LeverSummary,
    LineSummary,
    lever_summaries,
    line_summaries,
)

__all__ = [
    "Cumulative",
    "Decision",
    "Interval",
    "Journal",
    "JournalEntry",
    "LeverSummary",
    "LineSummary",
    "PrimaryLift",
    "YearlyValue",
    "build_entry",
    "lever_summaries",
    "line_of",
    "line_summaries",
]
