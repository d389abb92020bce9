"""What a POST /v1/events batch is answered, and that the answer survives being lost.

Partial batches (the valid events kept, the bad ones refused by index), the unit id limit,
replays under an Idempotency-Key, a batch committed whose answer never reached the client,
a Lua call replayed as redis-py replays it after a timeout, and Redis busy → 503.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient
from redis.exceptions import ConnectionError as RedisConnectionError

from service.store import EventStore, RedisSettings, StoredEvent, close, connect, keys
from sharpen import MAX_UNIT_ID
from tests._wait import wait_for
from tests.conftest import ADMIN, CLIENT, make_settings, running_app
from tests.ingest._helpers import ok, spec
from tests.ingest.test_events_api import event, send, stream_length


def _start(client: TestClient, key: str) -> None:
    assert client.post("/v1/experiments", json=spec(key), headers=ADMIN).status_code == 201
    assert client.post(f"/v1/experiments/{key}/start", headers=ADMIN).status_code == 200


@pytest.fixture
def client(api: TestClient) -> TestClient:
    _start(api, "exp")
    _start(api, "other")
    return api


def _ingested(redis_sync: redis.Redis, key: str = "exp") -> int:
    return int(redis_sync.hget(keys.aggregation_meta(key), "ingested") or 0)


def test_one_bad_event_does_not_cost_the_others(
    client: TestClient, redis_sync: redis.Redis
) -> None:
    # The case of issue 12: 50 valid events and one for a typo'd experiment.
    batch = [event(i) for i in range(25)] + [event(i, experiment="other") for i in range(25, 50)]
    batch.append(event(50, experiment="exq"))
    response = send(client, batch)
    assert response.status_code == 202, response.text
    assert response.json() == {
        "accepted": 50,
        "duplicates": 0,
        "rejected": [
            {
                "field": "events.50.experiment",
                "message": "experiment 'exq' does not exist",
                "index": 50,
                "code": "not_found",
                "status": 404,
            }
        ],
        "rejected_count": 1,
    }
    assert (_ingested(redis_sync), _ingested(redis_sync, "other")) == (25, 25)


def test_a_batch_with_no_valid_event_is_a_422(client: TestClient, redis_sync: redis.Redis) -> None:
    response = send(client, [event(0, experiment="ghost"), event(1, timestamp="never")])
    assert response.status_code == 422
    assert response.json()["error"]["message"] == "none of the 2 events is valid"
    assert stream_length(redis_sync) == 0


def test_refusals_are_listed_up_to_100_and_all_counted(
    client: TestClient, redis_sync: redis.Redis
) -> None:
    batch = [event(i, values={"revenue": "x"}) for i in range(300)] + [event(300)]
    answer = send(client, batch).json()
    assert (answer["accepted"], answer["rejected_count"]) == (1, 300)
    assert [r["index"] for r in answer["rejected"]] == list(range(100))
    assert all(r["field"] == f"events.{r['index']}.values.revenue" for r in answer["rejected"])
    atomic = send(client, batch[:300], atomic=True).json()["error"]
    assert (len(atomic["details"]), atomic["details_total"]) == (100, 300)


def test_one_unit_id_limit_for_every_route(client: TestClient) -> None:
    longest, too_long = "u" * MAX_UNIT_ID, "u" * (MAX_UNIT_ID + 1)
    assert send(client, [event(0, unit_id=longest)]).json() == ok(1)
    refused = send(client, [event(1, unit_id=too_long)]).json()["error"]["details"]
    assert refused[0]["field"] == "events.0.unit_id"
    for unit, status in ((longest, 200), (too_long, 422)):
        one = {"experiment": "exp", "unit_id": unit}
        assert client.post("/v1/assign", json=one, headers=CLIENT).status_code == status
        batch = {"experiment": "exp", "units": [{"unit_id": unit}]}
        assert client.post("/v1/assign/batch", json=batch, headers=CLIENT).status_code == status
        exposure = {
            "experiment": "exp",
            "unit_id": unit,
            "variant": "candidate",
            "version": 1,
            "timestamp": time.time(),
        }
        answer = client.post("/v1/exposures", json={"exposures": [exposure]}, headers=CLIENT)
        assert answer.status_code == (202 if status == 200 else 422), answer.text


def test_a_replay_gets_the_same_partial_answer(redis_url: str, redis_sync: redis.Redis) -> None:
    headers = {"Idempotency-Key": "partial-1"}
    batch = [event(0), event(1, timestamp="never"), event(2)]
    with running_app(make_settings(redis_url, event_grace_s=0)) as c:
        _start(c, "exp")
        first = send(c, batch, headers)
        assert (first.json()["accepted"], first.json()["rejected_count"]) == (2, 1)
        # Once the experiment ended its events are refused, but a replay is not re-judged.
        assert c.post("/v1/experiments/exp/stop", headers=ADMIN).status_code == 200
        wait_for(lambda: send(c, [event(7)]).status_code == 422, what="events refused")
        before = _ingested(redis_sync)
        assert send(c, batch, headers).json() == first.json()
        # The same body under the same key with atomic=true is another request: 409.
        assert send(c, batch, headers, atomic=True).status_code == 409
    assert _ingested(redis_sync) == before


def test_a_refused_batch_leaves_its_key_unused(client: TestClient) -> None:
    headers = {"Idempotency-Key": "fixed-later"}
    assert send(client, [event(0, experiment="ghost")], headers).status_code == 422
    assert send(client, [event(0)], headers).json() == ok(1)


def test_a_committed_batch_whose_answer_was_lost_gets_its_first_counts(
    client: TestClient, redis_sync: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = EventStore.settle
    lost: list[Any] = []

    async def settle_fails_once(self: EventStore, *args: Any, **kwargs: Any) -> None:
        if not lost:
            lost.append(True)  # the events are committed; the answer is not stored
            raise RedisConnectionError("connection lost before the answer was kept")
        await real(self, *args, **kwargs)

    monkeypatch.setattr(EventStore, "settle", settle_fails_once)
    headers = {"Idempotency-Key": "lost-1"}
    batch = [event(i) for i in range(5)] + [event(5, experiment="other"), event(6, variant="x")]
    first = send(client, batch, headers)
    assert first.status_code == 503 and first.headers["retry-after"] == "1"
    assert (_ingested(redis_sync), _ingested(redis_sync, "other")) == (5, 1)
    again = send(client, batch, headers)
    assert again.status_code == 202
    answer = again.json()
    assert (answer["accepted"], answer["duplicates"], answer["rejected_count"]) == (6, 0, 1)
    assert (_ingested(redis_sync), _ingested(redis_sync, "other")) == (5, 1)
    assert send(client, batch, headers).json() == answer  # and from now on from the key


def _stored(i: int) -> StoredEvent:
    return StoredEvent(f"user-{i}", "candidate", time.time(), {"revenue": 1.0})


def test_a_lua_call_replayed_after_a_timeout_answers_its_first_counts(redis_url: str) -> None:
    """What redis-py does after a socket timeout: send the same EVALSHA again."""

    async def scenario() -> tuple[Any, Any, Any, Any]:
        client = await connect(RedisSettings(redis_url))
        try:
            store = EventStore(
                client, dedup_window_s=60, max_backlog=10_000, idempotency_window_s=60
            )
            other = EventStore(
                client, dedup_window_s=60, max_backlog=10_000, idempotency_window_s=60
            )
            ids = [f"e{i}" for i in range(10)]
            events = [_stored(i) for i in range(10)]
            call = store.call("svc", None, "")
            first = await store.append("exp", ids, events, call)
            replayed = await store.append("exp", ids, events, call)
            # Another process (its own random salt proposal) still sees them as seen.
            again = await other.append("exp", ids, events, other.call("svc", None, ""))
            length = await client.xlen(keys.events_stream("exp"))
            return first, replayed, again, length
        finally:
            await close(client)

    first, replayed, again, length = asyncio.run(scenario())
    assert (first.accepted, first.duplicates) == (10, 0)
    assert replayed == first
    assert (again.accepted, again.duplicates) == (0, 10)
    assert length == 1


def test_concurrent_claims_of_one_key_admit_one_body(redis_url: str) -> None:
    async def scenario() -> list[str]:
        client = await connect(RedisSettings(redis_url))
        try:
            store = EventStore(client, dedup_window_s=60, max_backlog=10, idempotency_window_s=60)
            claims = await asyncio.gather(
                *(store.claim("svc", "k", f"digest-{i}") for i in range(8))
            )
            return sorted(c.state for c in claims)
        finally:
            await close(client)

    assert asyncio.run(scenario()) == ["conflict"] * 7 + ["new"]


def test_redis_busy_running_a_script_is_a_503(client: TestClient, redis_url: str) -> None:
    admin = redis.Redis.from_url(redis_url)
    config: Any = admin.config_get("busy-reply-threshold")
    threshold = config["busy-reply-threshold"]
    admin.config_set("busy-reply-threshold", 10)
    blocker = threading.Thread(
        target=lambda: _ignore_errors(
            lambda: redis.Redis.from_url(redis_url).eval("while true do end", 0)
        ),
        daemon=True,
    )
    try:
        blocker.start()
        killer = redis.Redis.from_url(redis_url)
        # Redis answers BUSY to everyone once the script ran past the threshold.
        wait_for(lambda: _busy(killer), what="redis to answer BUSY")
        response = send(client, [event(0)], {"Idempotency-Key": uuid.uuid4().hex})
        assert response.status_code == 503, response.text
        assert response.headers["retry-after"] == "1"
    finally:
        _ignore_errors(lambda: redis.Redis.from_url(redis_url).script_kill())
        blocker.join(timeout=10)
        admin.config_set("busy-reply-threshold", threshold)
    assert send(client, [event(0)]).json() == ok(1)


def _busy(r: redis.Redis) -> bool:
    try:
        r.get("probe")
    except redis.ResponseError as exc:
        return str(exc).startswith("BUSY")
    return False


def _ignore_errors(action: Any) -> None:
    try:
        action()
    except redis.RedisError:
        pass
