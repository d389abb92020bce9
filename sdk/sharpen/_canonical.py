"""Canonical string form of attribute values and unit ids, and the unit id limit.

Attributes arrive as JSON scalars, so targeting compares one canonical string
per value, the same in every language:

- a string is itself;
- ``true`` / ``false`` are ``"true"`` / ``"false"`` (never Python's ``"True"``);
- an integer, or a float with an integral value below 1e21 in magnitude, is
  its plain decimal digits (``1``, ``1.0`` and ``-0.0`` give ``"1"``, ``"1"``,
  ``"0"``, as JavaScript prints them);
- any other float is its shortest round-trip ``repr`` (``"0.1"``, ``"1e+21"``,
  ``"nan"``, ``"inf"``);
- ``None`` and anything else (lists, objects) have no canonical form: such an
  attribute counts as missing.
"""

from __future__ import annotations

from typing import Final

__all__ = ["MAX_UNIT_ID", "canonical"]

MAX_UNIT_ID: Final = 256
"""Longest unit id, in characters (code points) of its canonical form.

The one limit every part applies: the service's assign, batch assign, exposures and
events routes refuse longer ids (422 naming the field), ``track()`` raises, and
evaluation gives such a unit the baseline with reason ``invalid_unit`` (never in the
experiment), so no unit is assigned that could not report its outcomes.
"""

_INTEGRAL_LIMIT: Final = 1e21


def canonical(value: object) -> str | None:
    """Canonical string of a scalar attribute value, ``None`` if it has none.

    >>> [canonical(v) for v in ("US", True, 3, 3.0, 0.5, None)]
    ['US', 'true', '3', '3', '0.5', None]
    """
    kind = type(value)
    if kind is str:
        return value  # type: ignore[return-value]
    if kind is bool:
        return "true" if value else "false"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        if value.is_integer() and abs(value) < _INTEGRAL_LIMIT:
            return str(int(value))
        return repr(float(value))
    if isinstance(value, str):
        return str.__str__(value)
    return None
