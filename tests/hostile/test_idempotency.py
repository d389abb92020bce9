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
import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson

from service.store import keys
from tests._live import LiveServer
from tests._wait import wait_for
from tests.conftest import CLIENT
from tests.hostile._ingest import event, ingested, start
from tests.hostile._lossy_redis import LossyRedis
from tests.hostile.conftest import HealthProbe

ROUNDS = 15
RACERS = 6


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
    live_server: LiveServer, exp_http: httpx.Client, redis_url: str
) -> None:
    accepted_ids: set[str] = set()
    with HealthProbe(live_server.url) as probe:
        for round_ in range(ROUNDS):
            bodies = [[event(f"r{round_}-{i}-{j}") for j in range(20)] for i in range(RACERS)]
            statuses = [r.status_code for r in _race(live_server.url, uuid.uuid4().hex, bodies)]
            assert sorted(statuses) == [202] + [409] * (RACERS - 1), statuses
            accepted_ids |= {e["event_id"] for e in bodies[statuses.index(202)]}
        # The same body raced under one key: one batch, one answer, counted once.
        twins = [[event(f"twin-{j}") for j in range(20)]] * RACERS
        answers = _race(live_server.url, uuid.uuid4().hex, twins)
        assert [r.status_code for r in answers] == [202] * RACERS
        assert {r.content for r in answers} == {
            b'{"accepted":20,"duplicates":0,"rejected":[],"rejected_count":0}'
        }
        accepted_ids |= {e["event_id"] for e in twins[0]}
    assert ingested(redis_url) == len(accepted_ids) == (ROUNDS + 1) * 20
    probe.assert_responsive()


def test_a_lost_redis_reply_does_not_turn_a_batch_into_duplicates(
    redis_server: Any, redis_url: str, server_env: dict[str, str], tmp_path: Path
) -> None:
    with LossyRedis(redis_server.port) as lossy:
        env = {**server_env, "SHARPEN_REDIS_URL": lossy.url}
        server = LiveServer(env, log=tmp_path / "server.log").start()
        try:
            with httpx.Client(base_url=server.url, timeout=60) as client:
                start(client, "exp")
                for key in (None, uuid.uuid4().hex):  # with and without an Idempotency-Key
                    batch = [event(f"{key}-{i}") for i in range(50)]
                    lossy.arm(keys.event_ids("exp").encode())
                    headers = {**CLIENT, **({"Idempotency-Key": key} if key else {})}
                    response = client.post("/v1/events", json={"events": batch}, headers=headers)
                    assert response.status_code == 202, response.text
                    assert (response.json()["accepted"], response.json()["duplicates"]) == (50, 0)
        finally:
            server.stop()
        assert lossy.dropped == 2  # each batch's script ran, and its first reply was lost
    assert ingested(redis_url) == 100


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
    live_server: LiveServer, exp_http: httpx.Client, redis_url: str
) -> None:
    key = uuid.uuid4().hex
    batch = [event(f"lost-{i}") for i in range(40)] + [event("bad", variant="nope")]
    body = orjson.dumps({"events": batch})
    _post_and_hang_up(live_server.url, body, key)
    wait_for(lambda: ingested(redis_url) == 40, what="the batch to be committed")
    live_server.kill()  # whatever it was doing with the answer, it is gone
    live_server.start()
    headers = {**CLIENT, "Idempotency-Key": key, "content-type": "application/json"}
    replay = httpx.post(f"{live_server.url}/v1/events", content=body, headers=headers, timeout=60)
    assert replay.status_code == 202, replay.text
    answer = replay.json()
    assert (answer["accepted"], answer["duplicates"], answer["rejected_count"]) == (40, 0, 1)
    assert answer["rejected"][0]["field"] == "events.40.variant"
    assert ingested(redis_url) == 40
