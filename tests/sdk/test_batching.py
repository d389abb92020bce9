"""Pure pieces of the upload path: retry policy, buffers, event validation."""

from __future__ import annotations

import math
import random
import re
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from sharpen import InvalidEventError, RetryPolicy
from sharpen._batching import BoundedBuffer
from sharpen._retry import classify, parse_retry_after
from sharpen._wire import event_body, iso_timestamp

ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, "sent"),
        (202, "sent"),
        (400, "rejected"),
        (401, "rejected"),
        (413, "rejected"),
        (422, "rejected"),
        (408, "retry"),
        (425, "retry"),
        (429, "retry"),
        (500, "retry"),
        (503, "retry"),
    ],
)
def test_classify(status: int, outcome: str) -> None:
    assert classify(status) == outcome


def test_parse_retry_after() -> None:
    now = datetime(2024, 1, 1, tzinfo=UTC)
    assert parse_retry_after(None) is None
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(" 0.5 ") == 0.5
    assert parse_retry_after("-4") == 0.0
    assert parse_retry_after("Mon, 01 Jan 2024 00:00:07 GMT", now=now) == 7.0
    assert parse_retry_after("Sun, 31 Dec 2023 00:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after("nan") is None


def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=8.0)
    rng = random.Random(7)
    for failures, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (9, 8.0)]:
        draws = [policy.delay(failures, None, rng) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in draws)
        assert len(set(draws)) > 100  # jittered, not constant


def test_retry_after_wins_but_is_capped_and_jittered_upwards() -> None:
    policy = RetryPolicy(base_delay=1.0, max_retry_after=60.0)
    rng = random.Random(1)
    draws = [policy.delay(1, 5.0, rng) for _ in range(200)]
    assert all(5.0 <= d <= 6.25 for d in draws)  # never sooner than the server asked
    assert len(set(draws)) > 100  # spread, so told-the-same-moment callers do not stampede
    assert all(60.0 <= policy.delay(1, 3600.0, rng) <= 75.0 for _ in range(50))
    assert policy.delay(1, 0.0, rng) == 0.0


def test_the_policy_carries_its_classifier_and_header_parser() -> None:
    now = datetime(2024, 1, 1, tzinfo=UTC)
    assert RetryPolicy.classify(425) == "retry" and RetryPolicy.classify(404) == "rejected"
    assert RetryPolicy.parse_retry_after("Mon, 01 Jan 2024 00:00:02 GMT", now=now) == 2.0


def test_bounded_buffer_counts_what_it_refuses() -> None:
    buffer: BoundedBuffer[int] = BoundedBuffer(3)
    assert [buffer.add(i) for i in range(5)] == [True, True, True, False, False]
    assert (len(buffer), buffer.dropped) == (3, 2)
    assert buffer.take(2) == [0, 1]
    assert buffer.add(9)
    assert buffer.take(10) == [2, 9]
    assert buffer.take(10) == []
    with pytest.raises(ValueError, match="max_buffer"):
        BoundedBuffer(0)


def _event(**overrides: object) -> dict[str, object]:
    args: dict[str, object] = {
        "experiment": "exp",
        "unit_id": "u1",
        "values": {"clicks": 1},
        "variant": None,
        "attributes": None,
        "timestamp": None,
        "event_id": None,
        "covariates": None,
    }
    args.update(overrides)
    return event_body(**args)  # type: ignore[arg-type]


def test_event_defaults() -> None:
    event = _event()
    assert uuid.UUID(hex=str(event["event_id"])).version == 4
    assert ISO_Z.match(str(event["timestamp"]))
    assert event["values"] == {"clicks": 1}
    assert event["attributes"] == {}
    assert "covariates" not in event
    assert set(event) == {
        "event_id",
        "experiment",
        "unit_id",
        "variant",
        "timestamp",
        "values",
        "attributes",
    }


def test_event_timestamps_normalise_to_utc_z() -> None:
    moment = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    assert _event(timestamp=moment)["timestamp"] == "2024-05-01T10:00:00.123Z"
    assert _event(timestamp=datetime(2024, 5, 1, 10))["timestamp"] == "2024-05-01T10:00:00.000Z"
    assert _event(timestamp=0)["timestamp"] == "1970-01-01T00:00:00.000Z"
    assert _event(timestamp="2024-05-01T10:00:00Z")["timestamp"] == "2024-05-01T10:00:00.000Z"
    assert iso_timestamp(1.5) == "1970-01-01T00:00:01.500Z"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"values": {}}, "values"),
        ({"values": {"x": math.nan}}, "values"),
        ({"values": {"x": math.inf}}, "values"),
        ({"values": {"x": "1"}}, "values"),
        ({"values": [1]}, "values"),
        ({"values": {"": 1}}, "values"),
        ({"covariates": {"pre": math.nan}}, "covariates"),
        ({"unit_id": ""}, "unit_id"),
        ({"unit_id": None}, "unit_id"),
        ({"experiment": ""}, "experiment"),
        ({"event_id": ""}, "event_id"),
        ({"timestamp": "yesterday"}, "timestamp"),
        ({"timestamp": math.nan}, "timestamp"),
        ({"attributes": {"tags": ["a"]}}, "attributes"),
        ({"attributes": {"score": math.nan}}, "attributes"),
        ({"variant": 3}, "variant"),
    ],
)
def test_invalid_events_name_the_field(overrides: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidEventError) as info:
        _event(**overrides)
    assert info.value.field == field
    assert str(info.value).startswith(field)
    assert isinstance(info.value, ValueError)


def test_event_values_accept_bools_and_integers() -> None:
    event = _event(
        values={"converted": True, "n": 3, "latency_ms": 41.5},
        unit_id=1234,
        covariates={"pre_spend": 12.0},
        event_id="evt-1",
    )
    assert event["values"] == {"converted": 1, "n": 3, "latency_ms": 41.5}
    assert event["unit_id"] == "1234"
    assert event["covariates"] == {"pre_spend": 12.0}
    assert event["event_id"] == "evt-1"
