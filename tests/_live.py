"""A real uvicorn process serving sharpen on a free port, for end-to-end tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from service.embedded import free_port
from tests._wait import GiveUp, WaitTimeout, log_tail, wait_for

__all__ = ["LiveServer"]


class LiveServer:
    def __init__(self, env: dict[str, str], *, args: list[str] | None = None, log: Path) -> None:
        self.env = {**os.environ, **env}
        self.port = free_port()
        self.args = args
        self.log_path = log
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 30.0) -> LiveServer:
        args = self.args or [
            sys.executable,
            "-m",
            "uvicorn",
            "service.app:app_from_env",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--log-level",
            "warning",
        ]
        args = [a.replace("{port}", str(self.port)) for a in args]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                args, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        try:
            wait_for(
                self._healthy,
                what=f"the server on {self.url} to answer /healthz",
                explain=log_tail(self.log_path, 3000),
                timeout_s=timeout_s,
                interval_s=0.05,
            )
        except (GiveUp, WaitTimeout):
            self.stop()
            raise
        return self

    def _healthy(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise GiveUp(f"server exited: {self.log_path.read_text()[-3000:]}")
        return httpx.get(f"{self.url}/healthz", timeout=0.5).status_code == 200

    def stop(self, sig: int = signal.SIGINT, timeout_s: float = 20.0) -> int | None:
        process, self.process = self.process, None
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(sig)
            try:
                process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return process.returncode

    def kill(self) -> None:
        self.stop(signal.SIGKILL)
