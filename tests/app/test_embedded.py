"""`sharpen serve` with no Redis URL: embedded redis-server, dev keys, persistence, clean stop."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import httpx
import redis

from service.embedded import EmbeddedRedis
from tests._factories import fraud_spec
from tests._live import LiveServer
from tests.app._serve import serve_process
from tests.conftest import require_binary


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def _serve(tmp_path: Path) -> LiveServer:
    return serve_process(tmp_path / "data", tmp_path / "serve.log")


def test_embedded_serve_persists_and_cleans_up(tmp_path: Path) -> None:
    require_binary("redis-server", "redis-server")
    server = _serve(tmp_path).start()
    keys = json.loads((tmp_path / "data" / "dev-keys.json").read_text())
    assert oct((tmp_path / "data" / "dev-keys.json").stat().st_mode & 0o777) == "0o600"
    pid = int((tmp_path / "data" / "redis" / "redis.pid").read_text())
    assert _alive(pid)
    admin = {"Authorization": f"Bearer {keys['admin']}"}
    created = httpx.post(f"{server.url}/v1/experiments", json=fraud_spec(), headers=admin)
    assert created.status_code == 201
    assert httpx.post(f"{server.url}/v1/experiments/fraud-v7/start", headers=admin).is_success
    assert server.stop() == 0
    assert not _alive(pid), "the embedded redis-server outlived the service"
    log = (tmp_path / "serve.log").read_text()
    assert keys["admin"] in log and "client key" in log

    again = _serve(tmp_path)
    again.port = server.port
    again.start()
    try:
        same_keys = json.loads((tmp_path / "data" / "dev-keys.json").read_text())
        assert same_keys == keys
        record = httpx.get(f"{again.url}/v1/experiments/fraud-v7", headers=admin).json()
        assert record["status"] == "running"
        assert [e["action"] for e in record["audit"]] == ["create", "start"]
    finally:
        again.stop()


def test_service_without_keys_refuses_to_start(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHARPEN_")}
    env["SHARPEN_REDIS_URL"] = "redis://127.0.0.1:1/0"
    import subprocess

    done = subprocess.run(
        [sys.executable, "-m", "service.cli", "serve", "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "SHARPEN_ADMIN_KEYS" in done.stderr + done.stdout
    assert "Traceback" not in done.stderr


def test_data_survives_a_redis_crash(redis_server: EmbeddedRedis, redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    client.set("sharpen:{x}:probe", "kept")
    client.close()
    redis_server.kill()
    redis_server.start()
    client = redis.Redis.from_url(redis_url)
    assert client.get("sharpen:{x}:probe") == b"kept"
    client.close()
