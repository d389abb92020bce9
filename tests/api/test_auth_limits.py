"""Failed-authentication limits: per address, overall, bounded memory, a log line per address."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient

from service.auth_limits import FailedAuthLimit, TokenBucket
from service.metrics import Metrics
from tests.conftest import ADMIN, ADMIN_KEY, AppFactory


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _limit(clock: Clock, **overrides: float) -> FailedAuthLimit:
    options: dict[str, float] = {
        "burst": 3,
        "per_min": 6.0,  # one more every 10 s
        "global_burst": 10,
        "global_per_min": 60.0,  # one more every second
        "max_addresses": 100,
    }
    options.update(overrides)
    return FailedAuthLimit(clock=clock, metrics=Metrics(), **options)  # type: ignore[arg-type]


def test_token_bucket_waits_without_taking() -> None:
    bucket = TokenBucket(rate_per_s=0.5, burst=2.0, tokens=2.0, updated=0.0)
    assert bucket.wait(0.0) == 0.0 and bucket.tokens == 2.0
    assert bucket.take(0.0) == 0.0 and bucket.take(0.0) == 0.0
    assert bucket.wait(0.0) == pytest.approx(2.0)
    assert bucket.wait(1.0) == pytest.approx(1.0)
    assert not bucket.full(3.0) and bucket.full(4.0)


def test_an_address_over_its_failures_is_refused_until_a_token_is_back() -> None:
    clock = Clock()
    limit = _limit(clock)
    for _ in range(3):
        assert limit.refusal("10.0.0.1") is None
        limit.failed("10.0.0.1", "api_key")
    refused = limit.refusal("10.0.0.1")
    assert refused is not None and refused.status == 429
    assert refused.headers == {"Retry-After": "10"}
    assert "your address" in refused.message
    assert limit.refusal("10.0.0.2") is None  # another address is not affected
    clock.now += 9.5
    assert limit.refusal("10.0.0.1") is not None
    assert limit.refusal("10.0.0.1").headers == {"Retry-After": "1"}  # type: ignore[union-attr]
    clock.now += 0.5
    assert limit.refusal("10.0.0.1") is None


def test_a_success_does_not_reset_the_failures() -> None:
    clock = Clock()
    limit = _limit(clock)
    for _ in range(2):
        limit.failed("10.0.0.1", "api_key")
        limit.succeeded("10.0.0.1")  # e.g. a client key between admin-key guesses
    limit.failed("10.0.0.1", "api_key")
    assert limit.refusal("10.0.0.1") is not None


def test_ipv6_addresses_of_one_slash_64_share_a_bucket() -> None:
    clock = Clock()
    limit = _limit(clock)
    for host in ("2001:db8::1", "2001:db8::2", "2001:db8::ffff:1"):
        limit.failed(host, "api_key")
    assert limit.refusal("2001:db8::abcd") is not None
    assert limit.refusal("2001:db8:0:1::1") is None


def test_rotating_addresses_trip_the_overall_limit_but_known_callers_go_on() -> None:
    clock = Clock()
    limit = _limit(clock)
    limit.succeeded("10.9.9.9")  # a client that authenticated before the attack
    for i in range(10):
        assert limit.refusal(f"10.1.0.{i}") is None
        limit.failed(f"10.1.0.{i}", "api_key")  # one failure each: no address is over
    refused = limit.refusal("10.2.0.1")
    assert refused is not None and refused.headers == {"Retry-After": "1"}
    assert "overall" in refused.message
    assert limit.refusal("10.9.9.9") is None
    clock.now += 1.0
    assert limit.refusal("10.2.0.1") is None


def test_memory_stays_bounded_when_the_attacker_rotates_addresses() -> None:
    clock = Clock()
    limit = _limit(clock, max_addresses=100, global_burst=10**9)
    for i in range(20_000):
        address = f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"
        limit.failed(address, "api_key")
        limit.succeeded(address)
        clock.now += 0.001
    assert limit.tracked() == (100, 100)
    # The most recent offenders are still remembered.
    for _ in range(2):
        limit.failed("10.0.78.31", "api_key")
    assert limit.refusal("10.0.78.31") is not None


def test_addresses_whose_bucket_refilled_are_forgotten_first() -> None:
    clock = Clock()
    limit = _limit(clock, max_addresses=100)
    limit.failed("10.0.0.1", "api_key")
    clock.now += 60.0  # its bucket is full again
    limit.failed("10.0.0.2", "api_key")
    assert limit.tracked()[0] == 1


def test_a_warning_names_the_address_once_a_minute(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    limit = _limit(clock)
    with caplog.at_level(logging.WARNING, logger="sharpen.auth"):
        for _ in range(6):
            limit.failed("10.0.0.7", "login")
            clock.now += 0.01
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1, lines
    assert "10.0.0.7" in lines[0] and "dashboard login" in lines[0]
    clock.now += 61  # the bucket is full again: three more failures go over again
    with caplog.at_level(logging.WARNING, logger="sharpen.auth"):
        for _ in range(3):
            limit.failed("10.0.0.7", "login")
    assert len(caplog.records) == 2


@pytest.fixture
def strict(make_api: AppFactory) -> TestClient:
    return make_api(auth_fail_burst=2, auth_fail_per_min=1.0)


def test_the_api_refuses_an_address_over_the_limit_even_with_the_right_key(
    strict: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = {"Authorization": "Bearer wrong-key-0000001"}
    with caplog.at_level(logging.WARNING, logger="sharpen.auth"):
        assert [strict.get("/v1/experiments", headers=wrong).status_code for _ in range(3)] == [
            401,
            401,
            429,
        ]
    refused = strict.get("/v1/experiments", headers=ADMIN)
    assert refused.status_code == 429  # unchecked: a right guess looks like a wrong one
    assert refused.headers["Retry-After"] == "60"
    assert refused.json()["error"]["code"] == "rate_limited"
    assert strict.get("/healthz").status_code == 200  # no key, nothing to refuse
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "testclient" in logged  # the address TestClient connects from
    assert "wrong-key-0000001" not in logged and ADMIN_KEY not in logged
    metrics = strict.get("/metrics").text
    assert 'sharpen_auth_failures_total{via="api_key"} 2.0' in metrics
    assert 'sharpen_auth_refused_total{limit="address"} 2.0' in metrics
