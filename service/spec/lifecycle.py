"""Experiment statuses and the transitions between them."""

from __future__ import annotations

from typing import Literal

__all__ = ["ACTIONS", "ENDED", "Action", "Status", "next_status"]

Status = Literal["draft", "running", "shipped", "rolled_back", "stopped"]
Action = Literal["start", "stop", "ship", "rollback"]

ENDED: frozenset[str] = frozenset({"shipped", "rolled_back", "stopped"})

_TRANSITIONS: dict[tuple[str, str], Status] = {
    ("draft", "start"): "running",
    ("running", "stop"): "stopped",
    ("running", "ship"): "shipped",
    ("running", "rollback"): "rolled_back",
}

ACTIONS: tuple[Action, ...] = ("start", "stop", "ship", "rollback")


def next_status(current: str, action: str) -> Status | None:
    """The status ``action`` leads to from ``current``, or None when it is not allowed."""
    return _TRANSITIONS.get((current, action))
