"""`sharpen demo` end to end: a private server, the SDK, the aggregator and the monitor."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx

from tests._live import LiveServer
from tests.conftest import ADMIN, ADMIN_KEY, CLIENT_KEY, require_binary


def _demo(*args: str) -> tuple[int, list[str]]:
    done = subprocess.run(
        [sys.executable, "-m", "service.cli", "demo", *args],
        capture_output=True,
        text=True,
        timeout=280,
        env={"COLUMNS": "160", "PATH": "/usr/bin:/bin"},
    )
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    assert lines, done.stderr[-3000:]
    return done.returncode, lines


def test_regression_is_rolled_back_by_the_monitor() -> None:
    require_binary("redis-server", "redis-server")
    code, lines = _demo("--scenario", "regression", "--units", "8000", "--seed", "1")
    assert code == 0, "\n".join(lines[-30:])
    assert lines[-1] == "final status: rolled_back"
    text = "\n".join(lines)
    assert "country=DE" in text and "breached" in text


def test_win_is_shipped_and_journaled(server_env: dict[str, str], tmp_path: Path) -> None:
    env = {
        **server_env,
        "SHARPEN_RUN_WORKER": "true",
        "SHARPEN_MONITOR_INTERVAL_S": "1",
        "SHARPEN_AGGREGATOR_BLOCK_MS": "50",
    }
    server = LiveServer(env, log=tmp_path / "server.log").start()
    try:
        code, lines = _demo(
            "--url",
            server.url,
            "--api-key",
            ADMIN_KEY,
            "--client-key",
            CLIENT_KEY,
            "--scenario",
            "win",
            "--units",
            "12000",
            "--seed",
            "2",
        )
        assert code == 0, "\n".join(lines[-30:])
        assert lines[-1] == "final status: shipped"
        record = httpx.get(f"{server.url}/v1/experiments/fraud-v7-win-s2", headers=ADMIN).json()
        assert record["shipped_variant"] == "candidate"
        journal = httpx.get(f"{server.url}/v1/journal", headers=ADMIN)
        assert journal.status_code == 200, journal.text
        assert "fraud-v7-win-s2" in journal.text
    finally:
        server.stop()
