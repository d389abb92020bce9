"""The admin API's per-key token bucket: 429 with Retry-After, client traffic untouched."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from service.auth_limits import TokenBucket
from tests.conftest import ADMIN, CLIENT, AppFactory

OTHER_ADMIN_KEY = "other-admin-key-0002"
OTHER = {"Authorization": f"Bearer {OTHER_ADMIN_KEY}"}


def test_token_bucket_refills_at_its_rate() -> None:
    bucket = TokenBucket(rate_per_s=2.0, burst=3.0, tokens=3.0, updated=0.0)
    assert [bucket.take(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(0.0) == pytest.approx(0.5)  # one token back in 1/2 s
    assert bucket.take(0.25) == pytest.approx(0.25)
    assert bucket.take(0.5) == 0.0
    assert bucket.take(100.0) == 0.0 and bucket.tokens == pytest.approx(2.0)  # capped at burst


@pytest.fixture
def limited(make_api: AppFactory) -> TestClient:
    return make_api(
        admin_keys=["tester=test-admin-key-0001", f"other={OTHER_ADMIN_KEY}"],
        admin_rate_limit_per_s=0.01,
        admin_rate_limit_burst=3,
    )


def test_admin_key_over_its_rate_gets_429_with_retry_after(limited: TestClient) -> None:
    for _ in range(3):
        assert limited.get("/v1/experiments", headers=ADMIN).status_code == 200
    refused = limited.get("/v1/experiments", headers=ADMIN)
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "100"  # 1 token at 0.01/s
    error = refused.json()["error"]
    assert error["code"] == "rate_limited" and "'tester'" in error["message"]
    assert "test-admin-key-0001" not in refused.text
    assert refused.headers["x-request-id"]
    # Every admin route shares the key's bucket, whatever the method.
    assert limited.post("/v1/plan", json={}, headers=ADMIN).status_code == 429
    # Another admin key has its own bucket.
    assert limited.get("/v1/experiments", headers=OTHER).status_code == 200
    # Client traffic and unauthenticated probes are not throttled here.
    for _ in range(10):
        assert limited.get("/v1/config", headers=CLIENT).status_code == 200
        assert limited.get("/healthz").status_code == 200
    # Unknown keys still get their 401, not a 429.
    bad = {"Authorization": "Bearer not-a-real-key-123"}
    assert limited.get("/v1/experiments", headers=bad).status_code == 401
    # X-API-Key is the same key, so the same bucket.
    key_header = {"X-API-Key": "test-admin-key-0001"}
    assert limited.get("/v1/experiments", headers=key_header).status_code == 429
