"""Retry policy for batch uploads: what to retry, and how long to wait."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Literal

__all__ = ["Outcome", "RetryPolicy", "classify", "parse_retry_after"]

Outcome = Literal["sent", "retry", "rejected"]


def classify(status_code: int) -> Outcome:
    """``sent`` for 2xx, ``retry`` for 429/5xx (and 408), ``rejected`` for other codes."""
    if 200 <= status_code < 300:
        return "sent"
    if status_code in (408, 429) or status_code >= 500:
        return "retry"
    return "rejected"


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date)."""
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return max(seconds, 0.0)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with jitter, capped; ``Retry-After`` wins when sent.

    Attempt ``n`` (1-based, counting failures so far) waits a uniform draw in
    ``[d/2, d]`` with ``d = min(max_delay, base_delay * 2**(n-1))``.  A batch is
    given up after ``max_attempts`` tries.
    """

    max_attempts: int = 10
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 120.0

    def delay(self, failures: int, retry_after: float | None, rng: random.Random) -> float:
        if retry_after is not None:
            return min(retry_after, self.max_retry_after)
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** max(failures - 1, 0))
        return ceiling / 2.0 + rng.uniform(0.0, ceiling / 2.0)
