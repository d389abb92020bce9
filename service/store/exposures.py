"""Exposure streams: one Redis stream per experiment, appended to in pipelined batches.

Entry fields (the contract with the aggregator): ``experiment``, ``unit_id``,
``variant``, ``version``, ``timestamp`` (epoch seconds, as a decimal string) and
``attributes`` (a JSON object, ``{}`` when the unit sent none).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import orjson

from service.store import keys
from service.store.connection import RedisClient

__all__ = ["EMPTY_ATTRIBUTES", "AppendResult", "ExposureLog", "ExposureRow"]

ExposureRow = tuple[str, str, str, int, float, Mapping[str, object] | None]
"""``(experiment, unit_id, variant, version, epoch seconds, attributes)``: cheap to queue."""

EMPTY_ATTRIBUTES = b"{}"


@dataclass(frozen=True, slots=True)
class AppendResult:
    """How many rows Redis stored, and how many it refused command by command."""

    written: int
    failed: int
    first_error: str | None = None


def _fields(row: ExposureRow) -> dict[str, str | bytes]:
    experiment, unit_id, variant, version, timestamp, attributes = row
    return {
        "experiment": experiment,
        "unit_id": unit_id,
        "variant": variant,
        "version": str(version),
        "timestamp": f"{timestamp:.6f}",
        "attributes": orjson.dumps(attributes) if attributes else EMPTY_ATTRIBUTES,
    }


class ExposureLog:
    """Appends exposures to ``keys.exposures_stream(experiment)``; never trims (the aggregator
    reads the streams through a consumer group and owns their retention)."""

    def __init__(self, redis: RedisClient) -> None:
        self._redis = redis

    async def append(self, rows: Sequence[ExposureRow]) -> AppendResult:
        """Write ``rows`` in one non-transactional pipeline.

        Connection failures raise (nothing is known to be written: the caller retries,
        and a retry may duplicate entries, which the aggregator's per-unit state absorbs).
        A command Redis itself refuses (say, a key of the wrong type) is counted in
        ``failed``, since retrying it cannot succeed.
        """
        if not rows:
            return AppendResult(0, 0)
        stream = keys.exposures_stream
        async with self._redis.pipeline(transaction=False) as pipe:
            for row in rows:
                pipe.xadd(stream(row[0]), _fields(row))  # type: ignore[arg-type]
            replies = await pipe.execute(raise_on_error=False)
        errors = [r for r in replies if isinstance(r, Exception)]
        return AppendResult(
            written=len(replies) - len(errors),
            failed=len(errors),
            first_error=str(errors[0]) if errors else None,
        )
