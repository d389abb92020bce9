"""Bodies that once answered 500: invalid UTF-8 inside a JSON string is a 4xx everywhere."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from tests.conftest import ADMIN, CLIENT

BAD = b'"\xff\xfe"'  # a JSON string whose bytes are not UTF-8

CASES = [
    (
        "/v1/events",
        b'{"events":[{"event_id":' + BAD + b',"experiment":"x","unit_id":"u",'
        b'"timestamp":1,"values":{"a":1}}]}',
        CLIENT,
    ),
    ("/v1/assign", b'{"experiment":' + BAD + b',"unit_id":"u"}', CLIENT),
    ("/v1/assign", b'{"experiment":"x","unit_id":"u","attributes":{"c":' + BAD + b"}}", CLIENT),
    ("/v1/assign/batch", b'{"experiment":' + BAD + b',"units":[{"unit_id":"u"}]}', CLIENT),
    (
        "/v1/exposures",
        b'{"exposures":[{"experiment":' + BAD + b',"unit_id":"u","variant":"a",'
        b'"version":1,"timestamp":"2024-01-01T00:00:00Z"}]}',
        CLIENT,
    ),
    ("/v1/models/m/records", b'{"records":[{"record_id":' + BAD + b',"timestamp":1}]}', CLIENT),
    ("/v1/experiments", b'{"key":' + BAD + b"}", ADMIN),
    ("/v1/plan", b'{"key":' + BAD + b"}", ADMIN),
    ("/v1/analyze", b'{"metric":' + BAD + b"}", ADMIN),
]


@pytest.mark.parametrize(("path", "body", "headers"), CASES, ids=[c[0] for c in CASES])
def test_invalid_utf8_in_a_string_is_a_client_error(
    api: TestClient, path: str, body: bytes, headers: dict[str, str]
) -> None:
    answer = api.post(path, content=body, headers={**headers, "content-type": "application/json"})
    assert 400 <= answer.status_code < 500, answer.text
    assert answer.json()["error"]["code"] in ("bad_request", "validation_failed")


def test_a_huge_planned_effect_plans_instead_of_failing(api: TestClient) -> None:
    """statsmodels finds no sample size below ~3 units per arm; that was a 500 everywhere."""
    spec = {
        "key": "huge-effect",
        "variants": [{"key": "a", "weight": 1}, {"key": "b", "weight": 1}],
        "baseline": "a",
        "metrics": [
            {
                "name": "m",
                "kind": "mean",
                "value": "v",
                "role": "primary",
                "mde": 5,
                "baseline_mean": 0.9,
            },
        ],
    }
    plan = api.post("/v1/plan", json=spec, headers=ADMIN)
    assert plan.status_code == 200, plan.text
    assert plan.json()["error"] is None and plan.json()["units_per_variant"] >= 1
    assert api.post("/v1/experiments", json=spec, headers=ADMIN).status_code == 201
    assert api.post("/v1/experiments/huge-effect/start", headers=ADMIN).status_code == 200
    assert api.get("/v1/experiments/huge-effect/results", headers=ADMIN).status_code == 200
    assert api.get("/v1/experiments/huge-effect/plan", headers=ADMIN).status_code == 200


@pytest.mark.parametrize("field", ["mde", "baseline_mean"])
def test_spec_numbers_must_be_finite(api: TestClient, field: str) -> None:
    """JSON's NaN/Infinity literals were accepted and then stored as null."""
    metric: dict[str, object] = {
        "name": "m",
        "kind": "mean",
        "value": "v",
        "role": "primary",
        "mde": 0.05,
        "baseline_mean": 1,
        field: "__NAN__",
    }
    spec = {
        "key": "nan-exp",
        "variants": [{"key": "a", "weight": 1}, {"key": "b", "weight": 1}],
        "baseline": "a",
        "metrics": [metric],
    }
    body = json.dumps(spec).replace('"__NAN__"', "NaN")
    for path in ("/v1/experiments", "/v1/plan"):
        answer = api.post(path, content=body, headers={**ADMIN, "content-type": "application/json"})
        assert answer.status_code == 422, answer.text
        assert answer.json()["error"]["details"][0]["field"] == f"metrics.0.{field}"
