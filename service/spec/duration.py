"""Durations as people write them in specs: ``90s``, ``30m``, ``6h``, ``1d``, ``1h30m``.

The one parser of durations (a number of seconds, the compact form, or ISO 8601 such as
``PT6H`` through pydantic's own ``timedelta`` parser). Stored and shown in the compact
form, so a spec reads back as it was written.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Annotated, Any, Final

from pydantic import BeforeValidator, PlainSerializer, TypeAdapter, ValidationError, WithJsonSchema

__all__ = ["MAX_SECONDS", "MAX_TEXT", "Duration", "format_duration", "parse_duration"]

MAX_SECONDS: Final = 366 * 86_400.0
MAX_TEXT: Final = 64
_UNITS: Final = {"w": 604_800, "d": 86_400, "h": 3600, "m": 60, "min": 60, "s": 1}
_PART = r"(\d+(?:\.\d+)?)\s*(w|d|h|min|m|s)"
_COMPACT = re.compile(rf"^(?:{_PART}\s*)+$")
_PARTS = re.compile(_PART)
_TIMEDELTA: Final = TypeAdapter(dt.timedelta)


def parse_duration(value: Any) -> float:
    """Seconds in ``value``; ``ValueError`` (naming what is accepted) when it is not one."""
    if isinstance(value, str) and len(value) > MAX_TEXT:
        raise ValueError(f"a duration is at most {MAX_TEXT} characters (got {len(value)})")
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or text such as '6h' or '1d'")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, dt.timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, str) and _COMPACT.match(text := value.strip().lower()):
        seconds = sum(float(n) * _UNITS[unit] for n, unit in _PARTS.findall(text))
    elif isinstance(value, str) and value.strip()[:1] in ("P", "p"):
        try:
            seconds = _TIMEDELTA.validate_python(value.strip().upper()).total_seconds()
        except ValidationError:
            raise ValueError(f"{value!r} is not an ISO 8601 duration") from None
    else:
        raise ValueError(
            f"{value!r} is not a duration: give seconds, or e.g. '90s', '30m', '6h', '1d', "
            "'1h30m' (or ISO 8601, 'PT6H')"
        )
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError("a duration is finite and not negative")
    if seconds > MAX_SECONDS:
        raise ValueError("a duration is at most 366 days")
    return seconds


def format_duration(seconds: float) -> str:
    """The compact form: ``3600`` → ``1h``, ``5400`` → ``1h30m``, ``0`` → ``0s``."""
    rest = round(seconds, 3)
    parts: list[str] = []
    for unit in ("d", "h", "m"):
        size = _UNITS[unit]
        whole = int(rest // size)
        if whole:
            parts.append(f"{whole}{unit}")
            rest = round(rest - whole * size, 3)
    if rest or not parts:
        parts.append(f"{rest:g}s")
    return "".join(parts)


Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "examples": ["90s", "30m", "6h", "1d", "1h30m"]},
                {"type": "number", "minimum": 0},
            ],
            "description": "Seconds, or text such as '6h', '1d', '1h30m' (or ISO 8601).",
        }
    ),
]
"""A non-negative duration in seconds, read by :func:`parse_duration`."""
