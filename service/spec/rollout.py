"""Staged rollouts: the spec's ``rollout`` block and the ramp's state on a running record.

A rollout ramps the experiment's ``traffic`` (the share of eligible units that enter it)
through increasing steps, the last of which is the spec's ``traffic``. The variant
weights never change, so the split between baseline and candidate inside the experiment
stays the same at every step (docs/rollouts.md says why that keeps the analysis valid).
"""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import BaseModel, ConfigDict, Field, computed_field

from service.errors import FieldError, field_error
from service.spec.duration import Duration

__all__ = [
    "Rollout",
    "RolloutState",
    "RolloutStep",
    "StepEntry",
    "rollout_errors",
]

MAX_STEPS = 20


class RolloutStep(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    traffic: float = Field(gt=0, le=1, description="Share of eligible units in the experiment.")
    min_duration: Duration = Field(
        default=0.0, description="Time at this step before the next one (e.g. '1h', '1d')."
    )
    min_units: int = Field(
        default=0, ge=0, le=1_000_000_000, description="Units entering during this step first."
    )


class Rollout(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    steps: list[RolloutStep] = Field(min_length=2, max_length=MAX_STEPS)
    auto_advance: bool = Field(
        default=True,
        description="The monitor advances when the gate passes; false waits for `sharpen ramp`.",
    )


def rollout_errors(rollout: Rollout, traffic: float) -> Iterator[FieldError]:
    """The cross-field rules: traffic increases step by step and ends at the spec's."""
    steps = rollout.steps
    for i in range(1, len(steps)):
        if steps[i].traffic <= steps[i - 1].traffic:
            yield field_error(
                f"rollout.steps.{i}.traffic",
                f"must be above the previous step's {steps[i - 1].traffic:g}: a ramp only grows",
            )
    last = len(steps) - 1
    if steps[last].traffic != traffic:
        yield field_error(
            f"rollout.steps.{last}.traffic",
            f"the last step is the spec's traffic ({traffic:g}), got {steps[last].traffic:g}",
        )
    if steps[last].min_duration or steps[last].min_units:
        yield field_error(
            f"rollout.steps.{last}",
            "the last step is the full share: no step follows it, so it has nothing to wait for",
        )


class StepEntry(BaseModel):
    """One step the experiment entered: when, at which share, and who moved it there."""

    model_config = ConfigDict(frozen=True)

    step: int = Field(ge=1, description="1 for the first step.")
    traffic: float
    started_at: float = Field(description="Unix time, seconds.")
    units_at_start: int = Field(
        default=0, ge=0, description="Units in the experiment when the step began."
    )
    actor: str


class RolloutState(BaseModel):
    """Where a running (or ended) experiment's ramp is; changed only by a ramp."""

    model_config = ConfigDict(frozen=True)

    history: list[StepEntry] = Field(min_length=1)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def step(self) -> int:
        """The current step, 1-based."""
        return self.history[-1].step

    @computed_field  # type: ignore[prop-decorator]
    @property
    def traffic(self) -> float:
        """The share of eligible units in the experiment now."""
        return self.history[-1].traffic

    def full_share_seconds(self, final_traffic: float, end: float) -> float:
        """Seconds at the spec's traffic that bring in as many units as the ramp did until
        ``end``: each step's time weighted by its share of ``final_traffic``."""
        total = 0.0
        for i, entry in enumerate(self.history):
            stop = self.history[i + 1].started_at if i + 1 < len(self.history) else end
            total += max(0.0, min(stop, end) - entry.started_at) * entry.traffic / final_traffic
        return total
