"""What the experiment page shows of a rollout: its steps, the gate, the ramp button."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from service.format import share
from service.spec import ExperimentRecord
from service.ui.plots import StepMark

__all__ = ["rollout_context", "step_marks"]


def step_marks(section: Any) -> list[StepMark]:
    """The start of every step entered, from a results document's ``rollout`` section."""
    if not isinstance(section, Mapping):
        return []
    return [
        StepMark(at=float(s["started_at"]), step=int(s["step"]), label=share(s["traffic"]))
        for s in section.get("schedule") or []
        if isinstance(s, Mapping) and isinstance(s.get("started_at"), int | float)
    ]


def rollout_context(record: ExperimentRecord, results: Mapping[str, Any] | None) -> dict[str, Any]:
    """``rollout`` (the results section, or None), ``ramp_to`` (the next step a person may
    ramp to, or None) and ``ramp_targets`` (every later step) for the templates."""
    section = (results or {}).get("rollout")
    rollout, state = record.spec.rollout, record.rollout
    targets: list[dict[str, Any]] = []
    if record.status == "running" and rollout is not None and state is not None:
        targets = [
            {"step": i + 1, "traffic": s.traffic, "share": share(s.traffic)}
            for i, s in enumerate(rollout.steps)
            if i + 1 > state.step
        ]
    return {
        "rollout": section if isinstance(section, Mapping) else None,
        "ramp_to": targets[0] if targets else None,
        "ramp_targets": targets,
    }
