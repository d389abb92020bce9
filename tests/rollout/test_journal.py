"""The journal's yearly value counts a ramp's steps at their share of the traffic."""

from __future__ import annotations

from typing import Any

import pytest

from service.journal import Journal
from service.spec import ExperimentSpec
from service.store import ExperimentStore, RedisSettings, close, connect
from tests.monitor._support import primary_row, results_doc
from tests.rollout._support import ramped_spec

DAY = 86_400.0


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


async def test_daily_units_of_a_ramped_experiment(redis_url: str) -> None:
    redis = await connect(RedisSettings(url=redis_url))
    try:
        clock = Clock()
        store, journal = ExperimentStore(redis, clock=clock), Journal(redis, clock=clock)
        steps: list[dict[str, Any]] = [{"traffic": 0.1, "min_duration": "1d"}, {"traffic": 1.0}]
        spec = ramped_spec(steps=steps, impact={"value_per_unit": 1.0, "currency": "USD"})
        await store.create(ExperimentSpec.model_validate(spec), actor="alice")
        await store.transition("fraud-v7", "start", "alice")
        clock.now += DAY
        await store.ramp("fraud-v7", "monitor", from_step=1, to_step=2, units_at_start=200)
        clock.now += DAY
        record = await store.transition("fraud-v7", "ship", "alice")
        doc = results_doc(
            units=(1100, 1100), primary=primary_row(0.05, (0.01, 0.09), 0.03, (0.01, 0.05))
        )
        entry = await journal.record(record, doc, "alice")
        assert entry is not None and entry.value is not None
        # 2,200 units: a day at 10 % and a day at 100 % is 1.1 days at the full share
        assert entry.value.daily_units == pytest.approx(2000)
        assert entry.spec_version == 2  # the ramp made version 2
    finally:
        await close(redis)
