"""Exposure streams: one Redis stream per experiment, one entry per exposure.

Entry fields (the contract with the aggregator): ``experiment``, ``unit_id``,
``variant``, ``version``, ``timestamp`` (epoch seconds, as a decimal string) and
``attributes`` (a JSON object, ``{}`` when the unit sent none).

Rows are written by a Lua script, one call per experiment with its rows packed
as one JSON array: encoding a batch costs one ``orjson.dumps`` instead of a
command per row, which is what lets ``/v1/assign`` log every exposure.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import orjson
from redis.exceptions import ResponseError

from service.store import keys
from service.store.connection import RedisClient
from service.store.scripts import lua

__all__ = ["MAX_ROWS_PER_CALL", "AppendResult", "ExposureLog", "ExposureRow"]

log = logging.getLogger("sharpen.store")

ExposureRow = tuple[str, str, str, int, float, Mapping[str, object] | None]
"""``(experiment, unit_id, variant, version, epoch seconds, attributes)``: cheap to queue."""

MAX_ROWS_PER_CALL = 500
"""Rows per script call: bounds how long one call holds Redis (about 1 ms)."""

_NO_ATTRIBUTES = "{}"


@dataclass(frozen=True, slots=True)
class AppendResult:
    """How many rows Redis stored, and how many could not be (refused or unencodable)."""

    written: int
    failed: int
    first_error: str | None = None


def _packed(row: ExposureRow) -> list[str]:
    _, unit_id, variant, version, timestamp, attributes = row
    encoded = orjson.dumps(attributes).decode() if attributes else _NO_ATTRIBUTES
    return [unit_id, variant, str(version), f"{timestamp:.6f}", encoded]


def _encode(rows: Sequence[ExposureRow]) -> tuple[bytes, int, str | None]:
    """The JSON array for the script, plus how many rows could not be encoded."""
    try:
        return orjson.dumps([_packed(row) for row in rows]), 0, None
    except (orjson.JSONEncodeError, UnicodeEncodeError) as exc:
        good: list[list[str]] = []
        error = str(exc)
        for row in rows:
            try:
                packed = _packed(row)
                orjson.dumps(packed)
            except (orjson.JSONEncodeError, UnicodeEncodeError):
                continue
            good.append(packed)
        return orjson.dumps(good), len(rows) - len(good), error


class ExposureLog:
    """Appends exposures to ``keys.exposures_stream(experiment)``; never trims (the aggregator
    reads the streams through a consumer group and owns their retention)."""

    def __init__(self, redis: RedisClient) -> None:
        self._redis = redis
        self._script = redis.register_script(lua("exposures_append"))

    async def append(self, rows: Sequence[ExposureRow]) -> AppendResult:
        """Write ``rows`` in one pipeline (a script call per experiment and 500 rows).

        Connection failures raise: nothing is known to be written, the caller retries
        (a retry may duplicate entries, which the aggregator's per-unit state absorbs).
        What Redis itself refuses (a key of the wrong type) or what cannot be encoded
        is counted in ``failed``, since retrying it cannot succeed.
        """
        if not rows:
            return AppendResult(0, 0)
        by_experiment: dict[str, list[ExposureRow]] = {}
        for row in rows:
            by_experiment.setdefault(row[0], []).append(row)
        calls: list[int] = []
        failed = 0
        first_error: str | None = None
        async with self._redis.pipeline(transaction=False) as pipe:
            for experiment, group in by_experiment.items():
                stream = keys.exposures_stream(experiment)
                for start in range(0, len(group), MAX_ROWS_PER_CALL):
                    chunk = group[start : start + MAX_ROWS_PER_CALL]
                    packed, bad, error = _encode(chunk)
                    failed += bad
                    first_error = first_error or error
                    calls.append(len(chunk) - bad)
                    await self._script(keys=[stream], args=[experiment, packed], client=pipe)
            replies = await pipe.execute(raise_on_error=False)
        written = 0
        for expected, reply in zip(calls, replies, strict=True):
            if isinstance(reply, ResponseError):
                failed += expected
                first_error = first_error or str(reply)
            elif isinstance(reply, Exception):
                raise reply
            else:
                written += int(reply)
        return AppendResult(written=written, failed=failed, first_error=first_error)
