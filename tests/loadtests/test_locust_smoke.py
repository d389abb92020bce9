"""The locust scenarios run against a live server without a single failed request."""

from __future__ import annotations

import re
import subprocess
import sys

import httpx

from tests._live import LiveServer
from tests.conftest import ADMIN, ADMIN_KEY, CLIENT_KEY, ROOT


def test_locustfile_runs_clean(live_server: LiveServer) -> None:
    env = {
        "SHARPEN_API_KEY": ADMIN_KEY,
        "SHARPEN_CLIENT_KEY": CLIENT_KEY,
        "SHARPEN_LOAD_EXPERIMENT": "locust-smoke",
        "PATH": "/usr/bin:/bin",
    }
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "locust",
            "-f",
            str(ROOT / "loadtests" / "locustfile.py"),
            "--host",
            live_server.url,
            "--headless",
            "-u",
            "4",
            "-r",
            "4",
            "-t",
            "4s",
            "--only-summary",
            "--stop-timeout",
            "5",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-3000:]
    rows = {
        m.group(2): (int(m.group(3)), int(m.group(4)))
        for m in re.finditer(r"^(POST|GET)\s+(\S+(?: x\d+)?)\s+(\d+)\s+(\d+)\(", out, re.MULTILINE)
    }
    assert rows["assign"][0] > 0 and rows["assign"][1] == 0, out[-3000:]
    assert all(fails == 0 for _, fails in rows.values()), rows
    record = httpx.get(f"{live_server.url}/v1/experiments/locust-smoke", headers=ADMIN).json()
    assert record["status"] == "running"
