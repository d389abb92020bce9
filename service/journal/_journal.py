"""The journal: one entry per ended experiment, plus each model line's current baseline."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from service.journal._entry import JournalEntry, build_entry, line_of
from service.journal._summary import LeverSummary, LineSummary, lever_summaries, line_summaries
from service.spec import ExperimentRecord
from service.store.connection import RedisClient
from service.store.journal import JournalStore

__all__ = ["Journal"]

log = logging.getLogger("sharpen.journal")


class Journal:
    def __init__(self, redis: RedisClient, clock: Callable[[], float] = time.time) -> None:
        self._store = JournalStore(redis)
        self._clock = clock

    async def record(
        self,
        record: ExperimentRecord,
        results: Mapping[str, Any] | None,
        actor: str,
        *,
        results_error: str | None = None,
    ) -> JournalEntry | None:
        """Write the entry of an ended experiment; None if it already had one (written once).

        A ``ship`` also makes the shipped variant the baseline of the experiment's line.
        """
        entry = build_entry(record, results, actor, now=self._clock(), results_error=results_error)
        if not await self._store.add(record.key, entry.model_dump_json()):
            return None
        if entry.status == "shipped" and entry.variant is not None:
            baseline = {
                "line": entry.line,
                "experiment": entry.experiment,
                "variant": entry.variant,
                "payload": entry.payload,
                "spec_version": entry.spec_version,
                "shipped_at": entry.ended_at,
                "shipped_by": entry.actor,
            }
            await self._store.set_line(entry.line, orjson.dumps(baseline).decode())
        log.info("journal: %s %s by %s", record.key, entry.status, actor)
        return entry

    async def get(self, key: str) -> JournalEntry | None:
        raw = await self._store.get(key)
        return None if raw is None else JournalEntry.model_validate_json(raw)

    async def has(self, key: str) -> bool:
        return await self._store.get(key) is not None

    async def missing(self, experiment_keys: list[str]) -> list[str]:
        """The keys among ``experiment_keys`` that have no entry yet."""
        present = await self._store.present(experiment_keys)
        return [k for k, there in zip(experiment_keys, present, strict=True) if not there]

    async def entries(self) -> list[JournalEntry]:
        """Every entry, in the order the experiments ended."""
        return [JournalEntry.model_validate_json(raw) for raw in await self._store.all()]

    async def baselines(self) -> dict[str, dict[str, Any]]:
        """Each model line's current baseline: the variant its last ``ship`` promoted."""
        return {line: orjson.loads(raw) for line, raw in (await self._store.lines()).items()}

    async def baseline_of(self, record: ExperimentRecord) -> dict[str, Any] | None:
        """Where the next iteration of ``record``'s line starts from (None before any ship)."""
        return (await self.baselines()).get(line_of(record.spec))

    async def backtests(self, limit: int = 100) -> list[dict[str, Any]]:
        """Verdicts of backtests (``POST /v1/backtest``) on historical data, newest first."""
        return list(reversed(await self._store.backtests(limit)))

    async def lines(self) -> list[LineSummary]:
        return line_summaries(await self.entries(), await self.baselines())

    async def levers(self) -> list[LeverSummary]:
        return lever_summaries(await self.entries())
