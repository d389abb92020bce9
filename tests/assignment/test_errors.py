"""Bad input to the assignment endpoints: a clear 4xx in the error shape, naming the field."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.assignment._helpers import launch
from tests.conftest import ADMIN, CLIENT


@pytest.fixture
def running(api: TestClient) -> TestClient:
    launch(api, "err")
    return api


def _error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    return dict(body["error"])


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"unit_id": "u"}, "experiment"),
        ({"experiment": "err"}, "unit_id"),
        ({"experiment": "err", "unit_id": ""}, "unit_id"),
        ({"experiment": "err", "unit_id": "x" * 513}, "unit_id"),
        ({"experiment": "err", "unit_id": 1.5}, "unit_id"),
        ({"experiment": "err", "unit_id": None}, "unit_id"),
        ({"experiment": "Not A Key", "unit_id": "u"}, "experiment"),
        ({"experiment": 5, "unit_id": "u"}, "experiment"),
        ({"experiment": "err", "unit_id": "u", "attributes": []}, "attributes"),
        ({"experiment": "err", "unit_id": "u", "attributes": {"a": {"b": 1}}}, "attributes.a"),
        ({"experiment": "err", "unit_id": "u", "attributes": {"k": [1]}}, "attributes.k"),
        (
            {"experiment": "err", "unit_id": "u", "attributes": {f"a{i}": 1 for i in range(65)}},
            "attributes",
        ),
        ({"experiment": "err", "unit_id": "u", "extra": True}, "extra"),
        ([], "body"),
    ],
)
def test_bad_assign_bodies_name_the_field(running: TestClient, body: Any, field: str) -> None:
    error = _error(running.post("/v1/assign", json=body, headers=CLIENT), 422)
    assert error["code"] == "validation_failed"
    assert [d["field"] for d in error["details"]] == [field]


def test_invalid_json_is_422(running: TestClient) -> None:
    response = running.post("/v1/assign", content=b'{"experiment": ', headers=CLIENT)
    error = _error(response, 422)
    assert error["details"] == [{"field": "body", "message": "body is not valid JSON"}]


def test_unknown_experiment_is_404(running: TestClient) -> None:
    for path, body in (
        ("/v1/assign", {"experiment": "missing", "unit_id": "u"}),
        ("/v1/assign/batch", {"experiment": "missing", "units": [{"unit_id": "u"}]}),
    ):
        error = _error(running.post(path, json=body, headers=CLIENT), 404)
        assert error["code"] == "not_found" and "'missing'" in error["message"]


def test_auth_is_checked_on_the_fast_path(running: TestClient) -> None:
    body = {"experiment": "err", "unit_id": "u"}
    missing = running.post("/v1/assign", json=body)
    assert _error(missing, 401)["code"] == "unauthorized"
    assert missing.headers["WWW-Authenticate"] == "Bearer"
    unknown = running.post("/v1/assign", json=body, headers={"Authorization": "Bearer nope"})
    assert _error(unknown, 401)["message"] == "unknown API key"
    assert _error(running.post("/v1/assign", json=body, headers=ADMIN), 403)["code"] == (
        "forbidden"
    )
    via_header = running.post(
        "/v1/assign", json=body, headers={"X-API-Key": CLIENT["Authorization"][7:]}
    )
    assert via_header.status_code == 200


def test_oversized_bodies_are_413(running: TestClient) -> None:
    big = b'{"experiment": "err", "unit_id": "' + b"x" * (1 << 20) + b'"}'
    for path in ("/v1/assign", "/v1/assign/batch"):
        error = _error(running.post(path, content=big, headers=CLIENT), 413)
        assert error["code"] == "payload_too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit applies while reading
        for _ in range(20):
            yield b"x" * 100_000

    streamed = running.post("/v1/assign", content=chunks(), headers=CLIENT)
    assert _error(streamed, 413)["details"][0]["field"] == "body"


def test_batch_limits_and_unit_fields(running: TestClient) -> None:
    too_many = {"experiment": "err", "units": [{"unit_id": f"u{i}"} for i in range(1001)]}
    error = _error(running.post("/v1/assign/batch", json=too_many, headers=CLIENT), 422)
    assert error["details"][0]["field"] == "units"
    bad_unit = {"experiment": "err", "units": [{"unit_id": "a"}, {"unit_id": ""}]}
    error = _error(running.post("/v1/assign/batch", json=bad_unit, headers=CLIENT), 422)
    assert error["details"][0]["field"] == "units.1.unit_id"
    missing = {"experiment": "err", "units": [{"attributes": {}}]}
    error = _error(running.post("/v1/assign/batch", json=missing, headers=CLIENT), 422)
    assert error["details"][0]["field"] == "units.0.unit_id"
    empty = running.post(
        "/v1/assign/batch", json={"experiment": "err", "units": []}, headers=CLIENT
    )
    assert empty.status_code == 200 and empty.json() == {"assignments": []}


def test_other_methods_fall_through_to_the_router(running: TestClient) -> None:
    response = running.get("/v1/assign", headers=CLIENT)
    assert _error(response, 405)["code"] == "method_not_allowed"


def test_endpoints_are_documented(running: TestClient) -> None:
    paths = running.get("/openapi.json").json()["paths"]
    assign = paths["/v1/assign"]["post"]
    schema = assign["requestBody"]["content"]["application/json"]["schema"]
    assert set(schema["required"]) == {"experiment", "unit_id"}
    assert "200" in assign["responses"] and "404" in assign["responses"]
    batch = paths["/v1/assign/batch"]["post"]["requestBody"]["content"]["application/json"]
    assert "$ref" not in str(batch["schema"])  # self-contained
    assert "post" in paths["/v1/exposures"] and "get" in paths["/v1/config"]
