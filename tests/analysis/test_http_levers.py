"""Reference upload, model settings and the paged errors behind each lever, over HTTP."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from service.store import keys
from tests._factories import simple_spec
from tests.analysis.test_taxonomy import pe
from tests.conftest import ADMIN, CLIENT, make_settings, running_app


@pytest.fixture(scope="module")
def planted() -> Any:
    return pe.generate(5000, d=12, seed=21, reference_rows=3000)


def _reference_body(planted: Any) -> dict[str, Any]:
    return {
        "features": {c: planted.reference[:, j].tolist() for j, c in enumerate(planted.columns)},
        "label": planted.reference_labels.tolist(),
    }


def _load(api: TestClient, planted: Any, name: str = "churn") -> None:
    r = api.post(f"/v1/models/{name}/reference", json=_reference_body(planted), headers=ADMIN)
    assert r.status_code == 201, r.text
    for i in range(0, len(planted.records), 2500):
        r = api.post(
            f"/v1/models/{name}/records",
            json={"records": planted.records[i : i + 2500]},
            headers=CLIENT,
        )
        assert r.status_code == 202, r.text


def test_uploaded_reference_drives_the_analysis_and_errors_page(
    api: TestClient, planted: Any
) -> None:
    _load(api, planted)
    (info,) = api.get("/v1/models", headers=ADMIN).json()["models"]
    assert info["has_reference"] and info["labelled"] == len(planted.records)
    body = api.get("/v1/models/churn/analysis", headers=ADMIN).json()
    ref = body["reference"]
    assert ref["source"] == "uploaded" and ref["records"] == 3000 and ref["labelled"] == 3000
    assert ref["features"]["x11"]["kind"] == "binary"  # the rare 0/1 feature: no range
    assert "p1" not in ref["features"]["x11"]
    levers = {row["lever"]: row for row in body["levers"]}
    assert sum(row["errors"] for row in body["levers"]) == body["overall"]["errors"]
    assert levers["distribution_shift"]["errors"] > 0

    seen: list[dict[str, Any]] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"lever": "distribution_shift", "limit": 40}
        if cursor:
            params["cursor"] = cursor
        page = api.get("/v1/models/churn/errors", params=params, headers=ADMIN).json()
        seen.extend(page["errors"])
        pages += 1
        cursor = page["next"]
        if cursor is None:
            break
    assert len(seen) == levers["distribution_shift"]["errors"] == page["total"]
    assert pages == -(-len(seen) // 40)
    assert len({e["record_id"] for e in seen}) == len(seen)  # no record twice
    assert all(e["lever"] == "distribution_shift" for e in seen)
    assert all(e["evidence"]["novelty"] > e["evidence"]["cutoff"] for e in seen)
    assert sum("x2" in e["evidence"]["features"] for e in seen) > len(seen) / 2

    partner = api.get(
        "/v1/models/churn/errors",
        params={"segment": "channel:partner", "limit": 1000},
        headers=ADMIN,
    ).json()
    assert partner["total"] > 0
    assert all(e["segment"]["channel"] == "partner" for e in partner["errors"])

    # The analysis runs again: old cursors are refused by name, never silently reused.
    first = api.get("/v1/models/churn/errors", params={"limit": 5}, headers=ADMIN).json()
    api.get("/v1/models/churn/analysis", headers=ADMIN)
    stale = api.get("/v1/models/churn/errors", params={"cursor": first["next"]}, headers=ADMIN)
    assert stale.status_code == 422
    assert stale.json()["error"]["details"][0]["field"] == "cursor"


def test_errors_page_runs_the_analysis_when_none_ran(api: TestClient, planted: Any) -> None:
    _load(api, planted, "fresh")
    page = api.get("/v1/models/fresh/errors", params={"limit": 3}, headers=ADMIN).json()
    assert len(page["errors"]) == 3 and page["next"] and page["total"] > 3


def test_errors_bad_input_names_the_field(api: TestClient, planted: Any) -> None:
    _load(api, planted, "m3")
    cases: list[tuple[dict[str, Any], str]] = [
        ({"lever": "magic"}, "lever"),
        ({"segment": "no-colon"}, "segment"),
        ({"cursor": "!!!"}, "cursor"),
        ({"limit": 0}, "limit"),
    ]
    for params, field in cases:
        r = api.get("/v1/models/m3/errors", params=params, headers=ADMIN)
        assert r.status_code == 422, params
        assert r.json()["error"]["details"][0]["field"] == field
    assert api.get("/v1/models/m3/errors", headers=CLIENT).status_code == 403
    assert api.get("/v1/models/ghost/errors", headers=ADMIN).status_code == 404


def test_reference_refusals_name_the_field(redis_url: str) -> None:
    settings = make_settings(redis_url, model_reference_max_values=1000)
    with running_app(settings) as api:
        cases: list[tuple[Any, str]] = [
            ([1, 2], "body"),
            ({"features": {}}, "features"),
            ({"features": {"a": [1, 2]}, "extra": 1}, "extra"),
            ({"features": {"a": 3}}, "features.a"),
            ({"features": {"a": [1, 2], "b": [1]}}, "features.b"),
            ({"features": {"a": [1, "x", 3]}}, "features.a.1"),
            ({"features": {"a": [1, [2], 3]}}, "features.a.1"),
            ({"features": {"a": []}}, "features.a"),
            ({"features": {"a": [1.0] * 1001}}, "features"),
            ({"features": {"a": [1, 2]}, "label": [1]}, "label"),
            ({"features": {"a": [1, 2]}, "label": [1, "yes"]}, "label.1"),
            ({"features": {f"f{i}": [1] for i in range(257)}}, "features"),
            ({"features": {"a": [1, 2]}, "categorical": ["b"]}, "categorical.0"),
            ({"features": {"a": [1, 2]}, "categorical": "a"}, "categorical"),
        ]
        for body, field in cases:
            r = api.post("/v1/models/m/reference", json=body, headers=ADMIN)
            assert r.status_code == 422, (body, r.text)
            assert r.json()["error"]["details"][0]["field"] == field, (body, r.json())
        r = api.post(
            "/v1/models/m/reference",
            content=b"{not json",
            headers={**ADMIN, "content-type": "application/json"},
        )
        assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "body"
        assert (
            api.post(
                "/v1/models/m/reference", json={"features": {"a": [1]}}, headers=CLIENT
            ).status_code
            == 403
        )


def test_reference_rows_are_bounded_before_reading_values(redis_url: str) -> None:
    settings = make_settings(redis_url, model_reference_max_bytes=4096)
    with running_app(settings) as api:
        big = {"features": {"a": [0.5] * 2000}}
        r = api.post("/v1/models/m/reference", json=big, headers=ADMIN)
        assert r.status_code == 413
    with running_app(make_settings(redis_url)) as api:
        rows = {"features": {"a": [0] * 200_001}}
        r = api.post("/v1/models/m/reference", json=rows, headers=ADMIN)
        assert r.status_code == 422
        assert "200,000 rows" in r.json()["error"]["details"][0]["message"]


def test_regression_tolerance_is_a_model_setting(api: TestClient) -> None:
    rng = np.random.default_rng(31)
    x = rng.normal(size=600)
    recs: list[dict[str, Any]] = [
        {
            "record_id": f"v{i}",
            "prediction": float(2 * x[i]),
            "label": float(2 * x[i] + rng.normal(0, 1)),
            "features": {"x": float(x[i])},
        }
        for i in range(600)
    ]
    assert (
        api.post("/v1/models/price/records", json={"records": recs}, headers=CLIENT).status_code
        == 202
    )
    r = api.put("/v1/models/price/settings", json={"tolerance": 1.5}, headers=ADMIN)
    settings = {"tolerance": 1.5, "positive": None}  # positive: the model monitor's
    assert r.status_code == 200 and r.json() == settings
    assert api.get("/v1/models/price/settings", headers=ADMIN).json() == settings
    body = api.get("/v1/models/price/analysis", headers=ADMIN).json()
    assert body["overall"]["mode"] == "regression" and body["overall"]["tolerance"] == 1.5
    assert body["overall"]["errors"] == sum(abs(r["prediction"] - r["label"]) > 1.5 for r in recs)
    bad = api.put("/v1/models/price/settings", json={"tolerance": -1}, headers=ADMIN)
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["field"] == "tolerance"
    # A tolerance on a label model is refused by name, not a 500.
    labels = [{"record_id": f"c{i}", "prediction": "cat", "label": "dog"} for i in range(5)]
    api.post("/v1/models/pets/records", json={"records": labels}, headers=CLIENT)
    api.put("/v1/models/pets/settings", json={"tolerance": 1.0}, headers=ADMIN)
    r = api.get("/v1/models/pets/analysis", headers=ADMIN)
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "tolerance"


def test_a_busy_analysis_slot_answers_503_with_retry_after(api: TestClient) -> None:
    recs = [{"record_id": f"b{i}", "prediction": 1, "label": 1} for i in range(10)]
    api.post("/v1/models/busy/records", json={"records": recs}, headers=CLIENT)
    runtime = api.app.state.runtime  # type: ignore[attr-defined]
    runtime.extras["analysis_slots"] = asyncio.Semaphore(0)  # every slot taken
    r = api.get("/v1/models/busy/analysis", headers=ADMIN)
    assert r.status_code == 503 and r.headers["retry-after"] == "5"
    runtime.extras["analysis_slots"] = asyncio.Semaphore(1)
    assert api.get("/v1/models/busy/analysis", headers=ADMIN).status_code == 200


def test_value_per_lever_comes_from_the_lines_impact(api: TestClient, planted: Any) -> None:
    _load(api, planted, "churn")
    plain = api.get("/v1/models/churn/analysis", headers=ADMIN).json()
    assert all(row["value"] is None for row in plain["levers"])
    spec = simple_spec("churn-v2", impact={"value_per_unit": 3.0, "currency": "EUR"})
    assert api.post("/v1/experiments", json=spec, headers=ADMIN).status_code == 201
    body = api.get("/v1/models/churn/analysis", headers=ADMIN).json()
    days = (planted.records[-1]["timestamp"] - planted.records[0]["timestamp"]) / 86_400
    for row in body["levers"]:
        fixed = row["expected_fixed"]
        if fixed["estimate"] is None or not row["errors"]:
            assert row["value"] is None
            continue
        value = row["value"]["per_year"]
        assert row["value"]["currency"] == "EUR"
        assert value["estimate"] == pytest.approx(fixed["estimate"] * 3.0 * 365 / days, rel=0.01)
        lo, hi = value["ci"]
        assert lo <= value["estimate"] <= hi


def test_reference_declares_categorical_features(api: TestClient) -> None:
    body = {"features": {"x": [0.1, 0.5, 0.9, 1.3] * 10, "store": [3, 7, 3, 9] * 10}}
    r = api.post(
        "/v1/models/shop/reference", json={**body, "categorical": ["store"]}, headers=ADMIN
    )
    assert r.status_code == 201, r.text
    store = r.json()["features"]["store"]
    assert store["kind"] == "categorical" and store["distinct"] == 3
    assert store["top"][0] == {"value": 3.0, "share": 0.5}
    assert r.json()["features"]["x"]["kind"] == "numeric"


def test_a_reference_from_before_rows_is_replaced_by_the_frozen_records(
    redis_url: str, redis_sync: Any
) -> None:
    # An older version kept percentile ranges only (no rows): the first records replace it.
    old = {"source": "first_records", "records": 100, "features": {"x": {"low": 0, "high": 1}}}
    redis_sync.set(keys.model_reference("legacy"), json.dumps(old))
    settings = make_settings(redis_url, model_reference_records=100)
    recs = [
        {"record_id": f"l{i}", "prediction": 1, "label": 1, "features": {"x": float(i % 7)}}
        for i in range(150)
    ]
    with running_app(settings) as api:
        assert api.get("/v1/models", headers=ADMIN).json()["models"] == []
        r = api.post("/v1/models/legacy/records", json={"records": recs}, headers=CLIENT)
        assert r.status_code == 202
        (info,) = api.get("/v1/models", headers=ADMIN).json()["models"]
        assert info["has_reference"]
        ref = api.get("/v1/models/legacy/analysis", headers=ADMIN).json()["reference"]
        assert ref["source"] == "first_records" and ref["records"] == 100
        assert ref["features"]["x"]["kind"] == "numeric"
