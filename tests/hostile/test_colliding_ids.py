"""Event ids built to collide in the old dedup scheme cost no more than ordinary ones.

Before issue 12 an id's dedup field was the first 2 bytes of its *unkeyed* murmur3 hash,
so ids sharing one field could be searched for offline; the dedup script then scanned and
rewrote an ever longer field for each of them (quadratic: 6 batches of 5,000 took 37 s and
blocked Redis for 8.5 s per call). The ids here are found the same way, seeded
(``loadtests/colliding_ids.py``), and checked against the old rule. With keyed fingerprints
they spread over the fields like any ids: no field holds more than a handful, so a call's
work does not depend on which ids a client picks (``loadtests/bench_hostile.py`` times it).
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import redis

from loadtests.colliding_ids import colliding_ids, old_field
from service.store import keys
from tests._live import LiveServer
from tests.conftest import CLIENT
from tests.hostile._ingest import event, ingested
from tests.hostile.conftest import HealthProbe

IDS = 600
BATCH = 200
MAX_PER_FIELD = 6
"""600 ids over 65,536 fields: a field with more than 6 has a chance below 1e-10."""


def _post(exp_http: httpx.Client, events: list[dict[str, Any]], key: str | None) -> dict[str, Any]:
    headers = {**CLIENT, **({"Idempotency-Key": key} if key else {})}
    response = exp_http.post("/v1/events", json={"events": events}, headers=headers)
    assert response.status_code == 202, response.text
    answer: dict[str, Any] = response.json()
    return answer


def test_ids_colliding_in_the_old_scheme_spread_like_any_ids(
    live_server: LiveServer, exp_http: httpx.Client, redis_url: str
) -> None:
    ids = colliding_ids(IDS, seed=2024)
    assert len({old_field(i) for i in ids}) == 1  # one field under the old scheme
    events = [event(event_id, "exp") for event_id in ids]
    batches = [events[i : i + BATCH] for i in range(0, IDS, BATCH)]
    with HealthProbe(live_server.url, path="/readyz") as probe:
        keyed = [(uuid.uuid4().hex, batch) for batch in batches]
        answers = [_post(exp_http, batch, key) for key, batch in keyed]
        replays = [_post(exp_http, batch, key) for key, batch in keyed]
        resent: list[dict[str, Any]] = []
        while len(probe.latencies_s) < 40:  # keep resending until the probe can judge
            resent += [_post(exp_http, batch, None) for batch in batches]
    assert [a["accepted"] for a in answers] == [BATCH] * len(batches)
    assert replays == answers
    assert {(a["accepted"], a["duplicates"]) for a in resent} == {(0, BATCH)}

    assert ingested(redis_url, "exp") == IDS
    raw = redis.Redis.from_url(redis_url)
    fields = raw.hgetall(keys.event_ids("exp"))
    entries = {name: len(value) // 12 for name, value in fields.items() if name != b"salt"}
    assert sum(entries.values()) == IDS
    assert max(entries.values()) <= MAX_PER_FIELD, sorted(entries.values())[-5:]
    probe.assert_responsive()
