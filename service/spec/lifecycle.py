"""Experiment statuses and the transitions between them: every other module names a
status through these types and tuples."""

from __future__ import annotations

from typing import Literal, get_args

__all__ = [
    "ACTIONS",
    "ENDED",
    "ENDING_ACTION",
    "STATUSES",
    "Action",
    "EndedStatus",
    "Status",
    "next_status",
]

EndedStatus = Literal["shipped", "rolled_back", "stopped"]
Status = Literal["draft", "running", "shipped", "rolled_back", "stopped"]
Action = Literal["start", "stop", "ship", "rollback"]

STATUSES: tuple[Status, ...] = get_args(Status)
ENDED: frozenset[str] = frozenset(get_args(EndedStatus))
ACTIONS: tuple[Action, ...] = get_args(Action)

ENDING_ACTION: dict[EndedStatus, Action] = {
    "shipped": "ship",
    "rolled_back": "rollback",
    "stopped": "stop",
}
"""The action that ends an experiment in each end status."""

_TRANSITIONS: dict[tuple[str, str], Status] = {
    ("draft", "start"): "running",
    **{("running", action): status for status, action in ENDING_ACTION.items()},
}


def next_status(current: str, action: str) -> Status | None:
    """The status ``action`` leads to from ``current``, or None when it is not allowed."""
    return _TRANSITIONS.get((current, action))
