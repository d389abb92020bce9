"""Result types handed to callers: :class:`Assignment` and its payload."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final, Literal, get_args

__all__ = [
    "EMPTY_PAYLOAD",
    "REASONS",
    "Assignment",
    "Reason",
    "UnexposedAssignment",
    "freeze",
    "thaw",
]

Reason = Literal[
    "assigned",
    "shipped",
    "rolled_back",
    "stopped",
    "not_running",
    "targeting",
    "layer",
    "holdout",
    "traffic",
    "invalid_unit",
    "unknown_experiment",
    "fallback",
    "override",
]
"""Why a unit got its variant; ``assigned`` is the only one in the experiment. ``override``:
forced by the client (``overrides=`` or ``force()``), not exposed nor counted."""

REASONS: Final[frozenset[str]] = frozenset(get_args(Reason))

EMPTY_PAYLOAD: Final[Mapping[str, Any]] = MappingProxyType({})


def freeze(value: Any) -> Any:
    """Read-only deep copy of JSON data: objects become mappings, arrays tuples."""
    if isinstance(value, Mapping):
        return MappingProxyType({str(k): freeze(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """Plain JSON-serialisable copy of :func:`freeze` output (dicts and lists)."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [thaw(v) for v in value]
    return value


@dataclass(frozen=True, slots=True)
class Assignment:
    """The variant a unit gets in an experiment, and why.

    ``payload`` is the variant's read-only payload (nested objects are
    mappings, arrays are tuples); ``in_experiment`` is true only for
    ``reason == "assigned"``, the units that count in the analysis.  ``reason``
    is one of :data:`Reason` (a newer service may send others).
    """

    experiment: str
    variant: str | None
    payload: Mapping[str, Any] = field(hash=False)
    in_experiment: bool
    reason: str

    def as_dict(self) -> dict[str, Any]:
        """The ``POST /v1/assign`` response body for this assignment."""
        return {
            "experiment": self.experiment,
            "variant": self.variant,
            "payload": thaw(self.payload),
            "in_experiment": self.in_experiment,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class UnexposedAssignment(Assignment):
    """An in-experiment answer of ``assign(..., expose=False)``: what ``client.expose()``
    needs to log its exposure later (the unit, its attributes, the config version)."""

    unit_id: str = field(default="", repr=False)
    attributes: Mapping[str, object] | None = field(default=None, repr=False, hash=False)
    config_version: int = field(default=0, repr=False)
