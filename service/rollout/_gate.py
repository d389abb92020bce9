"""The gate between two steps of a rollout, and the rollout's part of the results document.

Pure: a record, its results document and the time in; what the ramp waits for out. The
monitor advances on it, the results document and ``sharpen get`` show it, so every reader
sees the same reasons.

A step passes its gate when it has run its ``min_duration``, ``min_units`` units have
entered during it, the sample ratio is clean and no guardrail (overall or in a segment)
is ``warning`` or ``breached``. A warning or a mismatch *holds* the step (``held``),
which the monitor says and Prometheus alerts on; a breach rolls back before the gate is
read (with ``guardrails.auto_rollback``) or holds it too.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from service import format as fmt
from service.spec import ExperimentRecord
from service.spec.duration import format_duration

__all__ = ["HOLDING", "Gate", "describe_guardrail", "rollout_gate", "rollout_section"]

HOLDING = frozenset({"warning", "breached"})
"""Guardrail statuses that hold a rollout's step."""

GateState = Literal["waiting", "held", "ready", "complete"]


def describe_guardrail(row: Mapping[str, Any]) -> str:
    """One guardrail row of a results document in words (logs, audit, gate reasons)."""
    rel = row.get("relative") or {}
    ci = rel.get("ci") or [None, None]
    alpha = fmt.as_float(row.get("alpha"))
    level = fmt.confidence(None if alpha is None else 2 * alpha)  # alpha is per side
    return (
        f"guardrail {row.get('metric')} {row.get('status')} for {row.get('variant')} in "
        f"{fmt.segment(row.get('segment'))}: relative {fmt.pct(rel.get('estimate'))} "
        f"(guardrail {level} {fmt.pct(ci[0])} to {fmt.pct(ci[1])})"
    )


@dataclass(frozen=True, slots=True)
class Gate:
    """Where the current step stands: ``advance`` tells the monitor to ramp now."""

    step: int
    steps: int
    traffic: float
    next_traffic: float | None
    state: GateState
    advance: bool
    step_units: int
    step_seconds: float
    waiting_for: tuple[str, ...]
    held_by: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "steps": self.steps,
            "traffic": self.traffic,
            "next_traffic": self.next_traffic,
            "state": self.state,
            "advance": self.advance,
            "step_units": self.step_units,
            "step_seconds": round(self.step_seconds, 3),
            "waiting_for": list(self.waiting_for),
            "held_by": list(self.held_by),
        }


def _total_units(doc: Mapping[str, Any]) -> int:
    units = doc.get("units")
    if not isinstance(units, Mapping):
        return 0
    return int(sum(n for n in units.values() if isinstance(n, int | float)))


def _held_by(doc: Mapping[str, Any]) -> list[str]:
    rows = [g for g in doc.get("guardrails") or [] if isinstance(g, Mapping)]
    reasons = [describe_guardrail(g) for g in rows if g.get("status") in HOLDING]
    srm = doc.get("srm")
    if isinstance(srm, Mapping) and srm.get("ok") is False:
        reasons.append(f"sample ratio mismatch ({fmt.srm(srm)[0]}): the split is not as configured")
    return reasons


def rollout_gate(record: ExperimentRecord, doc: Mapping[str, Any], now: float) -> Gate | None:
    """The gate of a running experiment's current step; ``None`` without a running ramp."""
    rollout, state = record.spec.rollout, record.rollout
    if record.status != "running" or rollout is None or state is None:
        return None
    current = state.history[-1]
    steps = len(rollout.steps)
    units = max(0, _total_units(doc) - current.units_at_start)
    seconds = max(0.0, now - current.started_at)
    if current.step >= steps:
        return Gate(current.step, steps, current.traffic, None, "complete", False, units,
                    seconds, (), ())  # fmt: skip
    wanted = rollout.steps[current.step - 1]
    waiting: list[str] = []
    if seconds < wanted.min_duration:
        left = wanted.min_duration - seconds  # whole minutes past two, else seconds
        left = math.ceil(left / 60) * 60 if left > 120 else math.ceil(left)
        waiting.append(
            f"{format_duration(left)} more at this step "
            f"({format_duration(wanted.min_duration)} in all)"
        )
    if units < wanted.min_units:
        waiting.append(
            f"{wanted.min_units - units:,} more units at this step ({units:,} of "
            f"{wanted.min_units:,})"
        )
    held = _held_by(doc)
    gate_state: GateState = "held" if held else ("waiting" if waiting else "ready")
    if gate_state == "ready" and not rollout.auto_advance:
        waiting.append(f"a person to ramp it: `sharpen ramp {record.key}` or the dashboard")
    return Gate(
        step=current.step,
        steps=steps,
        traffic=current.traffic,
        next_traffic=rollout.steps[current.step].traffic,
        state=gate_state,
        advance=gate_state == "ready" and rollout.auto_advance,
        step_units=units,
        step_seconds=seconds,
        waiting_for=tuple(waiting),
        held_by=tuple(held),
    )


def _schedule(record: ExperimentRecord, total: int) -> list[dict[str, Any]]:
    assert record.spec.rollout is not None
    history = record.rollout.history if record.rollout is not None else []
    entered = {e.step: i for i, e in enumerate(history)}
    current = history[-1].step if history else 0
    rows = []
    for number, step in enumerate(record.spec.rollout.steps, start=1):
        row: dict[str, Any] = {
            "step": number,
            "traffic": step.traffic,
            "min_duration": format_duration(step.min_duration),
            "min_duration_s": step.min_duration,
            "min_units": step.min_units,
            "started_at": None,
            "ended_at": None,
            "units": None,
            "actor": None,
            "state": "pending" if number > current else "skipped",
        }
        i = entered.get(number)
        if i is not None:
            entry, following = history[i], history[i + 1] if i + 1 < len(history) else None
            last_units = following.units_at_start if following is not None else total
            ended = following.started_at if following is not None else record.ended_at
            row.update(
                started_at=entry.started_at,
                ended_at=ended,
                units=max(0, last_units - entry.units_at_start),
                actor=entry.actor,
                state="current" if following is None and record.status == "running" else "done",
            )
        rows.append(row)
    return rows


def _annotate_timeline(timeline: Sequence[Any], record: ExperimentRecord) -> None:
    """Give each hour of the timeline the step (and traffic) in force at its end."""
    history = record.rollout.history if record.rollout is not None else []
    if not history:
        return
    for point in timeline:
        if not isinstance(point, dict) or not isinstance(point.get("hour"), int | float):
            continue
        end = point["hour"] + 3600
        entry = next((e for e in reversed(history) if e.started_at < end), history[0])
        point["step"], point["traffic"] = entry.step, entry.traffic


def rollout_section(
    record: ExperimentRecord, doc: dict[str, Any], now: float
) -> dict[str, Any] | None:
    """The ``rollout`` part of a results document (``None`` without a rollout); also marks
    the step in force on each hour of ``doc["timeline"]``."""
    rollout = record.spec.rollout
    if rollout is None:
        return None
    _annotate_timeline(doc.get("timeline") or [], record)
    gate = rollout_gate(record, doc, now)
    return {
        "auto_advance": rollout.auto_advance,
        "step": record.rollout.step if record.rollout is not None else None,
        "steps": len(rollout.steps),
        "traffic": record.current_traffic if record.rollout is not None else None,
        "final_traffic": record.spec.traffic,
        "schedule": _schedule(record, _total_units(doc)),
        "gate": None if gate is None else gate.to_dict(),
    }
