"""Which segment values get a row: declared ones always, the others by volume (never by
arrival), within a fixed memory bound; ``__other__`` is the rest, and it all adds up.

Each test runs the real aggregator on real Redis in phases and compares every cell with
numpy on the same events, with each unit's country replaced by the row it should count in.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import msgspec
import numpy as np
import redis

from service.settings import Settings
from service.store import keys
from tests.conftest import ADMIN, CLIENT, make_settings, running_app
from tests.ingest._helpers import (
    FAST,
    Unit,
    aggregate,
    assert_same,
    batches,
    make_events,
    observed,
    read_cells,
    reference,
    spec,
)

OTHER = "__other__"


def _units(rng: np.random.Generator, prefix: str, countries: list[str]) -> list[Unit]:
    return [
        Unit(f"{prefix}{i}", ("baseline", "candidate")[i % 2], {"country": c}, None)
        for i, c in enumerate(countries)
    ]


class Phases:
    """Post each phase's events, aggregate them, keep every event for the reference."""

    def __init__(self, settings: Settings, doc: dict[str, Any], rng: np.random.Generator) -> None:
        self.settings, self.doc, self.rng = settings, doc, rng
        self.key = str(doc["key"])
        self.events: list[dict[str, Any]] = []
        self.start = 0.0

    def run(self, units: list[Unit], per_unit: tuple[int, int] = (1, 3)) -> None:
        events = make_events(self.rng, self.key, units, per_unit=per_unit)
        with running_app(self.settings) as client:
            if not self.events:
                assert client.post("/v1/experiments", json=self.doc, headers=ADMIN).is_success
                assert client.post(f"/v1/experiments/{self.key}/start", headers=ADMIN).is_success
            for chunk in batches(events, 1000):
                sent = client.post("/v1/events", json={"events": chunk}, headers=CLIENT)
                assert sent.status_code == 202, sent.text
        asyncio.run(aggregate(self.settings, [self.key]))
        self.events += events

    def check(self, row_of: Callable[[str, str], str]) -> dict[str, int]:
        """Every cell equals numpy's with ``row_of(unit_id, country)`` as each unit's country;
        returns the units per row."""
        mapped = [
            {**e, "attributes": {"country": row_of(e["unit_id"], e["attributes"]["country"])}}
            for e in self.events
        ]
        doc = {**self.doc, "segments": ["country"]}
        cells = asyncio.run(read_cells(self.settings, self.key))
        assert_same(observed(cells), reference(doc, mapped))
        for hour in cells.hours:
            assert_same(observed(cells, hour=hour), reference(doc, mapped, until_hour=hour))
        rows: dict[str, int] = {}
        for cell in cells.totals():
            if cell.segment is not None and cell.metric == cells.metrics[0]:
                rows[cell.segment[1]] = rows.get(cell.segment[1], 0) + cell.n
        return rows


def test_junk_first_then_volume_takes_the_rows(redis_url: str, redis_sync: redis.Redis) -> None:
    settings = make_settings(redis_url, segment_max_values=3, segment_candidates_max=20, **FAST)
    phases = Phases(settings, spec("rank-exp", segments=("country",)), np.random.default_rng(1))
    phases.run(_units(phases.rng, "j", [f"junk-{i:03d}" for i in range(200)]), per_unit=(1, 1))
    # The memory bound: 3 rows, 20 candidates, one error per candidate, one epoch per row.
    assert redis_sync.zcard(keys.segment_ranked("rank-exp", "country")) == 3
    assert redis_sync.zcard(keys.segment_candidates("rank-exp", "country")) == 20
    assert redis_sync.hlen(keys.segment_state("rank-exp")) <= 3 + 20 + 1
    first = {f"junk-{i:03d}" for i in range(3)}  # the slots were free: taken as they came
    assert phases.check(lambda _, c: c if c in first else OTHER) == {
        **dict.fromkeys(first, 1),
        OTHER: 197,
    }

    phases.run(_units(phases.rng, "a", ["US"] * 300 + ["FR"] * 200 + ["CA"] * 50))
    big = {"US", "FR", "CA"}
    assert phases.check(lambda _, c: c if c in big else OTHER) == {
        "US": 300,
        "FR": 200,
        "CA": 50,
        OTHER: 200,
    }

    # DE outgrows CA twice over: CA's row goes, its units count in __other__ from now on.
    phases.run(_units(phases.rng, "d", ["DE"] * 400 + ["CA"] * 10))
    now = {"US", "FR", "DE"}
    assert phases.check(lambda _, c: c if c in now else OTHER) == {
        "US": 300,
        "FR": 200,
        "DE": 400,
        OTHER: 260,
    }


def test_a_value_promoted_late_counts_the_units_after_its_promotion(redis_url: str) -> None:
    settings = make_settings(redis_url, segment_max_values=1, **FAST)
    phases = Phases(settings, spec("late-exp", segments=("country",)), np.random.default_rng(2))
    phases.run(_units(phases.rng, "b", ["big"] * 10))
    phases.run(_units(phases.rng, "e", ["late"] * 15))  # 15 <= 2 x 10: no row yet
    assert phases.check(lambda _, c: c if c == "big" else OTHER) == {"big": 10, OTHER: 15}
    phases.run(_units(phases.rng, "l", ["late"] * 10))  # 25 > 20: late takes the row
    # Its row covers the units that entered since; the 15 before it stay in __other__.
    assert phases.check(lambda u, c: c if u.startswith("l") else OTHER) == {
        "late": 10,
        OTHER: 25,
    }


def test_declared_values_always_have_a_row(redis_url: str) -> None:
    """Even with every ranked slot taken, and for request-level experiments."""
    settings = make_settings(redis_url, segment_max_values=1, **FAST)
    doc = spec("decl-exp", unit="request", segments=("country",))
    doc["segments"] = [{"name": "country", "values": ["LU", "MT"]}]
    phases = Phases(settings, doc, np.random.default_rng(3))
    phases.run(_units(phases.rng, "r", ["US"] * 80 + ["x", "y", "z"] + ["LU"]), per_unit=(1, 1))
    assert phases.check(lambda _, c: c if c in ("US", "LU") else OTHER) == {
        "US": 80,
        "LU": 1,
        OTHER: 3,
    }


def test_units_stored_before_ranked_rows_are_in_no_segment_cell(
    redis_url: str, redis_sync: redis.Redis
) -> None:
    """A unit state (and a cell) written by an older version, with a plain segment value
    instead of a tag, neither breaks aggregation nor shows as a row."""
    settings = make_settings(redis_url, **FAST)
    doc = spec("legacy-exp", segments=("country",))
    phases = Phases(settings, doc, np.random.default_rng(5))
    phases.run(_units(phases.rng, "n", ["US"] * 20))
    metrics = len(doc["metrics"])
    legacy = msgspec.msgpack.encode(["baseline", "US", *[0] * (2 * metrics), *[False] * metrics])
    redis_sync.hset(keys.units("legacy-exp"), "old-unit", legacy)
    redis_sync.hset(keys.aggregates("legacy-exp"), "baseline||n|country|US", 7)
    phases.run([Unit("old-unit", "baseline", {"country": "US"}, None)], per_unit=(2, 2))
    assert int(redis_sync.hget(keys.aggregation_meta("legacy-exp"), "dead") or 0) == 0
    cells = asyncio.run(read_cells(settings, "legacy-exp"))
    assert {c.segment for c in cells.totals() if c.segment} == {("country", "US")}
    assert cells.units(("country", "US")) == {"baseline": 10, "candidate": 10}
    # Its events count in the whole population (it entered before: n unchanged there).
    assert cells.units() == {"baseline": 10, "candidate": 10}
    population = cells.get("baseline", "revenue")
    us = cells.get("baseline", "revenue", ("country", "US"))
    assert population is not None and us is not None and population.sum > us.sum
