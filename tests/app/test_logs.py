"""Request ids and structured logs: honoured or made, echoed, on every line; no secrets."""

from __future__ import annotations

import io
import json
import logging
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.logs import JSONFormatter, Redactor, configure_logging, settings_secrets
from tests._factories import simple_spec
from tests._live import LiveServer
from tests.conftest import ADMIN, ADMIN_KEY, CLIENT, CLIENT_KEY, make_settings


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """configure_logging into a buffer (JSON), restoring the root logger afterwards."""
    root = logging.getLogger()
    saved = (root.level, list(root.handlers))
    stream = io.StringIO()
    handler = configure_logging("json", "DEBUG", secrets=[ADMIN_KEY, CLIENT_KEY], stream=stream)
    yield stream
    root.removeHandler(handler)
    root.setLevel(saved[0])
    for h in saved[1]:
        if h not in root.handlers:
            root.addHandler(h)


@pytest.fixture
def app_client(redis_url: str) -> Iterator[TestClient]:
    app = create_app(make_settings(redis_url, access_log=True))

    @app.get("/test/log-deep", include_in_schema=False)
    async def deep() -> dict[str, str]:
        logging.getLogger("sharpen.somewhere").warning("deep in a route, key %s", ADMIN_KEY)
        return {"ok": "yes"}

    with TestClient(app) as client:
        yield client


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_request_id_is_honoured_generated_and_echoed(app_client: TestClient) -> None:
    assert (
        app_client.get("/healthz", headers={"X-Request-ID": "abc-123.x:y"}).headers["x-request-id"]
        == "abc-123.x:y"
    )
    made = app_client.get("/healthz").headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{16,}", made)
    assert app_client.get("/healthz").headers["x-request-id"] != made
    for bad in (b"has space", b"x" * 129, b"new\\nline", "ünïcode".encode()):
        echoed = app_client.get("/healthz", headers={b"X-Request-ID": bad})
        assert re.fullmatch(r"[0-9a-f]{16,}", echoed.headers["x-request-id"])
    # Every kind of answer carries it: the assign fast path, errors, 404s.
    assign = app_client.post(
        "/v1/assign",
        json={"experiment": "x", "unit_id": "u"},
        headers={**CLIENT, "X-Request-ID": "r1"},
    )
    assert assign.headers["x-request-id"] == "r1"
    missing = app_client.get("/v1/experiments/nope", headers={**ADMIN, "X-Request-ID": "r2"})
    assert missing.status_code == 404 and missing.headers["x-request-id"] == "r2"
    # Refused before any route: no key on the hot path, ambiguous keys, the batch endpoint.
    keyless = app_client.post("/v1/assign", json={}, headers={"X-Request-ID": "r3"})
    assert keyless.status_code == 401 and keyless.headers["x-request-id"] == "r3"
    both = {**CLIENT, "X-API-Key": "another-key", "X-Request-ID": "r4"}
    ambiguous = app_client.post("/v1/assign/batch", json={}, headers=both)
    assert ambiguous.status_code == 400 and ambiguous.headers["x-request-id"] == "r4"
    batch = app_client.post(
        "/v1/assign/batch", content=b"{", headers={**CLIENT, "X-Request-ID": "r5"}
    )
    assert batch.status_code == 422 and batch.headers["x-request-id"] == "r5"


def test_every_line_of_a_request_carries_its_id_and_no_key(
    app_client: TestClient, captured: io.StringIO
) -> None:
    answer = app_client.get("/test/log-deep", headers={**ADMIN, "X-Request-ID": "req-42"})
    assert answer.status_code == 200
    mine = [line for line in _lines(captured) if line.get("request_id") == "req-42"]
    loggers = {line["logger"] for line in mine}
    assert {"sharpen.somewhere", "sharpen.access"} <= loggers
    deep = next(line for line in mine if line["logger"] == "sharpen.somewhere")
    assert deep["level"] == "warning" and deep["message"] == "deep in a route, key [redacted]"
    access = next(line for line in mine if line["logger"] == "sharpen.access")
    assert access["status"] == 200 and access["path"] == "/test/log-deep"
    assert isinstance(access["duration_ms"], float)
    assert ADMIN_KEY not in captured.getvalue()
    # Outside a request there is no request id.
    logging.getLogger("sharpen.elsewhere").info("background")
    assert "request_id" not in _lines(captured)[-1]


def test_redactor_and_formatter() -> None:
    redactor = Redactor(
        settings_secrets(
            ["ops=s3cret-admin-key"],
            ["s3cret-client-key"],
            "webhook-secret-0123456789",
            "redis://user:redis-pass@host:6379/0",
        )
    )
    record = logging.LogRecord(
        "sharpen.t",
        logging.ERROR,
        __file__,
        1,
        "keys %s %s, hook %s, url %s, header %s",
        (
            "s3cret-admin-key",
            "s3cret-client-key",
            "webhook-secret-0123456789",
            "rediss://:other-pass@db/1",
            "Authorization: Bearer sk_live_abcdef",
        ),
        None,
    )
    try:
        raise ValueError("failed with s3cret-admin-key")
    except ValueError:
        record.exc_info = sys.exc_info()
    assert redactor.filter(record)
    doc = json.loads(JSONFormatter().format(record))
    text = json.dumps(doc)
    for secret in ("s3cret", "webhook-secret", "other-pass", "sk_live_abcdef"):
        assert secret not in text
    assert doc["message"].count("[redacted]") == 5
    assert "ValueError: failed with [redacted]" in doc["exc"]
    assert doc["level"] == "error" and doc["logger"] == "sharpen.t"


def test_sharpen_serve_json_logs_never_show_a_key(
    server_env: dict[str, str], tmp_path: Path
) -> None:
    log = tmp_path / "serve.log"
    args = [
        sys.executable,
        "-m",
        "service.cli",
        "serve",
        "--port",
        "{port}",
        "--log-format",
        "json",
        "--log-level",
        "debug",
        "--access-log",
    ]
    server = LiveServer(server_env, args=args, log=log).start()
    try:
        url = server.url
        spec = simple_spec("exp-logs")
        assert httpx.post(f"{url}/v1/experiments", json=spec, headers=ADMIN).status_code == 201
        httpx.post(f"{url}/v1/experiments/exp-logs/start", headers=ADMIN)
        httpx.post(
            f"{url}/v1/assign", json={"experiment": "exp-logs", "unit_id": "u1"}, headers=CLIENT
        )
        httpx.get(f"{url}/v1/experiments", headers=CLIENT)  # wrong scope: 403
        httpx.get(f"{url}/v1/experiments", headers={"Authorization": f"Bearer {ADMIN_KEY}x"})
        httpx.get(f"{url}/v1/experiments?api_key={ADMIN_KEY}", headers={"X-API-Key": CLIENT_KEY})
        httpx.post(f"{url}/v1/events", content=f"{{bad json {CLIENT_KEY}", headers=CLIENT)
        traced = httpx.get(
            f"{url}/v1/experiments/exp-logs", headers={**ADMIN, "X-Request-ID": "trace-me"}
        )
        assert traced.headers["x-request-id"] == "trace-me"
    finally:
        server.stop()
    text = log.read_text()
    assert ADMIN_KEY not in text and CLIENT_KEY not in text
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    assert any(
        line.get("request_id") == "trace-me"
        and line["logger"] == "sharpen.access"
        and line["status"] == 200
        for line in lines
    )
    assert {"ts", "level", "logger", "message"} <= set(lines[0])
    assert any(line["logger"].startswith("uvicorn") for line in lines)  # uvicorn's lines too
