"""Liveness, readiness against a Redis that goes away and comes back, and the OpenAPI docs."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from service.embedded import EmbeddedRedis


def test_healthz_and_readyz(api: TestClient) -> None:
    assert api.get("/healthz").json() == {"status": "ok"}
    assert api.get("/readyz").json() == {"status": "ready"}


def test_readyz_is_503_while_redis_is_down(api: TestClient, redis_server: EmbeddedRedis) -> None:
    redis_server.kill()
    try:
        response = api.get("/readyz")
        assert response.status_code == 503
        assert response.headers["retry-after"] == "1"
        assert response.json()["error"]["code"] == "unavailable"
        down = api.get("/v1/experiments", headers={"Authorization": "Bearer test-admin-key-0001"})
        assert down.status_code == 503
        assert "Traceback" not in down.text
        assert api.get("/healthz").status_code == 200
    finally:
        redis_server.start()
    assert api.get("/readyz").status_code == 200


def test_openapi_documents_every_v1_route(api: TestClient) -> None:
    schema = api.get("/openapi.json").json()
    paths = schema["paths"]
    assert "/v1/experiments" in paths and "/v1/experiments/{key}/start" in paths
    create = paths["/v1/experiments"]["post"]
    examples = create["requestBody"]["content"]["application/json"]["examples"]
    assert examples["fraud-v7"]["value"]["key"] == "fraud-v7"
    for path, item in paths.items():
        for method, operation in item.items():
            assert operation.get("summary"), f"{method.upper()} {path} has no summary"
            assert (
                "200" in operation["responses"]
                or "201" in operation["responses"]
                or ("202" in operation["responses"])
                or "204" in operation["responses"]
            ), f"{method.upper()} {path}"
    docs = api.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


def test_docs_page_is_served_from_the_service_with_no_external_host(api: TestClient) -> None:
    """Swagger UI comes from the installed package: offline, and no third party sees it."""
    page = api.get("/docs")
    assert page.status_code == 200
    refs = re.findall(r"""(?:src|href|url)\s*[:=]\s*['"]([^'"]+)['"]""", page.text)
    assert refs, page.text
    for ref in refs:
        assert ref.startswith("/"), f"/docs references {ref}"
    assert "http://" not in page.text and "https://" not in page.text
    for ref in refs:
        if ref.startswith("/docs/assets/"):
            asset = api.get(ref)
            assert asset.status_code == 200 and len(asset.content) > 100, ref
    assert api.get("/redoc").status_code == 404
