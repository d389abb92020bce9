"""The model metrics the monitor reports: what each is, which way is worse, its statistics.

Decided metrics have sufficient statistics the guardrail machinery compares
(``service.stats``): proportions (accuracy, recall, precision) and per-record means (log
loss, absolute error). The ECE is reported beside them but not decided: it is not a mean
of per-record values, so it has no always-valid comparison; a calibration that worsens
shows in the log loss, which is decided.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from service.modelwatch._contrib import CAL_BINS
from service.stats import Direction, MeanStats, ProportionStats, Stats

__all__ = ["DECIDED", "METRICS", "Kind", "Metric", "metrics_for", "model_kind"]

Kind = Literal["binary", "multiclass", "regression"]


@dataclass(frozen=True, slots=True)
class Metric:
    name: str
    direction: Direction
    decided: bool
    description: str

    def denominator(self, s: Mapping[str, float]) -> float:
        """How many labelled records the metric is over."""
        if self.name == "recall":
            return s.get("tp", 0.0) + s.get("fn", 0.0)
        if self.name == "precision":
            return s.get("tp", 0.0) + s.get("fp", 0.0)
        if self.name == "log_loss":
            return s.get("ln", 0.0)
        if self.name == "mae":
            return s.get("en", 0.0)
        if self.name == "ece":
            return sum(s.get(f"c{b}n", 0.0) for b in range(CAL_BINS))
        return s.get("l", 0.0)

    def stats(self, s: Mapping[str, float]) -> Stats:
        """The metric's sufficient statistics (decided metrics only)."""
        n = round(self.denominator(s))
        if self.name in ("accuracy", "recall", "precision"):
            hits = s.get("k" if self.name == "accuracy" else "tp", 0.0)
            return ProportionStats(n, min(max(hits, 0.0), float(n)))
        total, squares = ("ls", "lq") if self.name == "log_loss" else ("es", "eq")
        return MeanStats(n, s.get(total, 0.0), max(s.get(squares, 0.0), 0.0))

    def value(self, s: Mapping[str, float]) -> float | None:
        """The metric in the sums ``s``; None without the records it needs."""
        n = self.denominator(s)
        if n < 0.5:
            return None
        if self.name == "ece":
            gap = sum(abs(s.get(f"c{b}s", 0.0) - s.get(f"c{b}k", 0.0)) for b in range(CAL_BINS))
            return gap / n
        return self.stats(s).mean


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("accuracy", "increase", True, "share of labelled predictions that were right"),
        Metric("recall", "increase", True, "share of true positives the model flagged"),
        Metric("precision", "increase", True, "share of flagged records truly positive"),
        Metric("log_loss", "decrease", True, "mean log loss of the label's probability"),
        Metric("mae", "decrease", True, "mean absolute error"),
        Metric("ece", "decrease", False, "expected calibration error (10 bins), reported"),
    )
}
DECIDED = tuple(m for m in METRICS if METRICS[m].decided)


def model_kind(
    labels_seen: Sequence[str], tolerance: float | None, whole: Mapping[str, float]
) -> Kind:
    """``regression`` with a tolerance, or when every labelled record has a numeric
    prediction and label and the labels are not classes; ``binary`` with at most two
    label values seen; else ``multiclass``."""
    if tolerance is not None:
        return "regression"
    if len(labels_seen) >= 3:
        numeric = whole.get("en", 0.0) >= whole.get("l", 0.0) > 0
        fractional = any(not _integral(v) for v in labels_seen)
        return "regression" if numeric and fractional else "multiclass"
    return "binary"


def _integral(text: str) -> bool:
    try:
        x = float(text)
    except ValueError:
        return True
    return math.isfinite(x) and x == int(x)


def metrics_for(
    kind: Kind, whole: Mapping[str, float], *, tolerance: float | None, positive_seen: bool
) -> list[Metric]:
    """The metrics a model of ``kind`` gets, given what its records carry."""
    names: list[str]
    if kind == "regression":
        names = (["accuracy"] if tolerance is not None else []) + ["mae"]
    else:
        names = ["accuracy"]
        if kind == "binary" and positive_seen:
            names += ["recall", "precision"]
        if kind == "binary" and whole.get("ln", 0.0) > 0:
            names.append("log_loss")
        if METRICS["ece"].denominator(whole) > 0:
            names.append("ece")
    return [METRICS[n] for n in names]
