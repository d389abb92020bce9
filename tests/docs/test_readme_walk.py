"""A new user's first hour: the README walked top to bottom on a fresh clone.

The repository's HEAD (commit first: uncommitted changes are not in the clone) is cloned
into a temporary directory. Installing would take minutes, so the clone's ``.venv`` is a
symlink to the environment running the tests (this checkout's ``.venv``), with
``PYTHONPATH`` pointing at the clone, which therefore runs the clone's code (checked).
Then, in the README's order:

* every ```` ```sh ```` line is run the way a reader would (``make run`` starts the service,
  on a free port through ``SHARPEN_PORT``; ``sharpen demo`` runs each scenario) or is
  named with the reason it is not run here; a command the walk does not know fails it;
* every generated block (``<!-- generated: … -->``) is run against that service and its
  output compared with the README's (times of day masked), then those of the docs;
* every complete Python example (one that reads ``SHARPEN_URL``) runs against it;
* every ``http://127.0.0.1:8000/…`` address the README gives answers.

The two demos run in the background while the rest walks on (about 15 s and 25 s).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from scripts import readme_outputs as gen
from service.embedded import EmbeddedRedisError, find_redis_server, free_port
from tests.conftest import ROOT

FENCE = re.compile(
    r"^(?P<indent>[ \t]*)```(?P<lang>\w*)\n(?P<body>.*?)^(?P=indent)```", re.S | re.M
)
LOCAL = re.compile(r"http://127\.0\.0\.1:8000(/[\w/.-]*)?")  # a page, or the bare base URL
NOT_RUN = {
    "make test": "the whole test suite, of which this walk is a part",
    "make check": "the linters, run by CI on their own",
}
DEMOS = {  # the demo's last line, which the README promises
    ".venv/bin/sharpen demo": "final status: rolled_back",
    ".venv/bin/sharpen demo --scenario win": "final status: shipped",
}
NOT_RUN_LANGS = {
    "js": "the TypeScript SDK, run by tests/sdk_js (needs node)",
    "markdown": "an example of `sharpen review`, which needs weeks of model data "
    "(tests/modelwatch)",
}


@dataclass
class Walk:
    clone: Path
    env: dict[str, str]
    url: str | None = None
    service: subprocess.Popen[bytes] | None = None
    demos: dict[str, subprocess.Popen[str]] = field(default_factory=dict)
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    drift: list[str] = field(default_factory=list)

    def python(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.clone / ".venv" / "bin" / "python"), *args],
            cwd=self.clone,
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=300,
        )


def _need(tool: str) -> None:
    if shutil.which(tool) is None:
        pytest.skip(f"the README walk needs {tool!r}, which is not installed")


@pytest.fixture
def walk(tmp_path: Path) -> Iterator[Walk]:
    _need("git")
    _need("make")
    try:
        find_redis_server()
    except EmbeddedRedisError as exc:
        pytest.skip(f"the README walk starts sharpen with embedded Redis: {exc}")
    venv = Path(sys.prefix)  # the environment running the tests, with sharpen installed
    if not (venv / "bin" / "sharpen").exists():
        pytest.skip(f"the README walk reuses the test environment, which lacks bin/sharpen: {venv}")
    dirty = subprocess.run(
        ["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    if dirty.strip():
        print("note: uncommitted changes are not walked (the clone is HEAD):\n" + dirty)
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, timeout=120)
    (clone / ".venv").symlink_to(venv)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SHARPEN_", "PYTHON")) and k not in ("COLUMNS", "LINES")
    }
    env.update(
        PYTHONPATH=f"{clone}{os.pathsep}{clone / 'sdk'}",
        NO_COLOR="1",
        TERM="dumb",
        PYTHONIOENCODING="utf-8",
    )
    state = Walk(clone, env)
    where = state.python("-c", "import service, sharpen; print(service.__file__, sharpen.__file__)")
    assert where.returncode == 0, where.stderr
    assert all(p.startswith(str(clone)) for p in where.stdout.split()), where.stdout
    try:
        yield state
    finally:
        for process in state.demos.values():
            if process.poll() is None:
                process.kill()
            process.communicate()
        if state.service is not None:
            _stop_group(state.service)


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    """Stop ``make run`` and what it started (its own process group)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _make_run(w: Walk) -> None:
    """``make run``, as the README says, on a free port. ``-o`` keeps make from reinstalling
    the shared .venv (the clone's pyproject.toml is newer than its install stamp)."""
    port = free_port()
    w.url = f"http://127.0.0.1:{port}"
    w.env["SHARPEN_URL"] = w.url
    log = w.clone / "make-run.log"
    with log.open("wb") as out:
        w.service = subprocess.Popen(
            ["make", "-o", ".venv/.installed", "run"],
            cwd=w.clone,
            env={**w.env, "SHARPEN_PORT": str(port)},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    gen.wait_healthy(w.url, w.service, log, timeout_s=120)
    printed = log.read_text()
    keys_file = w.clone / ".sharpen" / "dev-keys.json"
    assert "admin key:" in printed and "client key:" in printed, printed
    assert stat.S_IMODE(keys_file.stat().st_mode) == 0o600
    assert set(json.loads(keys_file.read_text())) >= {"admin", "client"}
    assert (w.clone / ".sharpen" / "redis").is_dir(), "the embedded Redis keeps its AOF there"


def _sh_line(w: Walk, line: str) -> None:
    command = line.split(" #", 1)[0].strip()
    if not command:
        return
    if command == "make run":
        _make_run(w)
    elif command in NOT_RUN:
        w.skipped.append(f"{command}: {NOT_RUN[command]}")
        return
    elif command in DEMOS:
        w.demos[command] = subprocess.Popen(
            shlex.split(command),
            cwd=w.clone,
            env=w.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
    else:
        pytest.fail(
            f"the README shows `{command}`: teach tests/docs/test_readme_walk.py to run it "
            "(and compare what it prints) or to say why it is not run"
        )
    w.ran.append(command)


def _generated(w: Walk, block: gen.Block) -> None:
    assert w.url is not None or block.spec == gen.CLI_TABLE, (
        f"the README shows {block.spec!r} before the service is started"
    )
    data_dir = w.clone / ".sharpen"  # make run's dev keys, where the CLI finds them
    run = gen.command_runner(
        {**gen.cli_env(w.url or "", data_dir), "PYTHONPATH": w.env["PYTHONPATH"]},
        w.clone,
        python=str(w.clone / ".venv" / "bin" / "python"),
    )
    new = gen.render_block(block, run)
    if not gen.same(block.body, new):
        w.drift.append(f"{block.path}, <!-- generated: {block.spec} -->:\n{gen.mask_times(new)}")
    w.ran.append(block.spec)


def _python(w: Walk, heading: str, code: str) -> None:
    if 'os.environ["SHARPEN_URL"]' not in code:
        w.skipped.append(f"python under {heading!r}: a fragment, not a program")
        return
    assert w.url is not None, f"the Python example under {heading!r} comes before make run"
    keys = json.loads((w.clone / ".sharpen" / "dev-keys.json").read_text())
    done = w.python("-c", code, SHARPEN_URL=w.url, SHARPEN_CLIENT_KEY=keys["client"])
    assert done.returncode == 0, f"the Python example under {heading!r}:\n{done.stderr}"
    assert done.stdout.strip(), f"the Python example under {heading!r} printed nothing"
    w.ran.append(f"python under {heading!r}: {done.stdout.strip()}")


def _heading(text: str, at: int) -> str:
    found = re.findall(r"^#+ (.+)$", text[:at], re.M)
    return found[-1] if found else "(top)"


def test_readme_walk(walk: Walk) -> None:
    text = (walk.clone / "README.md").read_text()
    generated = gen.blocks("README.md", text)
    steps: list[tuple[int, object]] = [(b.start, b) for b in generated]
    for m in FENCE.finditer(text):
        if not any(b.start <= m.start() < b.end for b in generated):
            steps.append((m.start(), m))
    for at, step in sorted(steps, key=lambda s: s[0]):
        if isinstance(step, gen.Block):
            _generated(walk, step)
            continue
        assert isinstance(step, re.Match)
        lang, body = step["lang"], step["body"]
        if lang == "sh":
            for line in body.splitlines():
                _sh_line(walk, line)
        elif lang == "python":
            _python(walk, _heading(text, at), body)
        elif lang in NOT_RUN_LANGS:
            walk.skipped.append(f"{lang} under {_heading(text, at)!r}: {NOT_RUN_LANGS[lang]}")
        else:
            pytest.fail(f"a ```{lang} block under {_heading(text, at)!r}: run it or say why not")

    assert walk.url is not None, "the README never starts the service"
    for path in gen.FILES[1:]:  # the docs' generated blocks, against the same service
        for block in gen.blocks(path, (walk.clone / path).read_text()):
            _generated(walk, block)
    for path in sorted({m.group(1).rstrip(".") for m in LOCAL.finditer(text) if m.group(1)}):
        answer = httpx.get(walk.url + path, follow_redirects=True, timeout=30)
        assert answer.status_code == 200, (
            f"{path} (shown in the README) answers {answer.status_code}"
        )
        walk.ran.append(f"GET {path}")

    assert "`final status: rolled_back`" in text
    for command, last_line in DEMOS.items():
        process = walk.demos.get(command)
        assert process is not None, f"the README no longer shows `{command}`"
        output, _ = process.communicate(timeout=600)
        assert process.returncode == 0, output
        assert output.rstrip().splitlines()[-1] == last_line, output

    print("ran:\n  " + "\n  ".join(walk.ran))
    print("not run here:\n  " + "\n  ".join(walk.skipped))
    assert not walk.drift, (
        "the README's generated blocks differ from what the commands print now "
        "(run `.venv/bin/python scripts/readme_outputs.py --write`):\n\n" + "\n\n".join(walk.drift)
    )
