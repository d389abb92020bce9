"""POST /v1/events: every validation rule, partial and atomic batches, dedup, idempotency,
limits."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest
import redis
from fastapi.testclient import TestClient

from service.store import keys
from sharpen import MAX_UNIT_ID
from tests._streams import tracked
from tests._wait import wait_for
from tests.conftest import ADMIN, CLIENT, AppFactory, make_settings, running_app
from tests.ingest._helpers import ok, spec


def _start(client: TestClient, key: str, **overrides: Any) -> None:
    assert client.post("/v1/experiments", json=spec(key, **overrides), headers=ADMIN).status_code
    assert client.post(f"/v1/experiments/{key}/start", headers=ADMIN).status_code == 200


@pytest.fixture
def client(make_api: AppFactory) -> TestClient:
    c = make_api(events_max_batch=50, max_events_body_bytes=64 * 1024, ingest_max_backlog=1000)
    _start(c, "exp")
    _start(c, "other", segments=())
    return c


def event(i: int = 0, **changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "event_id": f"ev-{i}",
        "experiment": "exp",
        "unit_id": f"user-{i}",
        "variant": "candidate",
        "timestamp": time.time() - 10,
        "values": {"revenue": 1.5, "latency_ms": 40},
        "attributes": {"country": "US"},
    }
    base.update(changes)
    return base


def send(
    client: TestClient, events: Any, headers: dict[str, str] | None = None, *, atomic: bool = False
) -> Any:
    return client.post(
        "/v1/events" + ("?atomic=true" if atomic else ""),
        json={"events": events},
        headers={**CLIENT, **(headers or {})},
    )


def details(response: Any) -> list[dict[str, Any]]:
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"]["code"] == "validation_failed"
    return list(body["error"]["details"])


def stream_length(redis_sync: redis.Redis, key: str = "exp") -> int:
    return int(redis_sync.xlen(keys.events_stream(key)))


def test_valid_batch_is_accepted_and_appended(client: TestClient, redis_sync: redis.Redis) -> None:
    response = send(client, [event(i) for i in range(5)])
    assert response.status_code == 202
    assert response.json() == ok(5)
    assert stream_length(redis_sync) == 1  # one entry per batch share


@pytest.mark.parametrize(
    ("changes", "field", "fragment"),
    [
        ({"event_id": ""}, "event_id", "length >= 1"),
        ({"event_id": "x" * 129}, "event_id", "length <= 128"),
        ({"event_id": 12}, "event_id", "Expected `str`"),
        ({"unit_id": ""}, "unit_id", ""),
        ({"unit_id": "u" * (MAX_UNIT_ID + 1)}, "unit_id", f"length <= {MAX_UNIT_ID}"),
        ({"values": {"revenue": "high"}}, "values.revenue", "Expected `float`"),
        ({"values": {"revenue": True}}, "values.revenue", "got `bool`"),
        ({"values": {"revenue": None}}, "values.revenue", "got `null`"),
        ({"values": {"revenue": 1e16}}, "values.revenue", "<= 1000000000000000.0"),
        ({"values": {}}, "values", "at least one value"),
        ({"values": {f"v{i}": 1 for i in range(65)}}, "values", "length <= 64"),
        ({"values": []}, "values", "Expected `object`"),
        ({"covariates": {"pre_revenue": "x"}}, "covariates.pre_revenue", "Expected `float`"),
        ({"timestamp": "yesterday"}, "timestamp", "neither ISO-8601 nor epoch"),
        ({"timestamp": time.time() - 8 * 86_400}, "timestamp", "outside the accepted window"),
        ({"timestamp": time.time() + 3600}, "timestamp", "outside the accepted window"),
        ({"timestamp": None}, "timestamp", "got `null`"),
        ({"attributes": {f"a{i}": 1 for i in range(33)}}, "attributes", "length <= 32"),
        ({"attributes": {"country": "x" * 257}}, "attributes.country", "length <= 256"),
        ({"attributes": {"k" * 257: "x"}}, "attributes." + "k" * 257, "length <= 256"),
        ({"values": {"": 1}}, "values.", "length >= 1"),
        ({"attributes": {"tags": ["a"]}}, "attributes.tags", "got `array`"),
        ({"variant": "nope"}, "variant", "not a variant"),
        ({"experiment": "missing"}, "experiment", "does not exist"),
    ],
)
def test_each_rule_names_the_event_and_field(
    client: TestClient,
    redis_sync: redis.Redis,
    changes: dict[str, Any],
    field: str,
    fragment: str,
) -> None:
    # atomic=true: the whole batch is refused with a 422 naming the field.
    response = send(client, [event(0), event(1), event(2), event(3, **changes)], atomic=True)
    found = details(response)
    assert any(d["field"] == f"events.3.{field}" and d["index"] == 3 for d in found), found
    assert all(d["index"] == 3 for d in found), found
    assert any(fragment in d["message"] for d in found), found
    assert "1 of 4 events are invalid" in response.json()["error"]["message"]
    assert stream_length(redis_sync) == 0  # all or nothing
    # By default the three valid events are kept and the bad one reported the same way.
    response = send(client, [event(0), event(1), event(2), event(3, **changes)])
    assert response.status_code == 202, response.text
    answer = response.json()
    assert (answer["accepted"], answer["duplicates"], answer["rejected_count"]) == (3, 0, 1)
    assert answer["rejected"] == found
    assert stream_length(redis_sync) == 1


def test_missing_fields_are_named(client: TestClient) -> None:
    bad = event(1)
    del bad["event_id"]
    no_time = event(2)
    del no_time["timestamp"]
    found = details(send(client, [event(0), bad, no_time], atomic=True))
    fields = {d["field"] for d in found}
    assert fields == {"events.1.event_id", "events.2.timestamp"}
    assert all(d["message"] == "required" for d in found)


def test_unknown_experiment_is_a_404_entry_in_the_422(client: TestClient) -> None:
    found = details(send(client, [event(0), event(1, experiment="ghost")], atomic=True))
    assert found == [
        {
            "field": "events.1.experiment",
            "message": "experiment 'ghost' does not exist",
            "index": 1,
            "code": "not_found",
            "status": 404,
        }
    ]


def test_several_bad_events_are_all_listed(client: TestClient) -> None:
    events = [
        event(0, values={"latency_ms": "slow"}),
        event(1),
        event(2, timestamp="never"),
        event(3, experiment="ghost"),
        "not an object",
    ]
    found = details(send(client, events, atomic=True))
    assert [(d["index"], d["field"]) for d in found] == [
        (0, "events.0.values.latency_ms"),
        (2, "events.2.timestamp"),
        (3, "events.3.experiment"),
        (4, "events.4"),
    ]


def test_timestamps_iso_and_epoch(client: TestClient, redis_sync: redis.Redis) -> None:
    """Epoch seconds (float or int) and ISO 8601 (Z, naive = UTC, an offset) are stored as
    the same instant in epoch seconds."""
    now = time.time()
    whole = int(now - 60)
    utc = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
    east = time.strftime("%Y-%m-%dT%H:%M:%S+02:00", time.gmtime(whole + 7200))
    sent = {
        "user-0": (now - 5, now - 5),
        "user-1": (int(now - 5), float(int(now - 5))),
        "user-2": (utc + "Z", float(whole)),
        "user-3": (utc, float(whole)),
        "user-4": (east, float(whole)),
    }
    events = [event(i, timestamp=sent[f"user-{i}"][0]) for i in range(len(sent))]
    response = send(client, events)
    assert response.status_code == 202, response.text
    stored = {e.unit_id: e.ts for e in tracked(redis_sync, "exp")}
    assert stored == pytest.approx({unit: ts for unit, (_, ts) in sent.items()}, abs=1e-3)


def test_draft_and_long_ended_experiments_refuse_events(redis_url: str) -> None:
    settings = make_settings(redis_url, event_grace_s=0)
    with running_app(settings) as c:
        assert c.post("/v1/experiments", json=spec("draft-exp"), headers=ADMIN).status_code == 201
        _start(c, "ended-exp")
        assert c.post("/v1/experiments/ended-exp/stop", headers=ADMIN).status_code == 200
        batch = [event(0, experiment="draft-exp"), event(1, experiment="ended-exp")]
        # With no grace, the end is "long ago" as soon as the clock has moved past it.
        refused = wait_for(
            lambda: send(c, batch),
            until=lambda r: r.status_code == 422 and len(r.json()["error"]["details"]) == 2,
            what="both experiments to refuse events",
        )
        found = details(refused)
    assert [(d["field"], d["code"]) for d in found] == [
        ("events.0.experiment", "not_running"),
        ("events.1.experiment", "not_running"),
    ]
    assert "draft" in found[0]["message"]
    assert "ended" in found[1]["message"]


def test_recently_ended_experiment_still_accepts(client: TestClient) -> None:
    assert client.post("/v1/experiments/exp/stop", headers=ADMIN).status_code == 200
    assert send(client, [event(0)]).status_code == 202


def test_body_shape_errors(client: TestClient) -> None:
    def raw(body: bytes) -> Any:
        return client.post(
            "/v1/events", content=body, headers={**CLIENT, "content-type": "application/json"}
        )

    assert details(raw(b"{not json"))[0]["field"] == "body"
    assert details(raw(b"[]"))[0]["field"] == "events"
    assert details(raw(b'{"events": {}}'))[0]["field"] == "events"
    assert details(raw(b'{"events": []}'))[0]["field"] == "events"
    too_many = details(send(client, [event(i) for i in range(51)]))
    assert too_many == [{"field": "events", "message": "at most 50 events per request"}]
    assert (
        details(client.post("/v1/events?atomic=maybe", json={"events": [event()]}, headers=CLIENT))[
            0
        ]["field"]
        == "query.atomic"
    )


def test_oversize_body_is_413(client: TestClient) -> None:
    attributes = {f"a{j}": "x" * 250 for j in range(20)}
    response = send(client, [event(i, attributes=attributes) for i in range(20)])
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_scopes(client: TestClient) -> None:
    assert client.post("/v1/events", json={"events": [event()]}).status_code == 401
    assert client.post("/v1/events", json={"events": [event()]}, headers=ADMIN).status_code == 403


def test_retried_event_ids_are_duplicates(client: TestClient, redis_sync: redis.Redis) -> None:
    first = send(client, [event(i) for i in range(10)])
    assert first.json() == ok(10)
    again = send(client, [event(i) for i in range(5, 15)])
    assert again.json() == ok(5, 5)
    # A duplicate inside one batch counts once too; a new timestamp does not make it new.
    mixed = send(client, [event(20), event(20), event(3, timestamp=time.time() - 99)])
    assert mixed.json() == ok(1, 2)
    meta = redis_sync.hgetall(keys.aggregation_meta("exp"))
    assert (meta["ingested"], meta["duplicates"], meta["backlog"]) == ("16", "7", "16")


def test_idempotency_key_replays_the_first_answer(
    client: TestClient, redis_sync: redis.Redis
) -> None:
    body = [event(i) for i in range(4)]
    headers = {"Idempotency-Key": "batch-1"}
    first = send(client, body, headers)
    assert first.json() == ok(4)
    replay = send(client, body, headers)
    assert replay.status_code == 202
    assert replay.json() == ok(4)
    assert stream_length(redis_sync) == 1
    # Without the key, the same events are reported as duplicates.
    assert send(client, body).json() == ok(0, 4)
    # The same key with another body is a client bug: 409, nothing stored.
    other = send(client, [event(9)], headers)
    assert other.status_code == 409
    assert other.json()["error"]["details"][0]["field"] == "headers.Idempotency-Key"
    assert stream_length(redis_sync) == 1
    # Keys are per client key name; an invalid header is named.
    bad = send(client, body, {"Idempotency-Key": "x" * 201})
    assert details(bad)[0]["field"] == "headers.Idempotency-Key"


def test_batches_spanning_experiments(client: TestClient, redis_sync: redis.Redis) -> None:
    response = send(client, [event(0), event(1, experiment="other"), event(2)])
    assert response.json() == ok(3)
    assert stream_length(redis_sync, "exp") == 1
    assert stream_length(redis_sync, "other") == 1
    entries: Any = redis_sync.xrange(keys.events_stream("exp"))
    entry = entries[0][1]
    stored = orjson.loads(entry["d"])
    assert [s[0] for s in stored] == ["user-0", "user-2"]
    assert stored[0][5] == ["US", None]  # segment values (country, device), in spec order


def test_full_backlog_answers_503(client: TestClient, redis_sync: redis.Redis) -> None:
    for start in range(0, 1000, 50):
        assert send(client, [event(i) for i in range(start, start + 50)]).status_code == 202
    response = send(client, [event(5000)])
    assert response.status_code == 503
    assert response.headers["retry-after"] == "2"
    assert "waiting for aggregation" in response.json()["error"]["message"]
    assert stream_length(redis_sync) == 20
