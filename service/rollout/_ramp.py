"""Ramping a rollout up a step: the one way a running experiment's traffic changes.

The monitor calls :func:`ramp` when a gate passes (``auto_advance``); a person calls it
through ``POST /v1/experiments/{key}/ramp``, ``sharpen ramp`` or the dashboard. Each ramp
is a new version of the experiment with an audit entry (who, from which step to which,
the units so far, why, and what the gate said), published on the config feed (every API
process and SDK picks the new traffic up) and announced by the ``rollout.step`` webhook.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from service.errors import Conflict, ValidationFailed, field_error
from service.rollout._gate import rollout_gate
from service.runtime import Runtime
from service.spec import ExperimentRecord

__all__ = ["HELD_EVENT", "STEP_EVENT", "announce_step", "ramp", "target_step"]

log = logging.getLogger("sharpen.rollout")

STEP_EVENT = "rollout.step"
HELD_EVENT = "rollout.held"


def target_step(record: ExperimentRecord, to: float | None) -> int:
    """The step (1-based) a ramp of ``record`` goes to: the next, or the one at share ``to``.

    409 when the experiment is not running, has no rollout or is at its last step; 422
    (field ``to``) when ``to`` is not the traffic of a later step.
    """
    rollout, state = record.spec.rollout, record.rollout
    if record.status != "running":
        raise Conflict(f"cannot ramp experiment {record.key!r}: it is {record.status}")
    if rollout is None or state is None:
        raise Conflict(
            f"experiment {record.key!r} has no rollout: its traffic stays "
            f"{record.spec.traffic:g} while it runs"
        )
    later = [(i + 1, s.traffic) for i, s in enumerate(rollout.steps) if i + 1 > state.step]
    if not later:
        raise Conflict(
            f"experiment {record.key!r} is at the last step of its rollout "
            f"(traffic {state.traffic:g}): nothing to ramp"
        )
    if to is None:
        return later[0][0]
    for number, traffic in later:
        if abs(traffic - to) < 1e-9:
            return number
    shares = ", ".join(f"{t:g}" for _, t in later)
    raise ValidationFailed(
        "the ramp's target share is not a later step of the rollout",
        [field_error("to", f"{to:g} is not one of the later steps' traffic: {shares}")],
    )


def announce_step(runtime: Runtime, record: ExperimentRecord, data: Mapping[str, Any]) -> None:
    """Send the ``rollout.step`` webhook for the step ``record`` is now at."""
    if runtime.webhooks is None or record.rollout is None:
        return
    assert record.spec.rollout is not None
    runtime.webhooks.send(
        STEP_EVENT,
        record.key,
        {
            "step": record.rollout.step,
            "steps": len(record.spec.rollout.steps),
            "traffic": record.rollout.traffic,
            "version": record.version,
            "actor": record.rollout.history[-1].actor,
            **data,
        },
        record.spec.webhooks,
    )


async def ramp(
    runtime: Runtime,
    record: ExperimentRecord,
    doc: Mapping[str, Any],
    actor: str,
    *,
    to: float | None = None,
    reason: str | None = None,
    via: str | None = None,
    now: float | None = None,
) -> ExperimentRecord:
    """Move ``record``'s rollout up (to the next step, or the step at share ``to``), given its
    current results ``doc`` (the units so far and the gate, for the audit entry)."""
    number = target_step(record, to)
    assert record.rollout is not None
    gate = rollout_gate(record, doc, time.time() if now is None else now)
    detail: dict[str, Any] = {}
    if reason:
        detail["reason"] = reason
    if via:
        detail["via"] = via
    if gate is not None:
        detail["gate"] = gate.state
        if gate.held_by:
            detail["held_by"] = list(gate.held_by[:10])
    units = doc.get("units")
    total = (
        int(sum(n for n in units.values() if isinstance(n, int | float)))
        if isinstance(units, Mapping)
        else 0
    )
    changed = await runtime.experiments.ramp(
        record.key,
        actor,
        from_step=record.rollout.step,
        to_step=number,
        units_at_start=total,
        detail=detail,
    )
    log.info(
        "%s ramped %s from step %d (%g) to step %d (%g): %s",
        actor,
        record.key,
        record.rollout.step,
        record.rollout.traffic,
        number,
        changed.current_traffic,
        reason or "no reason given",
    )
    announce_step(
        runtime,
        changed,
        {"from_step": record.rollout.step, "from_traffic": record.rollout.traffic, **detail},
    )
    return changed
