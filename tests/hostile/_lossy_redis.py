"""A TCP proxy in front of Redis that loses one reply: the command runs, its answer never
arrives, the connection drops. What a network blip or a timeout does to a client, made
deterministic: redis-py then sends the same command again on a new connection.
"""

from __future__ import annotations

import socket
import threading
from typing import Self

from service.embedded import free_port

__all__ = ["LossyRedis"]


class LossyRedis:
    """Forwards ``127.0.0.1:port`` to Redis; once armed with a marker, the first command
    containing it is executed but its (non-error) reply is dropped with the connection."""

    def __init__(self, redis_port: int) -> None:
        self.redis_port = redis_port
        self.port = free_port()
        self.dropped = 0
        self._marker: bytes | None = None
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._closed = False

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def arm(self, marker: bytes) -> None:
        with self._lock:
            self._marker = marker

    def __enter__(self) -> Self:
        threading.Thread(target=self._accept, name="lossy-redis", daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closed = True
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            link = _Link(client, socket.create_connection(("127.0.0.1", self.redis_port)))
            threading.Thread(target=self._requests, args=(link,), daemon=True).start()
            threading.Thread(target=self._replies, args=(link,), daemon=True).start()

    def _requests(self, link: _Link) -> None:
        tail = b""
        try:
            while data := link.client.recv(65536):
                with self._lock:
                    if self._marker is not None and self._marker in tail + data:
                        link.doomed_by, self._marker = self._marker, None
                tail = data[-256:]
                link.upstream.sendall(data)
        except OSError:
            pass
        finally:
            link.close()

    def _replies(self, link: _Link) -> None:
        try:
            while data := link.upstream.recv(65536):
                if link.doomed_by is not None:
                    if data.startswith(b"-"):  # an error (NOSCRIPT): nothing ran, try again
                        with self._lock:
                            self._marker, link.doomed_by = link.doomed_by, None
                    else:
                        self.dropped += 1
                        return
                link.client.sendall(data)
        except OSError:
            pass
        finally:
            link.close()


class _Link:
    """One proxied connection; ``doomed_by`` is set when its next reply is to be lost."""

    def __init__(self, client: socket.socket, upstream: socket.socket) -> None:
        self.client = client
        self.upstream = upstream
        self.doomed_by: bytes | None = None

    def close(self) -> None:
        _close(self.client, self.upstream)


def _close(*sockets: socket.socket) -> None:
    for sock in sockets:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()
