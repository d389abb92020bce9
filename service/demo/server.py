"""Start a private ``sharpen serve --dev`` for the demo when no URL is given."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from service.embedded import free_port

__all__ = ["DemoServer"]


class DemoServer:
    """A child service with embedded Redis, a 1 s monitor and its own data directory."""

    def __init__(self) -> None:
        self.port = free_port()
        self.data_dir = Path(tempfile.mkdtemp(prefix="sharpen-demo-"))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 60.0) -> tuple[str, str]:
        """Start and wait for readiness; return the (admin, client) dev keys."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("SHARPEN_")}
        env.update({"SHARPEN_MONITOR_INTERVAL_S": "1", "SHARPEN_AGGREGATOR_BLOCK_MS": "50"})
        log = (self.data_dir / "server.log").open("ab")
        with log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "service.cli",
                    "serve",
                    "--dev",
                    "--port",
                    str(self.port),
                    "--data-dir",
                    str(self.data_dir),
                    "--log-level",
                    "warning",
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    "the demo server exited: " + (self.data_dir / "server.log").read_text()[-2000:]
                )
            try:
                if httpx.get(f"{self.url}/readyz", timeout=0.5).status_code == 200:
                    keys = json.loads((self.data_dir / "dev-keys.json").read_text())
                    return keys["admin"], keys["client"]
            except (httpx.HTTPError, FileNotFoundError):
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("the demo server did not become ready")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(self.data_dir, ignore_errors=True)
