"""Helpers shared by the assignment tests: specs and admin calls through the API."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
from fastapi.testclient import TestClient

from tests._factories import metric, spec
from tests._wait import wait_for
from tests.conftest import ADMIN, CLIENT

__all__ = [
    "act",
    "assign",
    "assign_batch",
    "create",
    "launch",
    "make_spec",
    "served_status",
    "start",
    "wait_status",
]

Client = TestClient | httpx.Client


def make_spec(key: str, **overrides: Any) -> dict[str, Any]:
    conv = metric("conv", value="converted", role="primary", mde=0.05)
    return spec(key, models=("v6", "v7"), metrics=[conv], **overrides)


def create(client: Client, key: str, **overrides: Any) -> dict[str, Any]:
    response = client.post("/v1/experiments", json=make_spec(key, **overrides), headers=ADMIN)
    assert response.status_code == 201, response.text
    return dict(response.json())


def start(client: Client, key: str, **overrides: Any) -> dict[str, Any]:
    create(client, key, **overrides)
    return act(client, key, "start")


def act(client: Client, key: str, action: str, **body: Any) -> dict[str, Any]:
    response = client.post(f"/v1/experiments/{key}/{action}", json=body or None, headers=ADMIN)
    assert response.status_code == 200, response.text
    return dict(response.json())


def assign(
    client: Client, key: str, unit_id: str | int, attributes: dict[str, Any] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"experiment": key, "unit_id": unit_id}
    if attributes is not None:
        body["attributes"] = attributes
    response = client.post("/v1/assign", json=body, headers=CLIENT)
    assert response.status_code == 200, response.text
    return dict(response.json())


def assign_batch(
    client: Client, key: str, units: list[str], attributes: list[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i in range(0, len(units), 1000):
        chunk = units[i : i + 1000]
        body_units: list[dict[str, Any]] = [{"unit_id": u} for u in chunk]
        if attributes is not None:
            for unit, attrs in zip(body_units, attributes[i : i + 1000], strict=True):
                unit["attributes"] = attrs
        response = client.post(
            "/v1/assign/batch",
            content=orjson.dumps({"experiment": key, "units": body_units}),
            headers={**CLIENT, "Content-Type": "application/json"},
        )
        assert response.status_code == 200, response.text
        out.extend(orjson.loads(response.content)["assignments"])
    return out


def served_status(client: Client, key: str) -> str | None:
    response = client.get("/v1/config", headers=CLIENT)
    assert response.status_code == 200, response.text
    entry = response.json()["experiments"].get(key)
    return None if entry is None else str(entry["status"])


def wait_status(client: Client, key: str, status: str) -> None:
    """Wait until ``client``'s config cache serves ``key`` with ``status``."""
    wait_for(
        lambda: served_status(client, key),
        until=lambda served: served == status,
        what=f"the config to serve {key} as {status}",
        interval_s=0.005,
    )


def launch(client: Client, key: str, **overrides: Any) -> dict[str, Any]:
    """Create, start, and wait until this app's cache serves it as running."""
    record = start(client, key, **overrides)
    wait_status(client, key, "running")
    return record
