"""A second ``sharpen serve`` on the same port or data directory starts nothing and says why.

Real processes: one ``sharpen serve --dev`` with its embedded redis-server, then three
more that must each stop with a clear message before starting a redis-server of their own
(the first one's Redis log shows one start only, and the other data directory stays empty).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx

from service.embedded import free_port
from tests.app._serve import serve_args, serve_env, serve_process
from tests.conftest import require_binary


def _second(port: int, data: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        serve_args(port, data),
        env=serve_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _redis_starts(data: Path) -> int:
    log = data / "redis" / "redis.log"
    return log.read_text().count("Ready to accept connections") if log.exists() else 0


def test_a_second_serve_refuses_before_starting_anything(tmp_path: Path) -> None:
    require_binary("redis-server", "redis-server")
    data = tmp_path / "data"
    first = serve_process(data, tmp_path / "first.log").start()
    try:
        redis_pid = (data / "redis" / "redis.pid").read_text()
        assert _redis_starts(data) == 1

        assert first.process is not None
        same = _second(first.port, data)
        assert same.returncode == 1
        assert "already running" in same.stderr, same.stderr
        assert f"in use by process {first.process.pid}" in same.stderr, same.stderr

        other_port = _second(free_port(), data)
        assert other_port.returncode == 1
        assert "already running" in other_port.stderr, other_port.stderr

        elsewhere = tmp_path / "elsewhere"
        same_port = _second(first.port, elsewhere)
        assert same_port.returncode == 1
        assert f"cannot listen on 127.0.0.1:{first.port}" in same_port.stderr, same_port.stderr
        assert "already running" in same_port.stderr
        assert _redis_starts(elsewhere) == 0 and not (elsewhere / "redis" / "redis.pid").exists()

        # The first one never noticed: same Redis, one start, still serving.
        assert _redis_starts(data) == 1
        assert (data / "redis" / "redis.pid").read_text() == redis_pid
        assert httpx.get(f"{first.url}/healthz", timeout=5).status_code == 200
    finally:
        assert first.stop() == 0
    # Once it stopped, the directory is free again.
    again = serve_process(data, tmp_path / "again.log").start()
    try:
        assert _redis_starts(data) == 2
    finally:
        again.stop()
