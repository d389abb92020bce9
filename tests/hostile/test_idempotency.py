"""Idempotency under attack and accident, against a live server and real Redis.

- One ``Idempotency-Key``, different bodies, posted at once: exactly one is accepted, the
  others get 409 (two were accepted once: the key was read, then written).
- Redis ran the ingest script but its reply was lost (a proxy drops it): redis-py sends the
  script again, and the batch is still answered with its first counts, not as duplicates.
- The client never got its answer and the server was SIGKILLed: the retry under the same
  key gets the original answer, partial refusals included; nothing is counted twice.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import redis

from service.store import keys
from tests._live import LiveServer
from tests._wait import wait_for
from tests.conftest import ADMIN, CLIENT
from tests.hostile._lossy_redis import LossyRedis
from tests.hostile.conftest import HealthProbe
from tests.ingest._helpers import spec

ROUNDS = 15
RACERS = 6


def _start(http: httpx.Client, key: str) -> None:
    assert http.post("/v1/experiments", json=spec(key), headers=ADMIN).status_code == 201
    assert http.post(f"/v1/experiments/{key}/start", headers=ADMIN).status_code == 200


@pytest.fixture
def http(live_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_server.url, timeout=60) as client:
        _start(client, "exp")
        yield client


def _event(event_id: str, **changes: Any) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "experiment": "exp",
        "unit_id": f"user-{event_id}",
        "variant": "candidate",
        "timestamp": time.time() - 5,
        "values": {"revenue": 1.0},
        **changes,
    }


def _ingested(redis_url: str) -> int:
    raw = redis.Redis.from_url(redis_url).hget(keys.aggregation_meta("exp"), "ingested")
    return int(raw or 0)


def _race(url: str, key: str, bodies: list[list[dict[str, Any]]]) -> list[httpx.Response]:
    """Post each body under ``key`` from its own connection, all released at once."""
    start = threading.Barrier(len(bodies))
    answers: list[Any] = [None] * len(bodies)

    def post(i: int) -> None:
        with httpx.Client(base_url=url, timeout=60) as own:
            own.get("/healthz")  # connected before the start
            start.wait()
            headers = {**CLIENT, "Idempotency-Key": key}
            answers[i] = own.post("/v1/events", json={"events": bodies[i]}, headers=headers)

    threads = [threading.Thread(target=post, args=(i,)) for i in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return answers


def test_one_key_admits_one_body_however_many_race_for_it(
    live_server: LiveServer, http: httpx.Client, redis_url: str
) -> None:
    accepted_ids: set[str] = set()
    with HealthProbe(live_server.url) as probe:
        for round_ in range(ROUNDS):
            bodies = [[_event(f"r{round_}-{i}-{j}") for j in range(20)] for i in range(RACERS)]
            statuses = [r.status_code for r in _race(live_server.url, uuid.uuid4().hex, bodies)]
            assert sorted(statuses) == [202] + [409] * (RACERS - 1), statuses
            accepted_ids |= {e["event_id"] for e in bodies[statuses.index(202)]}
        # The same body raced under one key: one batch, one answer, counted once.
        twins = [[_event(f"twin-{j}") for j in range(20)]] * RACERS
        answers = _race(live_server.url, uuid.uuid4().hex, twins)
        assert [r.status_code for r in answers] == [202] * RACERS
        assert {r.content for r in answers} == {
            b'{"accepted":20,"duplicates":0,"rejected":[],"rejected_count":0}'
        }
        accepted_ids |= {e["event_id"] for e in twins[0]}
    assert _ingested(redis_url) == len(accepted_ids) == (ROUNDS + 1) * 20
    probe.assert_responsive()


def test_a_lost_redis_reply_does_not_turn_a_batch_into_duplicates(
    redis_server: Any, redis_url: str, server_env: dict[str, str], tmp_path: Path
) -> None:
    with LossyRedis(redis_server.port) as lossy:
        env = {**server_env, "SHARPEN_REDIS_URL": lossy.url}
        server = LiveServer(env, log=tmp_path / "server.log").start()
        try:
            with httpx.Client(base_url=server.url, timeout=60) as client:
                _start(client, "exp")
                for key in (None, uuid.uuid4().hex):  # with and without an Idempotency-Key
                    batch = [_event(f"{key}-{i}") for i in range(50)]
                    lossy.arm(keys.event_ids("exp").encode())
                    headers = {**CLIENT, **({"Idempotency-Key": key} if key else {})}
                    response = client.post("/v1/events", json={"events": batch}, headers=headers)
                    assert response.status_code == 202, response.text
                    assert (response.json()["accepted"], response.json()["duplicates"]) == (50, 0)
        finally:
            server.stop()
        assert lossy.dropped == 2  # each batch's script ran, and its first reply was lost
    assert _ingested(redis_url) == 100


def _post_and_hang_up(url: str, body: bytes, key: str) -> None:
    """Send a request and close the connection without reading the answer."""
    host, port = url.removeprefix("http://").split(":")
    head = (
        f"POST /v1/events HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Authorization: {CLIENT['Authorization']}\r\nIdempotency-Key: {key}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(head + body)


def test_an_answer_lost_with_the_server_is_replayed_as_it_was(
    live_server: LiveServer, http: httpx.Client, redis_url: str
) -> None:
    key = uuid.uuid4().hex
    batch = [_event(f"lost-{i}") for i in range(40)] + [_event("bad", variant="nope")]
    body = orjson.dumps({"events": batch})
    _post_and_hang_up(live_server.url, body, key)
    wait_for(lambda: _ingested(redis_url) == 40, what="the batch to be committed")
    live_server.kill()  # whatever it was doing with the answer, it is gone
    live_server.start()
    headers = {**CLIENT, "Idempotency-Key": key, "content-type": "application/json"}
    replay = httpx.post(f"{live_server.url}/v1/events", content=body, headers=headers, timeout=60)
    assert replay.status_code == 202, replay.text
    answer = replay.json()
    assert (answer["accepted"], answer["duplicates"], answer["rejected_count"]) == (40, 0, 1)
    assert answer["rejected"][0]["field"] == "events.40.variant"
    assert _ingested(redis_url) == 40
