"""Shared pieces of the rollout tests: specs with a ramp, and records at any step."""

from __future__ import annotations

import copy
from typing import Any

from service.spec import ExperimentRecord, RolloutState, StepEntry, parse_spec
from tests._factories import guarded_spec

STEPS: list[dict[str, Any]] = [
    {"traffic": 0.01, "min_duration": "1h", "min_units": 2000},
    {"traffic": 0.05, "min_duration": "6h"},
    {"traffic": 0.2, "min_duration": "1d"},
    {"traffic": 1.0},
]


def ramped_spec(
    key: str = "fraud-v7", steps: list[dict[str, Any]] | None = None, **changes: Any
) -> dict[str, Any]:
    """The monitor tests' guarded spec with a four-step rollout (auto-advance)."""
    rollout = {"steps": copy.deepcopy(steps or STEPS), "auto_advance": True}
    return guarded_spec(key, **{"rollout": rollout, **changes})


def record_at(
    spec: dict[str, Any],
    entries: list[tuple[int, float, int]],
    *,
    status: str = "running",
    started_at: float = 1_000_000.0,
) -> ExperimentRecord:
    """A record whose rollout entered each ``(step, started_at, units_at_start)``."""
    parsed = parse_spec(spec)
    assert parsed.rollout is not None
    history = [
        StepEntry(
            step=step, traffic=parsed.rollout.steps[step - 1].traffic, started_at=at,
            units_at_start=units, actor="tester",
        )
        for step, at, units in entries
    ]  # fmt: skip
    return ExperimentRecord(
        key=parsed.key,
        spec=parsed,
        status=status,
        created_at=started_at,
        updated_at=started_at,
        started_at=started_at,
        rollout=RolloutState(history=history),
    )
