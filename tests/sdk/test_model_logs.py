"""``log_prediction`` and ``label``: batched, retried, bounded, counted, never raising."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import threading
import time
from typing import Any

import httpx
import pytest

from sharpen import AsyncClient, Client, RetryPolicy
from tests._wait import wait_for
from tests.sdk.conftest import FAST_RETRY
from tests.sdk.fakes import API_KEY, FakeService

RECORDS = "/v1/models/fraud/records"
LABELS = "/v1/models/fraud/labels"


def test_predictions_and_labels_are_sent_in_their_shapes(
    service: FakeService, make_client: Any
) -> None:
    client = make_client()
    at = dt.datetime(2024, 5, 1, 12, 0, 0, 250_000)  # naive: UTC
    assert client.log_prediction(
        "fraud",
        "r1",
        0.91,
        confidence=0.91,
        features={"amount": 120, "age": None, "new": True},
        attributes={"country": "IN", "tier": 2, "gone": None},
        offline_prediction=0.9,
        timestamp=at,
    )
    assert client.log_prediction("fraud", 7, "fraud")  # an integer id is its digits
    assert client.label("fraud", "r1", 1)
    assert client.flush()
    records = service.model_items("fraud", "records")
    assert records == [
        {
            "record_id": "r1",
            "timestamp": "2024-05-01T12:00:00.250Z",
            "prediction": 0.91,
            "offline_prediction": 0.9,
            "confidence": 0.91,
            "features": {"amount": 120.0, "age": None, "new": 1.0},
            "attributes": {"country": "IN", "tier": 2},
        },
        {"record_id": "7", "timestamp": records[1]["timestamp"], "prediction": "fraud"},
    ]
    assert abs(dt.datetime.fromisoformat(records[1]["timestamp"]).timestamp() - time.time()) < 60
    assert service.model_items("fraud", "labels") == [{"record_id": "r1", "label": 1}]
    paths = [r.url.path for r in service.requests if r.method == "POST"]
    assert paths == [RECORDS, LABELS]  # a label never overtakes its record
    stats = client.stats
    assert (stats.predictions_sent, stats.labels_sent, stats.predictions_pending) == (2, 1, 0)


def test_each_model_gets_its_own_batch(service: FakeService, make_client: Any) -> None:
    client = make_client()
    for i in range(3):
        client.log_prediction("fraud", f"f{i}", 1)
        client.log_prediction("churn", f"c{i}", 0)
    assert client.flush()
    assert [r["record_id"] for r in service.model_items("fraud", "records")] == ["f0", "f1", "f2"]
    assert [r["record_id"] for r in service.model_items("churn", "records")] == ["c0", "c1", "c2"]


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda c: c.log_prediction("Fraud!", "r", 1), "model"),
        (lambda c: c.log_prediction("fraud", "", 1), "record_id"),
        (lambda c: c.log_prediction("fraud", "r" * 129, 1), "record_id"),
        (lambda c: c.log_prediction("fraud", "r", float("nan")), "prediction"),
        (lambda c: c.log_prediction("fraud", "r", [1, 2]), "prediction"),
        (lambda c: c.log_prediction("fraud", "r", 1, confidence=1.5), "confidence"),
        (lambda c: c.log_prediction("fraud", "r", 1, features={"x": float("inf")}), "features"),
        (lambda c: c.log_prediction("fraud", "r", 1, features={"x": "high"}), "features"),
        (lambda c: c.log_prediction("fraud", "r", 1, attributes={"c": {"a": 1}}), "attributes.c"),
        (lambda c: c.log_prediction("fraud", "r", 1, attributes=[("c", 1)]), "attributes"),
        (lambda c: c.log_prediction("fraud", "r", 1, timestamp="yesterday"), "timestamp"),
        (lambda c: c.log_prediction("fraud", "r", 1, timestamp=0), "timestamp"),
        (
            lambda c: c.log_prediction("fraud", "r", 1, timestamp=time.time() + 3 * 86_400),
            "timestamp",
        ),
        (lambda c: c.label("fraud", "r", None), "label"),
        (lambda c: c.label("fraud", "r", "x" * 300), "label"),
    ],
)
def test_what_the_service_would_refuse_is_refused_here_without_raising(
    service: FakeService,
    make_client: Any,
    caplog: pytest.LogCaptureFixture,
    call: Any,
    field: str,
) -> None:
    client = make_client()
    with caplog.at_level(logging.WARNING, logger="sharpen"):
        assert call(client) is False
        assert call(client) is False
    stats = client.stats
    assert stats.predictions_rejected + stats.labels_rejected == 2
    assert stats.predictions_pending + stats.labels_pending == 0
    warnings = [r.getMessage() for r in caplog.records if "refused a" in r.getMessage()]
    assert len(warnings) == 1  # each kind once
    assert field in warnings[0]
    assert client.flush()
    assert [r for r in service.requests if r.method == "POST"] == []


def test_retry_reuses_the_idempotency_key_and_honours_retry_after(
    service: FakeService, make_client: Any
) -> None:
    answers = iter([httpx.Response(503, headers={"Retry-After": "1"}), None])
    service.responders[RECORDS] = lambda r: next(answers)
    client = make_client()
    for i in range(3):
        client.log_prediction("fraud", f"r{i}", 1)
    assert client.flush()
    first, second = service.posted(RECORDS)
    assert first.headers["Idempotency-Key"] == second.headers["Idempotency-Key"]
    assert first.content == second.content
    times = [
        t for r, t in zip(service.requests, service.times, strict=True) if r.url.path == RECORDS
    ]
    assert times[1] - times[0] >= 1.0  # waited as told, not the 10 ms backoff
    stats = client.stats
    assert (stats.predictions_sent, stats.retries, stats.predictions_failed) == (3, 1, 0)


def test_network_errors_are_retried_and_then_given_up(
    service: FakeService, make_client: Any
) -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    service.responders[LABELS] = down
    client = make_client(retry=RetryPolicy(max_attempts=3, base_delay=0.001, max_delay=0.002))
    client.label("fraud", "r1", 0)
    client.flush()
    assert len(service.posted(LABELS)) == 3
    assert (client.stats.labels_failed, client.stats.labels_pending) == (1, 0)


def test_a_refused_record_is_counted_and_the_others_are_resent(
    service: FakeService, make_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    calls = {"n": 0}

    def strict(request: httpx.Request) -> httpx.Response | None:
        calls["n"] += 1
        records = json.loads(request.content)["records"]
        bad = [i for i, r in enumerate(records) if r["record_id"].startswith("bad")]
        if not bad:
            return None
        details = [
            {"field": f"records.{i}.prediction", "message": "nope", "code": "invalid"} for i in bad
        ]
        return httpx.Response(
            422, json={"error": {"code": "validation_failed", "message": "x", "details": details}}
        )

    service.responders[RECORDS] = strict
    client = make_client()
    for rid in ("a", "bad1", "b", "bad2", "c"):
        client.log_prediction("fraud", rid, 1)
    client.label("fraud", "a", 1)
    with caplog.at_level(logging.WARNING, logger="sharpen"):
        assert client.flush()
    kept = [r["record_id"] for r in service.model_items("fraud", "records")]
    assert kept[-3:] == ["a", "b", "c"] and calls["n"] == 2
    stats = client.stats
    assert (stats.predictions_rejected, stats.predictions_sent, stats.labels_sent) == (2, 3, 1)
    assert sum("refused 2 of 5 predictions" in r.getMessage() for r in caplog.records) == 1
    order = [r.url.path for r in service.requests if r.method == "POST"]
    assert order.index(LABELS) > max(i for i, p in enumerate(order) if p == RECORDS)


def test_a_batch_refused_without_indices_is_rejected_whole(
    service: FakeService, make_client: Any
) -> None:
    service.responders[RECORDS] = lambda r: httpx.Response(
        403, json={"error": {"code": "forbidden", "message": "client scope needed"}}
    )
    client = make_client()
    for i in range(4):
        client.log_prediction("fraud", f"r{i}", 1)
    assert client.flush()
    assert len(service.posted(RECORDS)) == 1
    assert (client.stats.predictions_rejected, client.stats.retries) == (4, 0)


def test_unmatched_labels_and_duplicate_records_are_counted(
    service: FakeService, make_client: Any
) -> None:
    service.responders[LABELS] = lambda r: httpx.Response(202, json={"matched": 1, "unmatched": 2})
    service.responders[RECORDS] = lambda r: httpx.Response(
        202, json={"accepted": 1, "duplicates": 1}
    )
    client = make_client()
    client.log_prediction("fraud", "r1", 1)
    client.log_prediction("fraud", "r1", 1)
    for rid in ("r1", "x", "y"):
        client.label("fraud", rid, 1)
    assert client.flush()
    stats = client.stats
    assert (stats.predictions_sent, stats.predictions_duplicates) == (2, 1)
    assert (stats.labels_sent, stats.labels_unmatched) == (3, 2)


def test_the_buffer_is_bounded(service: FakeService, make_client: Any) -> None:
    in_flight, release = threading.Event(), threading.Event()

    def block(request: httpx.Request) -> httpx.Response | None:
        in_flight.set()
        release.wait(30)
        return None

    service.responders[RECORDS] = block
    client = make_client(max_batch=5, max_buffer=5)
    try:
        for i in range(5):
            assert client.log_prediction("fraud", f"r{i}", 1)
        assert in_flight.wait(10)  # the sender holds the first 5 in flight
        queued = [client.log_prediction("fraud", f"s{i}", 1) for i in range(8)]
        assert queued == [True] * 5 + [False] * 3
        stats = client.stats
        assert (stats.predictions_pending, stats.predictions_dropped) == (5, 3)
    finally:
        release.set()
    client.close()
    assert client.stats.predictions_sent == 10


def test_after_close_predictions_are_dropped(service: FakeService, make_client: Any) -> None:
    client = make_client()
    client.close()
    assert client.log_prediction("fraud", "r1", 1) is False
    assert client.label("fraud", "r1", 1) is False
    assert (client.stats.predictions_dropped, client.stats.labels_dropped) == (1, 1)


def test_close_sends_what_is_queued(service: FakeService) -> None:
    with Client(
        "http://sharpen.test", API_KEY, transport=service.transport(), poll_interval=None
    ) as client:
        client.log_prediction("fraud", "r1", 1)
        client.label("fraud", "r1", 0)
    assert len(service.model_items("fraud", "records")) == 1
    assert len(service.model_items("fraud", "labels")) == 1


def test_async_client_logs_retries_and_counts(service: FakeService) -> None:
    answers = iter([httpx.Response(429, headers={"Retry-After": "0"}), None])
    service.responders[RECORDS] = lambda r: next(answers)

    async def main() -> Any:
        async with AsyncClient(
            "http://sharpen.test",
            API_KEY,
            transport=httpx.MockTransport(service.handler),
            poll_interval=None,
            flush_interval=3600.0,
            retry=FAST_RETRY,
        ) as client:
            assert client.log_prediction("fraud", "r1", 0.2, confidence=0.8) is True
            assert client.log_prediction("fraud", "r2", 0.2, confidence=2) is False
            assert client.label("fraud", "r1", 0) is True
            assert await client.flush()
            return client.stats

    stats = asyncio.run(main())
    assert (stats.predictions_sent, stats.predictions_rejected, stats.labels_sent) == (1, 1, 1)
    assert stats.retries == 1
    first, second = service.posted(RECORDS)
    assert first.headers["Idempotency-Key"] == second.headers["Idempotency-Key"]


def test_full_batches_go_out_in_the_background(service: FakeService, make_client: Any) -> None:
    client = make_client(max_batch=4)
    for i in range(4):
        client.log_prediction("fraud", f"r{i}", 1)
    wait_for(
        lambda: client.stats.predictions_sent, until=lambda n: n == 4, what="4 predictions sent"
    )
