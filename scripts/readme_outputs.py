"""Fill the README's (and docs') generated blocks from the real commands, or check them.

A block is delimited by two HTML comments, which Markdown does not show::

    <!-- generated: sharpen apply examples/fraud-v7.yaml; sharpen start fraud-v7 -->
    ```console
    $ sharpen apply examples/fraud-v7.yaml
    created fraud-v7 (status draft, version 1)
    ...
    ```
    <!-- end -->

The marker lists the commands, separated by ``;``, exactly as a reader types them; the
block shows each after ``$`` with what it printed. ``cli-table`` instead renders the
table of every command of the ``sharpen`` typer app. Command blocks run in document
order, file after file, against one fresh service (``sharpen serve --dev`` on a free
port, embedded Redis in a temporary directory), so a block may rely on the ones above
it (``start`` after ``apply``).

    .venv/bin/python scripts/readme_outputs.py --write   # refresh the blocks
    .venv/bin/python scripts/readme_outputs.py --check   # exit 1 and show the drift

Times of day differ from run to run: ``--check`` compares with them masked, ``--write``
keeps a block whose only difference is its times.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import typer
from typer.core import TyperArgument, TyperGroup, TyperOption

ROOT = Path(__file__).resolve().parent.parent
FILES = ("README.md", "docs/cli.md")
BLOCK = re.compile(
    r"^(?P<indent>[ \t]*)<!-- generated: (?P<spec>.+?) -->\n(?P<body>.*?)^[ \t]*<!-- end -->",
    re.S | re.M,
)
CLI_TABLE = "cli-table"
_TIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d(?::\d\d)? UTC")
_COMMON_OPTIONS = {"--url", "--api-key", "--help"}
Runner = Callable[[list[str]], str]


@dataclass(frozen=True)
class Block:
    path: str
    spec: str
    indent: str
    body: str
    start: int
    end: int

    @property
    def commands(self) -> list[str]:
        return [c.strip() for c in self.spec.split(";") if c.strip()]


def blocks(path: str, text: str) -> list[Block]:
    """The generated blocks of ``text``, in order."""
    return [
        Block(path, m["spec"], m["indent"], m["body"], m.start("body"), m.end("body"))
        for m in BLOCK.finditer(text)
    ]


def mask_times(text: str) -> str:
    return _TIME.sub("YYYY-MM-DD HH:MM UTC", text)


def argv_of(command: str) -> list[str]:
    """The argv of a shown ``sharpen`` command (``.venv/bin/sharpen …`` or ``sharpen …``)."""
    words = shlex.split(command)
    if not words or Path(words[0]).name != "sharpen":
        raise ValueError(f"a generated block runs sharpen commands only, not {command!r}")
    return words[1:]


def _usage(name: str, command: Any) -> str:
    words = ["sharpen", name]
    for param in command.params:
        if isinstance(param, TyperArgument):
            words.append((param.metavar or param.name or "ARG").upper())
    return " ".join(words)


def _options(command: Any) -> str:
    names = []
    for param in command.params:
        if isinstance(param, TyperOption) and not param.hidden:
            name = max(param.opts, key=len)
            if name in _COMMON_OPTIONS:
                continue
            if param.is_flag and param.secondary_opts:
                name = f"{name}/{max(param.secondary_opts, key=len)}"
            names.append(f"`{name}`")
    return ", ".join(names) or "-"


def _first_sentence(text: str | None) -> str:
    line = " ".join((text or "").split("\n\n")[0].split())
    head = re.split(r"[.;] ", line, maxsplit=1)[0]
    return head.strip().rstrip(".") + "."


def cli_table() -> str:
    """Every command of the ``sharpen`` app: usage, its own options, what it does."""
    from service.cli import app

    group = typer.main.get_command(app)
    assert isinstance(group, TyperGroup)
    rows = [
        "| command | options | what |",
        "| --- | --- | --- |",
    ]
    for name, command in group.commands.items():
        rows.append(
            f"| `{_usage(name, command)}` | {_options(command)} | {_first_sentence(command.help)} |"
        )
    return "\n".join(rows) + "\n"


def console_block(commands: list[str], run: Runner) -> str:
    lines = ["```console"]
    for command in commands:
        lines.append(f"$ {command}")
        output = run(argv_of(command))
        lines += [line.rstrip() for line in output.rstrip("\n").split("\n")]
    lines.append("```")
    return "\n".join(lines) + "\n"


def render_block(block: Block, run: Runner) -> str:
    body = cli_table() if block.spec == CLI_TABLE else console_block(block.commands, run)
    return "".join(
        (block.indent + line if line.strip() else line) + "\n" for line in body.splitlines()
    )


def same(old: str, new: str) -> bool:
    return mask_times(old) == mask_times(new)


def fill(path: str, text: str, run: Runner) -> tuple[str, list[str]]:
    """``text`` with every block regenerated, and a unified diff of each that drifted
    (times masked); a block that did not drift keeps its text."""
    out, drift, last = [], [], 0
    for block in blocks(path, text):
        new = render_block(block, run)
        out.append(text[last : block.start])
        if same(block.body, new):
            out.append(block.body)
        else:
            out.append(new)
            drift.append(
                "".join(
                    difflib.unified_diff(
                        mask_times(block.body).splitlines(keepends=True),
                        mask_times(new).splitlines(keepends=True),
                        f"{path} (<!-- generated: {block.spec} -->)",
                        "what the command prints now",
                    )
                )
            )
        last = block.end
    out.append(text[last:])
    return "".join(out), drift


def cli_env(url: str, data_dir: Path) -> dict[str, str]:
    """The environment the shown commands run in: the service at ``url`` with its dev keys,
    plain text output (no colours, no terminal width)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("SHARPEN_") and k not in ("COLUMNS", "LINES")
    }
    env.update(
        SHARPEN_URL=url,
        SHARPEN_DATA_DIR=str(data_dir),
        NO_COLOR="1",
        TERM="dumb",
        PYTHONIOENCODING="utf-8",
    )
    return env


def command_runner(env: dict[str, str], cwd: Path, python: str = sys.executable) -> Runner:
    """Run ``sharpen ARGS`` as the installed script does; stdout and stderr together."""

    def run(args: list[str]) -> str:
        done = subprocess.run(
            [python, "-m", "service.cli", *args],
            env=env,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=300,
        )
        output = done.stdout + done.stderr
        if done.returncode != 0:
            raise RuntimeError(f"sharpen {shlex.join(args)} exited {done.returncode}:\n{output}")
        return output

    return run


def wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"sharpen serve exited:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"sharpen serve not healthy in {timeout_s:g} s:\n{log.read_text()}")
        time.sleep(0.1)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def dev_service(
    workdir: Path, *, cwd: Path = ROOT, python: str = sys.executable, timeout_s: float = 60
) -> Iterator[tuple[str, Path]]:
    """``sharpen serve --dev`` on a free port with its data (embedded Redis, dev keys) in
    ``workdir``; yields its URL and data directory, and stops it."""
    from service.embedded import free_port

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    data_dir = workdir / "data"
    log = workdir / "serve.log"
    env = cli_env(url, data_dir)
    with log.open("wb") as out:
        process = subprocess.Popen(
            [python, "-m", "service.cli", "serve", "--dev", "--port", str(port)],
            env=env,
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_healthy(url, process, log, timeout_s)
        yield url, data_dir
    finally:
        stop(process)


def needs_service(texts: dict[str, str]) -> bool:
    return any(b.spec != CLI_TABLE for path, text in texts.items() for b in blocks(path, text))


def regenerate(
    root: Path = ROOT, files: tuple[str, ...] = FILES
) -> dict[str, tuple[str, list[str]]]:
    """Every file's text with its blocks regenerated, and the drift of each."""
    texts = {path: (root / path).read_text() for path in files}

    def fill_all(run: Runner) -> dict[str, tuple[str, list[str]]]:
        return {path: fill(path, text, run) for path, text in texts.items()}

    if not needs_service(texts):
        return fill_all(lambda args: "")
    with tempfile.TemporaryDirectory(prefix="sharpen-readme-") as tmp:
        with dev_service(Path(tmp), cwd=root) as (url, data_dir):
            return fill_all(command_runner(cli_env(url, data_dir), root))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="rewrite the blocks that drifted")
    mode.add_argument("--check", action="store_true", help="exit 1 if any block drifted")
    args = parser.parse_args(argv)
    results = regenerate()
    drifted = 0
    for path, (text, drift) in results.items():
        drifted += len(drift)
        if args.write and drift:
            (ROOT / path).write_text(text)
            print(f"{path}: {len(drift)} block(s) rewritten")
        elif args.check:
            for diff in drift:
                print(diff)
    if args.check and drifted:
        print(f"{drifted} generated block(s) drifted: run scripts/readme_outputs.py --write")
        return 1
    if not drifted:
        print("generated blocks are up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
