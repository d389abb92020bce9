"""The Docker image, read with a Dockerfile parser and its entry command run outside Docker.

Docker cannot build here: the runtime stage is checked for what matters (a non-root user it
creates, a HEALTHCHECK, an entrypoint that serves), then the image's own entry command,
environment and HEALTHCHECK command are run against a real process with an external Redis.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx
from dockerfile_parse import DockerfileParser

from tests._live import LiveServer
from tests.conftest import ADMIN, ADMIN_KEY, CLIENT_KEY, ROOT


@dataclass(frozen=True)
class Stage:
    name: str
    instructions: list[tuple[str, str]]  # (INSTRUCTION, value), comments left out

    def values(self, instruction: str) -> list[str]:
        return [value for name, value in self.instructions if name == instruction]

    def last(self, instruction: str) -> str:
        found = self.values(instruction)
        assert found, f"stage {self.name!r} has no {instruction}"
        return found[-1]


def _stages() -> list[Stage]:
    parser = DockerfileParser(path=str(ROOT / "Dockerfile"))
    stages: list[Stage] = []
    for item in parser.structure:
        instruction, value = item["instruction"], item["value"]
        if instruction == "FROM":
            stages.append(Stage(value.split(" AS ")[-1].strip(), []))
        elif instruction != "COMMENT":
            assert stages, f"{instruction} before the first FROM"
            stages[-1].instructions.append((instruction, value))
    return stages


def _runtime() -> Stage:
    return _stages()[-1]


def _env(stage: Stage) -> dict[str, str]:
    env: dict[str, str] = {}
    for value in stage.values("ENV"):
        env.update(dict(pair.split("=", 1) for pair in shlex.split(value)))
    return env


def _healthcheck_command(stage: Stage) -> list[str]:
    words = shlex.split(stage.last("HEALTHCHECK"))
    assert "CMD" in words, words
    options, command = words[: words.index("CMD")], words[words.index("CMD") + 1 :]
    assert all(o.startswith("--") for o in options), options
    return command


def test_the_runtime_stage_is_built_from_wheels_and_runs_as_its_own_user() -> None:
    build, runtime = _stages()
    assert (build.name, runtime.name) == ("build", "runtime")
    assert runtime.values("COPY") == ["--from=build /wheels /wheels"], "only the wheels"
    user = runtime.last("USER")
    assert user.split(":")[0] not in ("root", "0")
    created = [r for r in runtime.values("RUN") if r.startswith("useradd")]
    assert created and shlex.split(created[0])[-1] == user
    # USER comes before the entry point is reached, and nothing switches back to root.
    names = [name for name, _ in runtime.instructions]
    assert names.index("USER") < names.index("ENTRYPOINT")
    assert runtime.values("USER") == [user]


def test_the_entrypoint_serves_and_the_healthcheck_probes_it() -> None:
    runtime = _runtime()
    entry = json.loads(runtime.last("ENTRYPOINT")) + json.loads(runtime.last("CMD"))
    assert entry == ["sharpen", "serve"]
    env = _env(runtime)
    assert env["SHARPEN_HOST"] == "0.0.0.0"
    assert runtime.last("EXPOSE") == env["SHARPEN_PORT"]
    command = _healthcheck_command(runtime)
    assert command[:2] == ["python", "-c"]
    assert f"127.0.0.1:{env['SHARPEN_PORT']}/healthz" in command[2]


def test_entry_command_serves_with_an_external_redis(redis_url: str, tmp_path: Path) -> None:
    runtime = _runtime()
    entry = json.loads(runtime.last("ENTRYPOINT")) + json.loads(runtime.last("CMD"))
    executable = shutil.which(entry[0], path=str(Path(sys.executable).parent))
    assert executable is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHARPEN_")}
    env.update(_env(runtime))
    env.update(
        {
            "SHARPEN_REDIS_URL": redis_url,
            "SHARPEN_ADMIN_KEYS": f"ops={ADMIN_KEY}",
            "SHARPEN_CLIENT_KEYS": f"svc={CLIENT_KEY}",
            "SHARPEN_HOST": "127.0.0.1",  # the image binds 0.0.0.0; loopback is enough here
        }
    )
    server = LiveServer(env, log=tmp_path / "serve.log")
    image_port = env["SHARPEN_PORT"]
    env["SHARPEN_PORT"] = str(server.port)
    server.env = env
    server.args = [executable, *entry[1:]]
    server.start()
    try:
        # The image's HEALTHCHECK command itself, pointed at this process's port.
        probe = _healthcheck_command(runtime)
        probe = [
            sys.executable,
            *(w.replace(f":{image_port}/", f":{server.port}/") for w in probe[1:]),
        ]
        healthy = subprocess.run(probe, capture_output=True, text=True, timeout=30)
        assert healthy.returncode == 0, healthy.stderr
        listed = httpx.get(f"{server.url}/v1/experiments", headers=ADMIN)
        assert listed.status_code == 200
    finally:
        assert server.stop() == 0
    assert "embedded" not in (tmp_path / "serve.log").read_text()
