"""``sharpen serve --dev`` with its embedded redis-server, as a real process."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from tests._live import LiveServer

__all__ = ["serve_args", "serve_env", "serve_process"]


def serve_env(config_home: Path | None = None) -> dict[str, str]:
    """The environment without any ``SHARPEN_*`` setting (no Redis URL: embedded), and a
    private config dir (``serve --dev`` remembers its keys there, not in the user's)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHARPEN_")}
    env["XDG_CONFIG_HOME"] = str(config_home or Path(tempfile.mkdtemp(prefix="sharpen-config-")))
    return env


def serve_args(port: int | str, data: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "service.cli",
        "serve",
        "--dev",
        "--no-worker",
        "--port",
        str(port),
        "--data-dir",
        str(data),
    ]


def serve_process(data: Path, log: Path) -> LiveServer:
    """A LiveServer running ``sharpen serve`` on a free port with data in ``data``."""
    env = serve_env()
    server = LiveServer(env, args=serve_args("{port}", data), log=log)
    server.env = env
    return server
