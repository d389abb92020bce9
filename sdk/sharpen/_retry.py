"""Retry policy for HTTP deliveries: what to retry, and how long to wait.

One policy for the SDK's batch uploads and the service's webhooks: 408, 425, 429 and 5xx
are retried with capped exponential backoff and jitter; a ``Retry-After`` (seconds or an
HTTP date) sets the floor of the wait instead.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Literal

__all__ = ["Outcome", "RetryPolicy", "classify", "parse_retry_after"]

Outcome = Literal["sent", "retry", "rejected"]


def classify(status_code: int) -> Outcome:
    """``sent`` for 2xx, ``retry`` for 408, 425, 429 and 5xx, ``rejected`` for the rest."""
    if 200 <= status_code < 300:
        return "sent"
    if status_code in (408, 425, 429) or status_code >= 500:
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


_RETRY_AFTER_JITTER = 0.25


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with jitter, capped; ``Retry-After`` wins when sent.

    Attempt ``n`` (1-based, counting failures so far) waits a uniform draw in
    ``[d/2, d]`` with ``d = min(max_delay, base_delay * 2**(n-1))``. A ``Retry-After``
    of ``r`` seconds (capped at ``max_retry_after``) waits a draw in ``[r, 1.25 r]``:
    never sooner than asked, and callers told the same moment do not all come back at
    once. A delivery is given up after ``max_attempts`` tries.
    """

    max_attempts: int = 10
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 120.0

    classify = staticmethod(classify)
    parse_retry_after = staticmethod(parse_retry_after)

    def delay(self, failures: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait after ``failures`` failed tries (``retry_after``: parsed header)."""
        if retry_after is not None:
            floor = min(retry_after, self.max_retry_after)
            return floor + rng.uniform(0.0, floor * _RETRY_AFTER_JITTER)
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** max(failures - 1, 0))
        return ceiling / 2.0 + rng.uniform(0.0, ceiling / 2.0)
