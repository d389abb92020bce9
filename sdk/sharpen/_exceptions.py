"""Exceptions raised by the sharpen client.

Every exception derives from :class:`SharpenError`::

    SharpenError
    ├── ConfigError                   the config document cannot be used
    │   └── UnsupportedHashVersionError   a hash version this SDK does not know
    ├── TransportError                the request never got an HTTP answer
    ├── HTTPStatusError               the service answered with an error status
    ├── InvalidEventError             ``track()`` was given values it cannot send
    └── ClientClosedError             the client was used after ``close()``

``assign()`` never raises any of them: it falls back instead. They surface from
explicit calls such as ``refresh()`` and ``track()``, and from the pure
functions (``parse_config``, ``parse_experiment``, ``bucket``).
"""

from __future__ import annotations

import httpx

__all__ = [
    "ClientClosedError",
    "ConfigError",
    "HTTPStatusError",
    "InvalidEventError",
    "SharpenError",
    "TransportError",
    "UnsupportedHashVersionError",
]


class SharpenError(Exception):
    """Root of every error raised by the sharpen SDK."""


class ConfigError(SharpenError):
    """The config document (or one experiment entry) is malformed.

    ``key`` names the experiment entry at fault, ``None`` for the document itself.
    """

    def __init__(self, message: str, *, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


class UnsupportedHashVersionError(ConfigError):
    """The config asks for a hash version this SDK does not implement."""

    def __init__(self, version: object, *, key: str | None = None) -> None:
        where = f"experiment {key!r}: " if key is not None else ""
        super().__init__(
            f"{where}unsupported hash_version {version!r}; this SDK knows 1 "
            "(upgrade the sharpen package)",
            key=key,
        )
        self.version = version


class TransportError(SharpenError):
    """The request failed before an HTTP response arrived (network, timeout)."""

    def __init__(self, message: str, *, request: httpx.Request | None = None) -> None:
        super().__init__(message)
        self.request = request


class HTTPStatusError(SharpenError):
    """The service answered with a status the client cannot accept."""

    def __init__(self, message: str, *, response: httpx.Response) -> None:
        super().__init__(message)
        self.response = response

    @property
    def request(self) -> httpx.Request:
        return self.response.request

    @property
    def status_code(self) -> int:
        return self.response.status_code


class InvalidEventError(SharpenError, ValueError):
    """``track()`` got an argument that the service would reject."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class ClientClosedError(SharpenError):
    """An operation that needs the network was called after ``close()``."""


def request_of(exc: httpx.HTTPError) -> httpx.Request | None:
    """The request an httpx error is about, when it knows one."""
    try:
        return exc.request
    except RuntimeError:
        return None
