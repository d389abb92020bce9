"""``sharpen serve --workers N``: N uvicorn worker processes behind one listening socket.

The ``serve`` process stays the supervisor: it holds the data directory's lock and the
embedded redis-server (one per serve, however many workers), binds the port once, and
starts N workers (uvicorn's multiprocess supervisor, a fresh interpreter each). Each worker
builds its own app from the environment (``service.app:app_from_env``), so each has its
own exposure buffer, config cache and feed, and request table; nothing is shared in memory.

Metrics: prometheus-client's multiprocess mode, in a ``PROMETHEUS_MULTIPROC_DIR`` this
module creates empty for the run and deletes afterwards (unless the operator set one: then
that directory is used as it is). Every worker's ``GET /metrics`` then serves the sum over
all workers.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import uvicorn
from prometheus_client.multiprocess import mark_process_dead
from uvicorn.supervisors import Multiprocess

from service.settings import Settings

__all__ = ["run_workers"]

_MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_APP = "service.app:app_from_env"


def _env_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


def _export(settings: Settings) -> None:
    """Put every setting that differs from its default into ``SHARPEN_*`` variables, where
    the workers' ``Settings()`` reads them (CLI options, dev keys, the embedded Redis URL)."""
    defaults = Settings.model_fields
    for name, value in settings.model_dump().items():
        field = defaults[name]
        default = field.get_default(call_default_factory=True)
        if value != default and value is not None:
            os.environ[f"SHARPEN_{name.upper()}"] = _env_value(value)


class _Supervisor(Multiprocess):
    """uvicorn's supervisor, telling prometheus-client when a worker it replaced died (so
    the live gauges, such as the exposure buffer's size, stop counting that worker)."""

    def keep_subprocess_alive(self) -> None:
        before = {p.pid for p in self.processes}
        super().keep_subprocess_alive()
        for pid in before - {p.pid for p in self.processes}:
            if pid is not None:
                mark_process_dead(pid)  # type: ignore[no-untyped-call]


@contextlib.contextmanager
def _multiproc_dir() -> Iterator[Path]:
    given = os.environ.get(_MULTIPROC_ENV)
    if given:
        yield Path(given)
        return
    directory = Path(tempfile.mkdtemp(prefix="sharpen-metrics-"))
    os.environ[_MULTIPROC_ENV] = str(directory)
    try:
        yield directory
    finally:
        os.environ.pop(_MULTIPROC_ENV, None)
        shutil.rmtree(directory, ignore_errors=True)


def run_workers(settings: Settings, listener: socket.socket, workers: int) -> None:
    """Serve ``settings`` with ``workers`` processes on ``listener`` until stopped."""
    _export(settings)
    with _multiproc_dir():
        config = uvicorn.Config(
            _APP,
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=workers,
            log_level=settings.log_level,
            log_config=None,
            access_log=False,
            proxy_headers=True,
            forwarded_allow_ips=settings.forwarded_allow_ips,
        )
        _Supervisor(config, sockets=[listener]).run()
