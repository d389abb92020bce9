"""Credentials sent twice, or two different ones: refused with 400, never a limiter bypass."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests._live import LiveServer
from tests.conftest import ADMIN, ADMIN_KEY, CLIENT_KEY
from tests.hostile.conftest import HealthProbe

JUNK = "junk-junk-junk-0001"


@pytest.fixture
def throttled(server_env: dict[str, str], server_log: Path) -> Iterator[LiveServer]:
    env = {
        **server_env,
        "SHARPEN_ADMIN_RATE_LIMIT_PER_S": "0.01",
        "SHARPEN_ADMIN_RATE_LIMIT_BURST": "3",
    }
    server = LiveServer(env, log=server_log).start()
    yield server
    server.stop()


def test_two_api_key_headers_no_longer_bypass_the_admin_limit(throttled: LiveServer) -> None:
    with httpx.Client(base_url=throttled.url, timeout=10) as http:
        twice = [("X-API-Key", ADMIN_KEY), ("X-API-Key", JUNK)]
        answers = [http.get("/v1/experiments", headers=twice) for _ in range(20)]
        assert {a.status_code for a in answers} == {400}
        details = answers[0].json()["error"]["details"]
        assert details == [{"field": "headers.X-API-Key", "message": "sent 2 times"}]
        assert ADMIN_KEY not in answers[0].text
        reversed_order = [("X-API-Key", JUNK), ("X-API-Key", ADMIN_KEY)]
        assert http.get("/v1/experiments", headers=reversed_order).status_code == 400
        # The admin key alone is limited as configured: 3, then 429.
        statuses = [http.get("/v1/experiments", headers=ADMIN).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]


@pytest.mark.parametrize(
    ("headers", "field"),
    [
        (
            [("Authorization", f"Bearer {ADMIN_KEY}"), ("Authorization", f"Bearer {JUNK}")],
            "headers.Authorization",
        ),
        ([("Authorization", f"Bearer {ADMIN_KEY}"), ("X-API-Key", JUNK)], "headers.X-API-Key"),
        ([("Authorization", f"Bearer {JUNK}"), ("X-API-Key", CLIENT_KEY)], "headers.X-API-Key"),
    ],
    ids=["two-authorizations", "bearer-admin-key-junk", "bearer-junk-key-client"],
)
def test_disagreeing_credentials_are_refused_on_every_path(
    live_server: LiveServer, headers: list[tuple[str, str]], field: str
) -> None:
    assign = {"experiment": "x", "unit_id": "u1"}
    with httpx.Client(base_url=live_server.url, timeout=10) as http:
        for method, path in (("GET", "/v1/experiments"), ("POST", "/v1/assign"), ("GET", "/ui/")):
            answer = http.request(method, path, headers=headers, json=assign)
            assert answer.status_code == 400, (path, answer.text)
            assert [d["field"] for d in answer.json()["error"]["details"]] == [field]


def test_a_flood_of_ambiguous_headers_leaves_the_service_responsive(
    live_server: LiveServer, health_probe: HealthProbe
) -> None:
    twice = [("X-API-Key", ADMIN_KEY), ("X-API-Key", JUNK)]
    statuses: set[int] = set()
    with httpx.Client(base_url=live_server.url, timeout=10) as http, health_probe:
        sent = 0
        while len(health_probe.latencies_s) < 40 and sent < 50_000:
            statuses.add(http.get("/v1/experiments", headers=twice).status_code)
            sent += 1
        assert http.get("/v1/experiments", headers=ADMIN).status_code == 200
    assert statuses == {400}
    health_probe.assert_responsive()
