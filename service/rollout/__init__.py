"""Staged rollouts: the gate between steps and the ramp that moves an experiment up one.

- :func:`rollout_gate` — where the current step stands (pure; the monitor acts on it).
- :func:`rollout_section` — the ``rollout`` part of a results document.
- :func:`ramp` — move a running experiment's rollout up (monitor, API, CLI, dashboard).
- :func:`describe_guardrail` — a guardrail row in words.
"""

from __future__ import annotations

from service.rollout._gate import (
    HOLDING,
    Gate,
    describe_guardrail,
    rollout_gate,
    rollout_section,
)
from service.rollout._ramp import HELD_EVENT, STEP_EVENT, announce_step, ramp, target_step

__all__ = [
    "HELD_EVENT",
    "HOLDING",
    "STEP_EVENT",
    "Gate",
    "announce_step",
    "describe_guardrail",
    "ramp",
    "rollout_gate",
    "rollout_section",
    "target_step",
]
