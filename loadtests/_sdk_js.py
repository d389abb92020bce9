"""The TypeScript SDK (``sdk-js/``), installed and built for the Node scripts that use it.

``npm ci`` runs only when ``package.json`` or ``package-lock.json`` changed since the last
install, and ``tsc`` only when a source changed since the last build: each keeps the hash
of its inputs beside its output (``node_modules/``, ``dist/``). Used by
``bench_sdk_js.py`` and by the tests in ``tests/sdk_js/``.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path

__all__ = [
    "MIN_NODE",
    "SDK_JS",
    "NodeFailed",
    "NodeMissing",
    "install_and_build",
    "node_tools",
    "run",
]

SDK_JS = Path(__file__).resolve().parent.parent / "sdk-js"
MIN_NODE = 18


class NodeMissing(RuntimeError):
    """Node or npm is not installed (or too old): the message says which."""


class NodeFailed(RuntimeError):
    """A node/npm command exited non-zero; the message holds its output."""


def node_tools() -> tuple[str, str]:
    """Paths of ``node`` and ``npm``; raises :class:`NodeMissing` naming what is absent."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        raise NodeMissing(f"node/npm not installed (Node >= {MIN_NODE} runs the TypeScript SDK)")
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True)
    text = version.stdout.strip()
    if int(text.lstrip("v").split(".")[0]) < MIN_NODE:
        raise NodeMissing(f"node {text} is older than {MIN_NODE}")
    return node, npm


def run(
    args: list[str], *, timeout_s: float, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``args`` in ``sdk-js/``; raises :class:`NodeFailed` with the output on failure."""
    done = subprocess.run(
        args,
        cwd=SDK_JS,
        env=None if env is None else dict(env),
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    if done.returncode != 0:
        output = (done.stdout + done.stderr)[-20_000:]
        raise NodeFailed(f"{' '.join(args)} exited {done.returncode}:\n{output}")
    return done


def _digest(paths: Iterable[Path]) -> str:
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(str(path.relative_to(SDK_JS)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _stale(stamp: Path, digest: str) -> bool:
    return not stamp.exists() or stamp.read_text() != digest


def install_and_build(npm: str) -> None:
    """``npm ci`` and ``npm run build``, each only when its inputs changed."""
    installed = _digest([SDK_JS / "package.json", SDK_JS / "package-lock.json"])
    stamp = SDK_JS / "node_modules" / ".sharpen-install-hash"
    if _stale(stamp, installed):
        run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], timeout_s=600)
        stamp.write_text(installed)
    sources = [
        *SDK_JS.glob("src/**/*.ts"),
        *SDK_JS.glob("test/*.ts"),
        *SDK_JS.glob("**/tsconfig.json"),
    ]
    built = _digest([p for p in sources if "node_modules" not in p.parts]) + installed
    stamp = SDK_JS / "dist" / ".sharpen-build-hash"
    if _stale(stamp, built) or not (SDK_JS / "dist" / "index.js").exists():
        run([npm, "run", "--silent", "build"], timeout_s=300)
        stamp.write_text(built)
