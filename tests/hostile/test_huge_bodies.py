"""Huge arrays of tiny elements and deeply nested JSON: a small 4xx, fast, on every route.

``{"events": [{} x 1,000,000]}`` (3 MB) once stalled the event loop for 7.4 s, and the same
array of records for 13.7 s with a 64 MB 422; 100,000 nested brackets answered 500. Now
the element count is checked in C before any per-element work, error lists are capped,
big arrays are validated off the event loop, and nesting is a 422 (or FastAPI's 400).
Meanwhile ``/healthz`` keeps answering and a legitimate batch is counted exactly once.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx

from tests._live import LiveServer
from tests.conftest import ADMIN, CLIENT
from tests.hostile._ingest import event, ingested
from tests.hostile.conftest import HealthProbe

MILLION_EMPTY = b"[" + b",".join([b"{}"] * 1_000_000) + b"]"
SMALL_ANSWER = 4096
"""Bytes: a refusal names the limit, it does not list a million problems."""
DEEP = 100_000


def _raw(exp_http: httpx.Client, path: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return exp_http.post(
        path, content=body, headers={**headers, "content-type": "application/json"}
    )


# (path, body prefix, body suffix, key): the prefix and suffix wrap the array.
HUGE = [
    ("/v1/events", b'{"events":', b"}", CLIENT),
    ("/v1/models/m/records", b'{"records":', b"}", CLIENT),
    ("/v1/models/m/labels", b'{"labels":', b"}", CLIENT),
    ("/v1/analyze", b'{"metric":{"kind":"mean"},"looks":', b"}", ADMIN),
    ("/v1/backtest", b'{"experiment":"exp","records":', b"}", ADMIN),
]


def test_a_million_empty_objects_are_refused_before_any_work(
    live_server: LiveServer, exp_http: httpx.Client, redis_url: str
) -> None:
    before = exp_http.post("/v1/events", json={"events": [event("0")]}, headers=CLIENT)
    assert before.status_code == 202
    with HealthProbe(live_server.url) as probe:
        for path, prefix, suffix, key in HUGE:
            answer = _raw(exp_http, path, prefix + MILLION_EMPTY + suffix, key)
            assert answer.status_code == 422, (path, answer.text[:300])
            assert len(answer.content) < SMALL_ANSWER, (path, len(answer.content))
            assert "at most" in answer.json()["error"]["details"][0]["message"], path
        # At the limit: 10,000 bad events are all judged, 100 listed, every one counted.
        bad = exp_http.post("/v1/events", json={"events": [{}] * 10_000}, headers=CLIENT)
        assert bad.status_code == 422
        error = bad.json()["error"]
        assert (len(error["details"]), error["details_total"]) == (100, 10_000)
        assert len(bad.content) < 30_000
        # And a full batch of valid events is kept, whole, while the probe keeps answering.
        full = [event(str(i)) for i in range(1, 10_001)]
        ok = exp_http.post("/v1/events", json={"events": full}, headers=CLIENT)
        assert ok.status_code == 202, ok.text[:300]
        assert (ok.json()["accepted"], ok.json()["rejected_count"]) == (10_000, 0)
        while len(probe.latencies_s) < 40:  # attack until the probe can judge
            _raw(exp_http, "/v1/events", b'{"events":' + MILLION_EMPTY + b"}", CLIENT)
    probe.assert_responsive()
    assert ingested(redis_url) == 10_001


def _deep_bodies(schema: dict[str, Any]) -> Iterator[bytes]:
    """JSON nested ``DEEP`` levels: alone, and in each top-level field and item field."""
    arrays = b"[" * DEEP + b"]" * DEEP
    objects = b'{"a":' * DEEP + b"1" + b"}" * DEEP
    yield arrays
    yield objects
    for name, field in (schema.get("properties") or {}).items():
        key = name.encode()
        yield b'{"' + key + b'":' + arrays + b"}"
        items = (field.get("items") or {}).get("properties") or {}
        for item in items:
            yield b'{"' + key + b'":[{"' + item.encode() + b'":' + objects + b"}]}"


def _operations(exp_http: httpx.Client) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, operations in exp_http.get("/openapi.json").json()["paths"].items():
        for method, operation in operations.items():
            if method in ("post", "put", "patch"):
                body = operation.get("requestBody", {}).get("content", {})
                schema = body.get("application/json", {}).get("schema", {})
                concrete = path.replace("{name}", "m").replace("{key}", "exp")
                yield method.upper(), concrete, schema


def test_deeply_nested_json_is_a_client_error_on_every_route(
    live_server: LiveServer, exp_http: httpx.Client
) -> None:
    cases = [
        (method, path, body, key)
        for method, path, schema in _operations(exp_http)
        for body in _deep_bodies(schema)
        for key in (ADMIN, CLIENT)
    ]
    assert len(cases) > 100
    with HealthProbe(live_server.url) as probe:
        rounds = 0
        while rounds == 0 or len(probe.latencies_s) < 40:  # attack until the probe can judge
            for method, path, body, key in cases:
                headers = {**key, "content-type": "application/json"}
                answer = exp_http.request(method, path, content=body, headers=headers)
                assert 400 <= answer.status_code < 500, (method, path, body[:60], answer.text)
            rounds += 1
    probe.assert_responsive()
