"""Exposure streams: one Redis stream per experiment, one entry per exposure.

Entry fields (the contract with the aggregator): ``experiment``, ``unit_id``,
``variant``, ``version``, ``timestamp`` (epoch seconds, as a decimal string) and
``attributes`` (a JSON object, ``{}`` when the unit sent none).

Rows are written by a Lua script, one call per experiment and up to
:data:`MAX_ROWS_PER_CALL` rows, packed as one JSON array: encoding a batch costs one
``orjson.dumps`` instead of a command per row, which is what lets ``/v1/assign`` log
every exposure.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import orjson
from redis.exceptions import ResponseError

from service.store import keys
from service.store.connection import RedisClient
from service.store.scripts import lua

__all__ = ["MAX_ROWS_PER_CALL", "AppendResult", "ExposureLog", "ExposureRow", "RunResult"]

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


@dataclass(frozen=True, slots=True)
class RunResult:
    """The outcome of one run (one experiment's rows, in order).

    ``done`` rows from the front are settled: stored, or set aside as ``unencodable``
    (they are among the ``done``). The rest were not stored because Redis answered
    ``error`` to one of their script calls; they may be retried (a retry can duplicate
    some, which the aggregator's per-unit state absorbs).
    """

    done: int
    unencodable: int = 0
    error: str | None = None


def _packed(row: ExposureRow) -> list[str]:
    _, unit_id, variant, version, timestamp, attributes = row
    encoded = orjson.dumps(attributes).decode() if attributes else _NO_ATTRIBUTES
    return [unit_id, variant, str(version), f"{timestamp:.6f}", encoded]


def _encode(rows: Sequence[ExposureRow]) -> tuple[bytes, int, str | None]:
    """The JSON array for the script, plus how many rows could not be encoded."""
    try:
        return orjson.dumps([_packed(row) for row in rows]), 0, None
    except (TypeError, UnicodeEncodeError) as exc:  # orjson.JSONEncodeError is a TypeError
        good: list[list[str]] = []
        error = str(exc)
        for row in rows:
            try:
                packed = _packed(row)
                orjson.dumps(packed)
            except (TypeError, UnicodeEncodeError):
                continue
            good.append(packed)
        return orjson.dumps(good), len(rows) - len(good), error


class ExposureLog:
    """Appends exposures to ``keys.exposures_stream(experiment)``; never trims (the aggregator
    reads the streams through a consumer group and owns their retention)."""

    def __init__(self, redis: RedisClient) -> None:
        self._redis = redis
        self._script = redis.register_script(lua("exposures_append"))

    async def write_runs(self, runs: Sequence[Sequence[ExposureRow]]) -> list[RunResult]:
        """Write each run (the rows of one experiment, in order) in one pipeline.

        Connection failures raise: nothing is known to be written, the caller retries all.
        What Redis refuses (out of memory, a key of the wrong type) ends its run there; the
        rows from that call on are reported not done, for the caller to retry later.
        """
        plan: list[tuple[int, int, int]] = []  # (run, rows in the call, unencodable)
        async with self._redis.pipeline(transaction=False) as pipe:
            for index, run in enumerate(runs):
                if not run:
                    continue
                experiment = run[0][0]
                stream = keys.exposures_stream(experiment)
                for start in range(0, len(run), MAX_ROWS_PER_CALL):
                    chunk = run[start : start + MAX_ROWS_PER_CALL]
                    packed, bad, error = _encode(chunk)
                    if bad:
                        log.error(
                            "%d exposures of %r cannot be encoded: %s", bad, experiment, error
                        )
                    plan.append((index, len(chunk), bad))
                    await self._script(keys=[stream], args=[experiment, packed], client=pipe)
                await asyncio.sleep(0)  # encoding is CPU work: let requests in between runs
            replies = await pipe.execute(raise_on_error=False) if plan else []
        done = [0] * len(runs)
        unencodable = [0] * len(runs)
        errors: list[str | None] = [None] * len(runs)
        for (index, size, bad), reply in zip(plan, replies, strict=True):
            if isinstance(reply, ResponseError):
                errors[index] = errors[index] or str(reply)
            elif isinstance(reply, Exception):
                raise reply
            elif errors[index] is None:  # only a prefix of a run counts as done
                done[index] += size
                unencodable[index] += bad
        return [RunResult(d, u, e) for d, u, e in zip(done, unencodable, errors, strict=True)]

    async def append(self, rows: Sequence[ExposureRow]) -> AppendResult:
        """Write ``rows`` (any experiments) in one pipeline; no retry (scripts and tests)."""
        by_experiment: dict[str, list[ExposureRow]] = {}
        for row in rows:
            by_experiment.setdefault(row[0], []).append(row)
        runs = list(by_experiment.values())
        results = await self.write_runs(runs)
        written = sum(r.done - r.unencodable for r in results)
        failed = len(rows) - written
        first_error = next((r.error for r in results if r.error), None)
        return AppendResult(written=written, failed=failed, first_error=first_error)
