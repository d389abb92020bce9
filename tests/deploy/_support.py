"""What the compose and Kubernetes checks share: the settings that exist, the CLI that
parses a container's arguments, and running a container's command outside Docker."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import yaml
from typer.testing import CliRunner

from service.cli import app
from service.embedded import free_port
from service.settings import Settings
from tests._live import LiveServer
from tests._wait import wait_for
from tests.conftest import ADMIN_KEY, CLIENT_KEY, ROOT

__all__ = [
    "DEPLOY",
    "SETTINGS_ENV",
    "TEST_SECRETS",
    "answers",
    "check_cli",
    "entrypoint",
    "load_yaml",
    "refusal",
    "run_container",
]

DEPLOY = ROOT / "deploy"
SETTINGS_ENV = frozenset(f"SHARPEN_{name.upper()}" for name in Settings.model_fields)
"""Every environment variable the service reads (``service/settings.py``)."""

TEST_SECRETS = {
    "SHARPEN_ADMIN_KEYS": f"ops={ADMIN_KEY}",
    "SHARPEN_CLIENT_KEYS": f"services={CLIENT_KEY}",
}


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def entrypoint() -> list[str]:
    """The Dockerfile's ENTRYPOINT: what a container's command/args are appended to."""
    found = re.search(r"^ENTRYPOINT (\[.*\])$", (ROOT / "Dockerfile").read_text(), re.M)
    assert found is not None, "the Dockerfile has no exec-form ENTRYPOINT"
    return list(yaml.safe_load(found.group(1)))


def check_cli(args: list[str]) -> None:
    """Fail unless ``sharpen ARGS`` names a real command with real options."""
    result = CliRunner().invoke(app, [*args, "--help"])
    assert result.exit_code == 0, f"`sharpen {' '.join(args)}` does not parse:\n{result.output}"


def _sharpen() -> str:
    path = shutil.which("sharpen", path=str(Path(sys.executable).parent))
    assert path is not None
    return path


@contextmanager
def run_container(
    args: list[str], env: Mapping[str, str], *, log: Path, ports: Mapping[str, int]
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``sharpen ARGS`` with exactly ``env`` (plus PATH), as a container would.

    ``ports`` maps each port variable of ``env`` (``SHARPEN_PORT``, ...) to the port the
    caller reserved for it; the host is loopback. Stopped with SIGTERM, as Kubernetes and
    Docker stop a container: it must finish by itself, exiting 0 or re-raising SIGTERM
    after its graceful shutdown (as uvicorn does).
    """
    full = {"PATH": os.environ.get("PATH", ""), **env, "SHARPEN_HOST": "127.0.0.1"}
    full.update({name: str(port) for name, port in ports.items()})
    server = LiveServer(full, log=log)  # for its stop(); the process is started here
    with log.open("ab") as out:
        process = server.process = subprocess.Popen(
            [_sharpen(), *args], env=full, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        yield process
    finally:
        code = server.stop(signal.SIGTERM)  # killed (-9) if it ignores SIGTERM for 20 s
    assert code in (0, -signal.SIGTERM), f"exit {code}: {log.read_text()[-2000:]}"


def answers(url: str, process: subprocess.Popen[bytes], log: Path) -> httpx.Response:
    """Wait until ``url`` answers 200 (failing at once if the process died)."""

    def probe() -> httpx.Response | None:
        if process.poll() is not None:
            raise AssertionError(f"exited {process.returncode}: {log.read_text()[-2000:]}")
        response = httpx.get(url, timeout=2)
        return response if response.status_code == 200 else None

    response = wait_for(probe, what=f"GET {url} to answer 200")
    assert response is not None
    return response


def refusal(args: list[str], env: Mapping[str, str]) -> str:
    """What ``sharpen ARGS`` prints when it refuses to start with ``env`` (exit != 0)."""
    full = {"PATH": os.environ.get("PATH", ""), **env, "SHARPEN_PORT": str(free_port())}
    done = subprocess.run(
        [_sharpen(), *args], env=full, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode != 0, f"`sharpen {args}` started with {dict(env)}"
    return done.stdout + done.stderr
