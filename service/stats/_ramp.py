"""How long a staged rollout takes to bring in a planned number of units.

A ramp runs step *i* at a share ``s_i`` of the full traffic for
``max(min_days_i, min_units_i / (daily x s_i))`` days (the step's minimum time, or the time
its minimum units take to arrive, whichever is longer), then the next; the last step runs
at the full share until the plan is reached. Units arrive at ``daily x s_i`` a day during
step *i*, so the units after *t* days are piecewise linear in *t* and the days to reach
*N* units are found by walking the steps.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from service.stats._exceptions import StatsInputError

__all__ = ["RampStep", "RampTiming", "ramp_timing", "ramp_units"]


@dataclass(frozen=True, slots=True)
class RampStep:
    """One step: its share of the full traffic (0 < share <= 1) and what it waits for."""

    share: float
    min_days: float = 0.0
    min_units: float = 0.0


@dataclass(frozen=True, slots=True)
class RampTiming:
    """Days until ``total_units`` have entered, and each step's planned days and units (the
    last step's: from its start until the plan is reached, 0 when reached before it)."""

    days: float
    step_days: tuple[float, ...]
    step_units: tuple[float, ...]


def _check(daily_units: float, steps: Sequence[RampStep]) -> None:
    if not (math.isfinite(daily_units) and daily_units > 0):
        raise StatsInputError("daily_units", f"must be positive, got {daily_units}")
    if not steps:
        raise StatsInputError("steps", "a ramp needs at least one step")
    for i, step in enumerate(steps):
        if not 0 < step.share <= 1:
            raise StatsInputError(f"steps.{i}.share", f"must be in (0, 1], got {step.share}")
        if step.min_days < 0 or step.min_units < 0:
            raise StatsInputError(f"steps.{i}", "minimum days and units are not negative")


def _durations(daily_units: float, steps: Sequence[RampStep]) -> list[float]:
    """Days of every step but the last (which runs for as long as it takes)."""
    return [max(s.min_days, s.min_units / (daily_units * s.share)) for s in steps[:-1]]


def ramp_timing(total_units: float, daily_units: float, steps: Sequence[RampStep]) -> RampTiming:
    """Days for ``total_units`` to enter at ``daily_units`` a day at full share, ramped."""
    _check(daily_units, steps)
    if not total_units >= 0:
        raise StatsInputError("total_units", f"must not be negative, got {total_units}")
    elapsed, entered = 0.0, 0.0
    reached: float | None = None
    days: list[float] = []
    units: list[float] = []
    for step, duration in zip(steps, _durations(daily_units, steps), strict=False):
        rate = daily_units * step.share
        if reached is None and entered + rate * duration >= total_units:
            reached = elapsed + (total_units - entered) / rate
        days.append(duration)
        units.append(rate * duration)
        elapsed += duration
        entered += rate * duration
    rate = daily_units * steps[-1].share
    if reached is None:
        reached = elapsed + (total_units - entered) / rate
    days.append(max(0.0, reached - elapsed))
    units.append(rate * days[-1])
    return RampTiming(days=reached, step_days=tuple(days), step_units=tuple(units))


def ramp_units(days: float, daily_units: float, steps: Sequence[RampStep]) -> float:
    """Units entered after ``days`` of the ramp (the inverse of :func:`ramp_timing`)."""
    _check(daily_units, steps)
    left, entered = max(days, 0.0), 0.0
    for step, duration in zip(steps, _durations(daily_units, steps), strict=False):
        spent = min(left, duration)
        entered += daily_units * step.share * spent
        left -= spent
    return entered + daily_units * steps[-1].share * left
