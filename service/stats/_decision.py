"""The risk-aware decision rule (in the spirit of Spotify's "risk-aware" product decisions).

In order:

1. `rollback` when any guardrail is `breached`, overall or in any segment;
2. `ship` when the primary metric is `better` (significant in the planned direction
   under the plan's design), every overall guardrail is `ok` (non-inferior), no
   segment guardrail is breached, SRM is clean and `min_days` have passed;
3. `stop` when the planned maximum sample is reached without a win (a win being
   everything `ship` needs but the days), or the primary metric is significantly
   `worse` (continuing cannot lead to shipping);
4. `continue` otherwise.

Every decision carries plain-words reasons.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from service.stats._constants import Action, MetricStatus
from service.stats._guardrails import GuardrailResult


@dataclass(frozen=True, slots=True)
class Decision:
    """The action to take and why."""

    action: Action
    reasons: tuple[str, ...]

    def to_dict(self) -> dict[str, object]:
        return {"action": self.action, "reasons": list(self.reasons)}


def _where(segment: Mapping[str, str] | None) -> str:
    if not segment:
        return "overall"
    return "in " + ", ".join(f"{k}={v}" for k, v in segment.items())


def _describe(g: GuardrailResult) -> str:
    variant = f" ({g.variant})" if g.variant else ""
    lo, hi = g.ci
    # The guardrail's own interval (alpha per side for this cell), not the metric's: say so.
    level = f"{(1 - 2 * g.alpha) * 100:.4g}% guardrail CI"
    if not math.isfinite(g.estimate):
        return f"guardrail {g.metric}{variant} {_where(g.segment)}: no data yet"
    return (
        f"guardrail {g.metric}{variant} {_where(g.segment)}: relative change "
        f"{g.estimate:+.2%} ({level} {_bound(lo)} to {_bound(hi)}), margin {g.margin:.2%}"
    )


def _bound(x: float) -> str:
    """An interval end; an unbounded one (the baseline not clearly above zero) is infinite."""
    if math.isnan(x):
        return "—"
    return f"{x:+.2%}" if math.isfinite(x) else ("+∞" if x > 0 else "-∞")


def _within_margin(g: GuardrailResult) -> bool:
    """The CI excludes harm beyond the margin: non-inferiority is shown."""
    lo, hi = g.ci
    if g.direction == "increase":
        return bool(lo > -g.margin)
    return bool(hi < g.margin)


def decide(
    *,
    primary_status: MetricStatus,
    guardrails: Sequence[GuardrailResult],
    srm_ok: bool,
    days_elapsed: float,
    min_days: float,
    max_sample_reached: bool,
    primary_metric: str = "primary metric",
) -> Decision:
    """Decide ship / rollback / stop / continue for one candidate against the baseline.

    `guardrails` holds every checked guardrail cell; those with `segment=None` are the
    overall population.
    """
    breached = [g for g in guardrails if g.status == "breached"]
    if breached:
        return Decision("rollback", tuple(f"breached {_describe(g)}" for g in breached))

    blockers: list[str] = []  # what stands between this result and a win
    notes: list[str] = []  # worth knowing, but no obstacle
    if primary_status == "better":
        notes.append(f"{primary_metric} is significantly better in the planned direction")
    elif primary_status == "worse":
        blockers.append(f"{primary_metric} is significantly worse than the baseline")
    else:
        blockers.append(f"{primary_metric} is not yet significantly better")
    for g in guardrails:
        if g.segment is None and g.status == "warning":
            # Harm is shown, but a harm the margin allows is still non-inferior.
            if _within_margin(g):
                notes.append(f"{_describe(g)} shows harm within the margin")
            else:
                blockers.append(f"{_describe(g)} shows harm and may exceed the margin")
        elif g.segment is None and g.status != "ok":
            blockers.append(f"{_describe(g)} is not yet shown non-inferior")
        elif g.status == "warning":
            notes.append(f"{_describe(g)} shows harm within the margin")
    if not srm_ok:
        blockers.append("sample ratio mismatch: the traffic split is off, results are suspect")
    too_early = days_elapsed < min_days
    waiting = (
        f"only {f'{days_elapsed:.1f}'.removesuffix('.0')} of the minimum {min_days:g} "
        f"day{'' if min_days == 1 else 's'} have passed"
    )

    if not blockers and not too_early:
        return Decision("ship", (*notes, "all guardrails non-inferior", "SRM clean"))
    if primary_status == "worse":
        return Decision("stop", (*blockers, *notes))
    if blockers and max_sample_reached:
        return Decision("stop", ("planned maximum sample reached without a win", *blockers, *notes))
    return Decision("continue", (*notes, *blockers, *([waiting] if too_early else [])))
