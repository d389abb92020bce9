"""Bounded buffers and the batches cut from them."""

from __future__ import annotations

import threading
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar
from urllib.parse import quote

from sharpen._wire import json_text

__all__ = ["Batch", "BoundedBuffer", "Kind"]

T = TypeVar("T")
Kind = Literal["exposures", "events", "records", "labels"]


class BoundedBuffer(Generic[T]):
    """A FIFO that refuses (and counts) items once ``max_size`` are waiting.

    ``add`` is safe from any thread and costs one ``len`` and one ``append``;
    a single consumer takes batches with ``take``.  ``items`` is the deque
    itself, for a hot path that inlines ``add`` (and calls ``drop`` when full).
    """

    __slots__ = ("_drop_lock", "dropped", "items", "max_size")

    def __init__(self, max_size: int) -> None:
        if max_size < 1:
            raise ValueError(f"max_buffer must be >= 1 (got {max_size!r})")
        self.max_size = max_size
        self.dropped = 0
        self.items: deque[T] = deque()
        self._drop_lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.items)

    def add(self, item: T) -> bool:
        """Queue ``item``; ``False`` (and one more drop counted) when full."""
        if len(self.items) >= self.max_size:
            self.drop(1)
            return False
        self.items.append(item)
        return True

    def drop(self, count: int) -> None:
        with self._drop_lock:
            self.dropped += count

    def take(self, limit: int) -> list[T]:
        """Remove and return up to ``limit`` of the oldest items."""
        items = self.items
        out: list[T] = []
        try:
            for _ in range(min(limit, len(items))):
                out.append(items.popleft())
        except IndexError:  # raced with another consumer
            pass
        return out

    def requeue(self, items: list[T]) -> None:
        """Put ``items`` back at the front, in order (they were counted in before)."""
        self.items.extendleft(reversed(items))

    def clear(self) -> int:
        """Drop everything still waiting; return how many items that was."""
        count = 0
        while True:
            try:
                self.items.popleft()
            except IndexError:
                return count
            count += 1


@dataclass(slots=True)
class Batch:
    """One upload: its body (a JSON object, or already encoded) and the
    ``Idempotency-Key`` kept across retries.

    ``model`` is the model of a ``records`` or ``labels`` batch (its path names it), and
    ``items`` what it was cut from (to queue the good ones again when some are refused).
    """

    kind: Kind
    size: int
    body: dict[str, Any] | bytes
    idempotency_key: str = field(default_factory=lambda: uuid.uuid4().hex)
    failures: int = 0
    model: str | None = None
    items: list[Any] | None = None

    def content(self) -> bytes:
        body = self.body
        return body if isinstance(body, bytes) else json_text(body).encode()

    @property
    def path(self) -> str:
        if self.model is not None:
            return f"/v1/models/{quote(self.model, safe='')}/{self.kind}"
        return f"/v1/{self.kind}"
