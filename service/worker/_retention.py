"""Delete the state of experiments that ended ``experiment_state_retention_s`` ago."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from service.spec import ENDED, ExperimentRecord
from service.store.retention import StateRetention

__all__ = ["RetentionSweep"]

log = logging.getLogger("sharpen.worker")


class RetentionSweep:
    """Run by the aggregator at each full refresh; remembers what it finished."""

    def __init__(self, retention: StateRetention, retention_s: float) -> None:
        self._retention = retention
        self._retention_s = retention_s
        self._finished: set[str] = set()

    def due(self, record: ExperimentRecord, now: float) -> bool:
        return (
            record.status in ENDED
            and record.ended_at is not None
            and record.ended_at + self._retention_s <= now
            and record.key not in self._finished
        )

    async def run(self, records: Iterable[ExperimentRecord], now: float) -> list[str]:
        """Delete what is due; return the keys whose state this pass deleted."""
        deleted: list[str] = []
        for record in records:
            if not self.due(record, now):
                continue
            marker = await self._retention.deleted(record.key)
            if marker is None or not marker.done:
                gone = await self._retention.delete(record.key, record.spec.segment_names, now)
                log.info(
                    "retention: deleted the state of %s (%d keys), ended %.1f days ago",
                    record.key,
                    gone,
                    (now - (record.ended_at or now)) / 86_400,
                )
                deleted.append(record.key)
            self._finished.add(record.key)
        return deleted
