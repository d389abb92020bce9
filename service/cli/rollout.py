"""``sharpen ramp KEY [--to SHARE]``, and the rollout part of ``sharpen get``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from service import format as fmt
from service.cli._http import AdminAPI

__all__ = ["ramp", "rollout_lines", "rollout_table"]

console = Console()


def rollout_table(rollout: Mapping[str, Any]) -> Table:
    """Each step of a results document's ``rollout`` section, one row each."""
    table = Table("step", "traffic", "min time", "min units", "started", "units", "by", "state")
    for step in rollout.get("schedule") or []:
        table.add_row(
            str(step.get("step")),
            fmt.share(step.get("traffic")),
            fmt.MISSING if not step.get("min_duration_s") else str(step.get("min_duration")),
            fmt.MISSING if not step.get("min_units") else fmt.count(step.get("min_units")),
            fmt.timestamp(step.get("started_at")),
            fmt.count(step.get("units")),
            str(step.get("actor") or fmt.MISSING),
            str(step.get("state")),
        )
    return table


def rollout_lines(key: str, rollout: Mapping[str, Any]) -> list[str]:
    """Where the ramp stands and what it waits for, in words."""
    mode = "advances by itself" if rollout.get("auto_advance") else "a person advances it"
    step = rollout.get("step")
    if step is None:
        return [f"rollout: {rollout.get('steps')} steps, not started ({mode})"]
    lines = [
        f"rollout: step {step} of {rollout.get('steps')} at {fmt.share(rollout.get('traffic'))} "
        f"of {fmt.share(rollout.get('final_traffic'))} ({mode})"
    ]
    gate = rollout.get("gate")
    if not isinstance(gate, Mapping):
        return lines
    state = gate.get("state")
    if state == "complete":
        lines.append("at its full share: the ramp is done")
        return lines
    following = f"step {int(step) + 1} ({fmt.share(gate.get('next_traffic'))})"
    if state == "held":
        lines.append(f"held before {following} by:")
        lines += [f"  - {reason}" for reason in gate.get("held_by") or []]
    elif state == "ready" and gate.get("advance"):
        lines.append(f"gate passed: the monitor ramps to {following} on its next pass")
    else:
        lines.append(f"waiting before {following} for:")
    lines += [f"  - {reason}" for reason in gate.get("waiting_for") or []]
    if state == "ready" and not gate.get("advance"):
        lines.append(f"the gate is clear: `sharpen ramp {key}` moves it to {following}")
    return lines


def ramp(
    key: str = typer.Argument(..., help="Experiment key"),
    to: float = typer.Option(
        None, "--to", min=0.0, max=1.0, help="Ramp to this share (a later step's traffic)"
    ),
    reason: str = typer.Option(None, help="Why (kept in the audit log)"),
    url: str = typer.Option(
        None, "--url", help="Service URL [SHARPEN_URL, default http://127.0.0.1:8000]"
    ),
    api_key: str = typer.Option(None, "--api-key", help="Admin key [SHARPEN_API_KEY, else dev]"),
) -> None:
    """Ramp a running experiment's rollout up: to the next step, or to the step at --to."""
    body: dict[str, Any] = {}
    if to is not None:
        body["to"] = to
    if reason:
        body["reason"] = reason
    with AdminAPI(url, api_key) as api:
        record = api.request("POST", f"/v1/experiments/{key}/ramp", body or None)
    state = record.get("rollout") or {}
    steps = len(((record.get("spec") or {}).get("rollout") or {}).get("steps") or [])
    console.print(
        f"{record['key']}: step {state.get('step')} of {steps}, traffic "
        f"{fmt.share(state.get('traffic'))} (version {record['version']})"
    )
