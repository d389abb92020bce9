"""The Docker image's entry command (`sharpen serve` with an external Redis), run outside Docker.

Docker cannot build here; this runs what the image runs, with the image's environment
(`SHARPEN_HOST`/`SHARPEN_PORT`, an external `SHARPEN_REDIS_URL`, keys), and probes it the
way its HEALTHCHECK does.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import urllib.request
from pathlib import Path

import httpx

from tests._live import LiveServer
from tests.conftest import ADMIN, ADMIN_KEY, CLIENT_KEY, ROOT


def _dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text()


def test_dockerfile_runs_sharpen_serve_as_non_root_with_a_healthcheck() -> None:
    text = _dockerfile()
    assert re.search(r'^ENTRYPOINT \["sharpen"\]$', text, re.M)
    assert re.search(r'^CMD \["serve"\]$', text, re.M)
    assert re.search(r"^USER sharpen$", text, re.M)
    assert "HEALTHCHECK" in text and "/healthz" in text
    assert text.count("FROM ") == 2, "multi-stage: build wheels, then a runtime stage"


def test_entry_command_serves_with_an_external_redis(redis_url: str, tmp_path: Path) -> None:
    sharpen = shutil.which("sharpen", path=str(Path(sys.executable).parent))
    assert sharpen is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHARPEN_")}
    env.update(
        {
            "SHARPEN_REDIS_URL": redis_url,
            "SHARPEN_ADMIN_KEYS": f"ops={ADMIN_KEY}",
            "SHARPEN_CLIENT_KEYS": f"svc={CLIENT_KEY}",
            "SHARPEN_HOST": "127.0.0.1",  # the image binds 0.0.0.0; loopback is enough here
            "PYTHONUNBUFFERED": "1",
        }
    )
    server = LiveServer(env, log=tmp_path / "serve.log")
    env["SHARPEN_PORT"] = str(server.port)
    server.env = env
    server.args = [sharpen, "serve"]
    server.start()
    try:
        healthcheck = re.search(r"urlopen\('([^']+)'", _dockerfile())
        assert healthcheck is not None
        probe = healthcheck.group(1).replace("8000", str(server.port))
        with urllib.request.urlopen(probe, timeout=5) as answer:
            assert answer.status == 200
        listed = httpx.get(f"{server.url}/v1/experiments", headers=ADMIN)
        assert listed.status_code == 200
    finally:
        assert server.stop() == 0
    assert "embedded" not in (tmp_path / "serve.log").read_text()
