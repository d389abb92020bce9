"""Refused events, predictions and labels are logged once per kind of refusal, then only
counted.

A kind is the field the service named, without the item's index, plus the error code
(``experiment (not_found)``, ``values.latency_ms``, ``HTTP 401``): a typo in one code
path logs one line, not one per batch, while ``client.stats.events_rejected`` (and
``predictions_rejected``, ``labels_rejected``) counts every refused item. Items the
client refuses itself (``log_prediction`` and ``label`` never raise) are logged the same
way, their kind marked ``(client)``.
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
_INDEX = re.compile(r"^[a-z]+\.\d+\.?")


class RefusalLog:
    """Remembers which kinds of refusal were logged (at most ``_MAX_KINDS``)."""

    __slots__ = ("_kinds", "_lock")

    def __init__(self) -> None:
        self._kinds: set[str] = set()
        self._lock = threading.Lock()

    def note(
        self,
        entries: object,
        refused: int,
        size: int,
        response: httpx.Response,
        noun: str = "events",
    ) -> None:
        """Log the kinds of refusal in ``entries`` (the service's list) not logged before."""
        found: list[tuple[str, str, str]] = []
        if isinstance(entries, list):
            for entry in entries:
                if isinstance(entry, dict):
                    field = str(entry.get("field", ""))
                    code = entry.get("code")
                    kind = _INDEX.sub("", field) or field or noun
                    if isinstance(code, str):
                        kind = f"{kind} ({code})"
                    found.append((kind, field, str(entry.get("message", ""))[:300]))
        if not found:
            found.append((f"HTTP {response.status_code}", "", response.text[:300]))
        for kind, field, message in found:
            last = self._first(f"{noun}: {kind}")
            if last is None:
                continue
            where = f"{field}: " if field else ""
            logger.warning(
                "sharpen: the service refused %d of %d %s (HTTP %d), e.g. %s%s; refused "
                "%s are not resent and count in stats.%s_rejected; this kind "
                "(%s) is logged once%s",
                refused,
                size,
                noun,
                response.status_code,
                where,
                message,
                noun,
                noun,
                kind,
                "; no further kinds are logged" if last else "",
            )

    def note_local(self, noun: str, field: str, message: str) -> None:
        """Log, once per field, an item this client refused before queueing it."""
        last = self._first(f"{noun}: {field} (client)")
        if last is None:
            return
        logger.warning(
            "sharpen: refused a %s the service would refuse: %s; such %s are not sent "
            "and count in stats.%s_rejected; this kind is logged once%s",
            noun[:-1],
            message[:300],
            noun,
            noun,
            "; no further kinds are logged" if last else "",
        )

    def _first(self, kind: str) -> bool | None:
        """None when ``kind`` was logged already (or no more kinds are), else whether it is
        the last kind that will be."""
        with self._lock:
            if kind in self._kinds or len(self._kinds) >= _MAX_KINDS:
                return None
            self._kinds.add(kind)
            return len(self._kinds) == _MAX_KINDS
