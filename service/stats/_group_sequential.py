"""The group-sequential test over the looks so far: first crossing, repeated p-value.

Boundaries come from `_boundaries` (Lan-DeMets spending at the observed information).
The horizon is the first look whose information reaches the plan (or the look declared
final): it spends all the alpha that is left, so the verdict is settled there. Looks
after it are kept, marked `past_plan`, and never tested: testing them would spend
alpha that is no longer there.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from service.stats._boundaries import Spending, lan_demets_boundaries, repeated_p_value
from service.stats._results import clean


@dataclass(frozen=True, slots=True)
class SequentialLook:
    """One look: information fraction, z statistic, boundary, crossed or not.

    A look `past_plan` (after the horizon) has no boundary and is never crossed.
    """

    information: float
    z: float
    boundary: float
    crossed: bool
    past_plan: bool = False

    def to_dict(self) -> dict[str, object]:
        return {
            "information": self.information,
            "z": clean(self.z),
            "boundary": clean(self.boundary),
            "crossed": self.crossed,
            "past_plan": self.past_plan,
        }


@dataclass(frozen=True, slots=True)
class GroupSequentialResult:
    """The looks so far with their boundaries; the verdict is the first crossing.

    `first_crossing` and `horizon` (the look that reached the plan, or was declared
    final) are 1-based look numbers. `p_value` reads the looks up to the horizon only.
    """

    looks: tuple[SequentialLook, ...]
    alpha: float
    spending: Spending
    first_crossing: int | None
    p_value: float
    horizon: int | None = None

    @property
    def crossed(self) -> bool:
        return self.first_crossing is not None

    @property
    def z(self) -> float:
        return self.looks[-1].z

    @property
    def decided_at(self) -> int | None:
        """The look that settled the verdict: the first crossing, else the horizon."""
        return self.first_crossing if self.first_crossing is not None else self.horizon

    @property
    def boundary(self) -> float:
        """Boundary at the latest tested look (that of the last usable look if skipped)."""
        usable = [look.boundary for look in self.looks if math.isfinite(look.boundary)]
        return usable[-1] if usable else math.nan

    def to_dict(self) -> dict[str, object]:
        return {
            "alpha": self.alpha,
            "spending": self.spending.kind,
            "crossed": self.crossed,
            "first_crossing": self.first_crossing,
            "horizon": self.horizon,
            "p_value": self.p_value,
            "looks": [look.to_dict() for look in self.looks],
        }


def group_sequential_test(
    z_values: Sequence[float],
    fractions: Sequence[float],
    alpha: float = 0.05,
    spending: Spending | None = None,
    *,
    final: bool = False,
    with_p_value: bool = True,
) -> GroupSequentialResult:
    """Test the z statistics of the looks so far (oldest first) against LD boundaries.

    `fractions` are the looks' information fractions. The first look whose fraction
    reaches 1 is the horizon and spends all that is left (so does the last look when
    `final` is set); looks after the horizon are returned `past_plan`, untested. A
    look that adds no information over an earlier one is tested against that look's
    boundary and spends no new alpha. A look with a NaN z (degenerate data) or no
    information is skipped.
    """
    if len(z_values) != len(fractions) or not z_values:
        raise ValueError("one z value per look, at least one look")
    spend = spending or Spending()
    horizon = next((i for i, t in enumerate(fractions) if t >= 1.0 - 1e-9), None)
    if horizon is None and final:
        horizon = len(fractions) - 1
    tested = len(fractions) if horizon is None else horizon + 1
    past = [
        SequentialLook(float(t), float(z), math.nan, False, past_plan=True)
        for z, t in zip(z_values[tested:], fractions[tested:], strict=True)
    ]
    z_values, fractions = z_values[:tested], fractions[:tested]
    schedule: list[float] = []
    slots: list[int | None] = []
    for z, t in zip(z_values, fractions, strict=True):
        t = min(float(t), 1.0)
        if not math.isfinite(z) or not t > 0:
            slots.append(None)
        elif schedule and t <= schedule[-1] + 1e-9:
            slots.append(len(schedule) - 1)
        else:
            schedule.append(t)
            slots.append(len(schedule) - 1)
    is_final = horizon is not None
    bounds = lan_demets_boundaries(schedule, alpha, spend, final=is_final) if schedule else ()
    looks: list[SequentialLook] = []
    first: int | None = None
    slot_z = [0.0] * len(schedule)
    for i, (z, t, slot) in enumerate(zip(z_values, fractions, slots, strict=True)):
        bound = bounds[slot] if slot is not None else math.nan
        crossed = slot is not None and abs(z) >= bound
        if slot is not None:
            slot_z[slot] = max(slot_z[slot], abs(z))
        if crossed and first is None:
            first = i + 1
        looks.append(SequentialLook(min(float(t), 1.0), float(z), bound, crossed))
    p = math.nan
    if with_p_value:
        p = 1.0
        if schedule:
            hint = alpha if first is not None else -alpha
            p = repeated_p_value(slot_z, schedule, spend, final=is_final, crossed_at=hint)
        # Keep the p-value and the verdict consistent despite grid error in the search.
        p = min(p, alpha) if first is not None else max(p, alpha * (1 + 1e-9))
    return GroupSequentialResult(
        (*looks, *past), alpha, spend, first, p, None if horizon is None else horizon + 1
    )
