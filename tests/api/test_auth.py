"""Every endpoint under /v1: no key → 401, unknown key → 401, the other scope's key → 403."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.auth import KeyRing, presented_key
from service.settings import Settings
from tests.conftest import ADMIN, ADMIN_KEY, CLIENT, CLIENT_KEY, make_settings


def _v1_routes() -> list[tuple[str, str]]:
    schema = create_app(make_settings("redis://127.0.0.1:1/0")).openapi()
    found: list[tuple[str, str]] = []
    for route, operations in schema["paths"].items():
        if route.startswith("/v1/"):
            path = re.sub(r"\{[^}]+\}", "fraud-v7", route)
            found.extend((method.upper(), path) for method in sorted(operations))
    return found


ROUTES = _v1_routes()


@pytest.fixture
def settings(redis_url: str) -> Settings:
    # An admitted GET /v1/config/stream never ends, and the in-process client waits for
    # the whole answer: with no streams allowed, the client key gets 429 rather than 403.
    return make_settings(redis_url, config_stream_max_per_key=0)


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
def test_scopes(api: TestClient, method: str, path: str) -> None:
    missing = api.request(method, path, json={})
    assert missing.status_code == 401, missing.text
    assert missing.json()["error"]["code"] == "unauthorized"
    unknown = api.request(method, path, json={}, headers={"Authorization": "Bearer nope-nope"})
    assert unknown.status_code == 401
    statuses = {
        scope: api.request(method, path, json={}, headers=headers).status_code
        for scope, headers in (("admin", ADMIN), ("client", CLIENT))
    }
    assert sorted(statuses.values()).count(403) == 1, statuses
    forbidden = next(s for s, code in statuses.items() if code == 403)
    body = api.request(method, path, json={}, headers=ADMIN if forbidden == "admin" else CLIENT)
    assert body.json()["error"]["code"] == "forbidden"


def test_experiments_need_admin(api: TestClient) -> None:
    assert api.get("/v1/experiments", headers=CLIENT).status_code == 403
    assert api.get("/v1/experiments", headers=ADMIN).status_code == 200


def test_x_api_key_header_is_accepted(api: TestClient) -> None:
    response = api.get("/v1/experiments", headers={"X-API-Key": "test-admin-key-0001"})
    assert response.status_code == 200


def test_keyring_keeps_no_plaintext() -> None:
    ring = KeyRing.from_config(["ops=super-secret-admin"], ["plain-client-key"])
    assert "super-secret-admin" not in repr(ring.__dict__)
    who = ring.resolve("super-secret-admin")
    assert who is not None and (who.name, who.scope) == ("ops", "admin")
    client = ring.resolve("plain-client-key")
    assert client is not None and (client.name, client.scope) == ("client-1", "client")
    assert ring.resolve("super-secret-admin ") is None


def test_settings_refuse_to_start_without_keys() -> None:
    with pytest.raises(ValueError, match="SHARPEN_ADMIN_KEYS"):
        Settings(redis_url="redis://x:1/0")
    with pytest.raises(ValueError, match="at least 8 characters"):
        Settings(redis_url="redis://x:1/0", admin_keys=["short"], client_keys=["long-enough"])
    with pytest.raises(ValueError, match="redis://"):
        Settings(redis_url="http://x", dev=True)
    assert Settings(dev=True).redis_url is None


@pytest.mark.parametrize(
    ("headers", "field"),
    [
        ([("X-API-Key", ADMIN_KEY), ("X-API-Key", "junk-junk-junk")], "headers.X-API-Key"),
        ([("X-API-Key", ADMIN_KEY), ("X-API-Key", ADMIN_KEY)], "headers.X-API-Key"),
        (
            [("Authorization", f"Bearer {ADMIN_KEY}"), ("Authorization", "Bearer junk-junk")],
            "headers.Authorization",
        ),
        (
            [("Authorization", f"Bearer {ADMIN_KEY}"), ("X-API-Key", CLIENT_KEY)],
            "headers.X-API-Key",
        ),
    ],
    ids=["two-keys", "same-key-twice", "two-authorizations", "bearer-and-key-disagree"],
)
def test_ambiguous_credentials_are_refused_naming_the_header(
    api: TestClient, headers: list[tuple[str, str]], field: str
) -> None:
    for method, path in (("GET", "/v1/experiments"), ("POST", "/v1/assign"), ("GET", "/healthz")):
        refused = api.request(method, path, headers=headers, json={})
        assert refused.status_code == 400, (path, refused.text)
        error = refused.json()["error"]
        assert error["code"] == "bad_request"
        assert [d["field"] for d in error["details"]] == [field]
        assert ADMIN_KEY not in refused.text and CLIENT_KEY not in refused.text


def test_the_same_key_in_both_headers_is_one_key(api: TestClient) -> None:
    both = {"Authorization": f"Bearer {ADMIN_KEY}", "X-API-Key": ADMIN_KEY}
    assert api.get("/v1/experiments", headers=both).status_code == 200


def test_another_authorization_scheme_is_not_a_sharpen_key(api: TestClient) -> None:
    headers = {"Authorization": "Basic dXNlcjpwYXNz", "X-API-Key": ADMIN_KEY}
    assert api.get("/v1/experiments", headers=headers).status_code == 200
    missing = api.get("/v1/experiments", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert missing.status_code == 401 and "missing API key" in missing.text


def test_presented_key_reads_each_header_once() -> None:
    assert presented_key([]) is None
    assert presented_key([(b"authorization", b"Bearer  abc ")]) == "abc"
    assert presented_key([(b"x-api-key", b"abc")]) == "abc"
    assert presented_key([(b"x-api-key", b"")]) is None
    assert presented_key([(b"authorization", b"Bearer abc"), (b"x-api-key", b"abc")]) == "abc"


def test_identity_repr_shows_no_digest() -> None:
    who = KeyRing.from_config(["ops=super-secret-admin"], []).resolve("super-secret-admin")
    assert who is not None and repr(who) == "Identity(name='ops', scope='admin')"
