"""Logging: JSON or text lines, a request id on every line of a request, secrets redacted.

* :class:`RequestIds` (used by the first ASGI step, :mod:`service.api.front`) takes the
  caller's ``X-Request-ID`` when it is a sane token (1-128 of ``[A-Za-z0-9._:-]``), else
  makes one; it is echoed in the response and held in a :mod:`contextvars` variable for
  the request's task, so every log line written while serving it carries ``request_id``
  (tasks it spawns inherit it too).
* :class:`JSONFormatter` writes one JSON object per line: ``ts``, ``level``, ``logger``,
  ``message``, ``request_id`` when inside a request, ``exc`` for a traceback, and any
  ``extra={...}`` fields.
* :class:`Redactor` (a handler filter) replaces configured secrets (API keys, the webhook
  secret, a Redis password), ``Bearer`` tokens and passwords in URLs with ``[redacted]``
  before a line is written, whichever module logged it.

:func:`configure_logging` installs one handler on the root logger (idempotent).
"""

from __future__ import annotations

import contextvars
import datetime as dt
import itertools
import logging
import re
import secrets as _secrets
import sys
from collections.abc import Iterable
from typing import Any, Literal, TextIO
from urllib.parse import urlsplit

import orjson

__all__ = [
    "REQUEST_ID_HEADER",
    "JSONFormatter",
    "LogFormat",
    "Redactor",
    "RequestIds",
    "configure_logging",
    "current_request_id",
    "log_access",
    "settings_secrets",
]

LogFormat = Literal["text", "json"]
REQUEST_ID_HEADER = "X-Request-ID"
_HEADER = REQUEST_ID_HEADER.lower().encode()
_VALID_ID = re.compile(rb"[A-Za-z0-9._:\-]{1,128}")
_REDACTED = "[redacted]"
_BEARER = re.compile(r"(?i)(bearer\s+)[^\s\"',;]+")
_URL_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.\-]*://[^/\s:@]*:)[^@\s/]+@")
_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
_HANDLER_NAME = "sharpen"

_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "sharpen_request_id", default=None
)

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()
    | {"message", "asctime", "request_id", "taskName"}
)

log = logging.getLogger("sharpen.access")


def current_request_id() -> str | None:
    """The id of the request being served by this task, if any."""
    return _request_id.get()


class RequestIds:
    """Request ids: the caller's ``X-Request-ID`` when it is a sane token, else a new one.

    :meth:`bind` holds the id in a :mod:`contextvars` variable for the request's task, so
    every log line written while serving it carries ``request_id``.
    """

    def __init__(self) -> None:
        # A random per-process prefix and a counter: unique ids without a syscall each.
        self._prefix = _secrets.token_hex(5)
        self._counter = itertools.count(1)

    def of(self, headers: Iterable[tuple[bytes, bytes]]) -> str:
        """The id of a request with these (ASGI, lower-case) headers."""
        for name, value in headers:
            if name == _HEADER:
                if _VALID_ID.fullmatch(value):
                    return value.decode()
                break
        return f"{self._prefix}{next(self._counter):06x}"

    @staticmethod
    def bind(request_id: str) -> contextvars.Token[str | None]:
        return _request_id.set(request_id)

    @staticmethod
    def unbind(token: contextvars.Token[str | None]) -> None:
        _request_id.reset(token)


def log_access(method: str, path: str, status: int, seconds: float) -> None:
    """One ``sharpen.access`` line (``SHARPEN_ACCESS_LOG``; off by default: the assignment
    path is hot)."""
    log.info(
        "%s %s %d",
        method,
        path,
        status,
        extra={
            "method": method,
            "path": path,
            "status": status,
            "duration_ms": round(seconds * 1000, 3),
        },
    )


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = _request_id.get()
        return True


class Redactor(logging.Filter):
    """Rewrites a record so no configured secret, bearer token or URL password survives."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        # Longest first, so a secret containing another is replaced whole.
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def scrub(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, _REDACTED)
        text = _BEARER.sub(rf"\g<1>{_REDACTED}", text)
        return _URL_PASSWORD.sub(rf"\g<1>{_REDACTED}@", text)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.msg, record.args = self.scrub(message), None
        if record.exc_text:
            record.exc_text = self.scrub(record.exc_text)
        record.exc_info = None  # the scrubbed exc_text is what gets written
        for key, value in list(vars(record).items()):
            if key not in _STANDARD and isinstance(value, str):
                setattr(record, key, self.scrub(value))
        return True


class JSONFormatter(logging.Formatter):
    """One JSON object per line (``ts`` is ISO-8601 UTC with milliseconds)."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None)
        if request_id:
            doc["request_id"] = request_id
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in doc:
                doc[key] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            doc["exc"] = record.exc_text
        return orjson.dumps(doc, default=str).decode()


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        if getattr(record, "request_id", None) is None:
            record.request_id = "-"
        return super().format(record)


def settings_secrets(
    admin_keys: Iterable[str],
    client_keys: Iterable[str],
    webhook_secret: str | None = None,
    redis_url: str | None = None,
) -> list[str]:
    """The secret strings of a configuration: key secrets, webhook secret, Redis password."""
    found: list[str] = []
    for entry in [*admin_keys, *client_keys]:
        found.append(entry.partition("=")[2] if "=" in entry else entry)
    if webhook_secret:
        found.append(webhook_secret)
    if redis_url:
        try:
            password = urlsplit(redis_url).password
        except ValueError:
            password = None
        if password:
            found.append(password)
    return [s for s in found if s]


def configure_logging(
    fmt: LogFormat = "text",
    level: str | int = "INFO",
    *,
    secrets: Iterable[str] = (),
    stream: TextIO | None = None,
) -> logging.Handler:
    """Send every logger's lines through one root handler in ``fmt``; returns the handler.

    Calling it again replaces the handler it installed before (not anyone else's).
    """
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.addFilter(_RequestIdFilter())
    handler.addFilter(Redactor(secrets))
    handler.setFormatter(JSONFormatter() if fmt == "json" else _TextFormatter(_TEXT_FORMAT))
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    return handler
