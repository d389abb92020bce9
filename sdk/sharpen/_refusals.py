"""Refused events are logged once per kind of refusal, then only counted.

A kind is the field the service named, without the event's index, plus the error code
(``experiment (not_found)``, ``values.latency_ms``, ``HTTP 401``): a typo in one code
path logs one line, not one per batch, while ``client.stats.events_rejected`` counts
every refused event.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Final

import httpx

__all__ = ["RefusalLog"]

logger = logging.getLogger("sharpen")

_MAX_KINDS: Final = 100
_INDEX = re.compile(r"^events\.\d+\.?")


class RefusalLog:
    """Remembers which kinds of refusal were logged (at most ``_MAX_KINDS``)."""

    __slots__ = ("_kinds", "_lock")

    def __init__(self) -> None:
        self._kinds: set[str] = set()
        self._lock = threading.Lock()

    def note(self, entries: object, refused: int, size: int, response: httpx.Response) -> None:
        """Log the kinds of refusal in ``entries`` (the service's list) not logged before."""
        found: list[tuple[str, str, str]] = []
        if isinstance(entries, list):
            for entry in entries:
                if isinstance(entry, dict):
                    field = str(entry.get("field", ""))
                    code = entry.get("code")
                    kind = _INDEX.sub("", field) or field or "event"
                    if isinstance(code, str):
                        kind = f"{kind} ({code})"
                    found.append((kind, field, str(entry.get("message", ""))[:300]))
        if not found:
            found.append((f"HTTP {response.status_code}", "", response.text[:300]))
        for kind, field, message in found:
            with self._lock:
                if kind in self._kinds or len(self._kinds) >= _MAX_KINDS:
                    continue
                self._kinds.add(kind)
                last = len(self._kinds) == _MAX_KINDS
            where = f"{field}: " if field else ""
            logger.warning(
                "sharpen: the service refused %d of %d events (HTTP %d), e.g. %s%s; refused "
                "events are not resent and count in stats.events_rejected; this kind "
                "(%s) is logged once%s",
                refused,
                size,
                response.status_code,
                where,
                message,
                kind,
                "; no further kinds are logged" if last else "",
            )
