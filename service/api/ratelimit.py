"""Per-key rate limit on the admin API: a token bucket per admin key *name*, in process.

Each admin key (by its configured name, never the secret) has a bucket of ``burst``
tokens refilled at ``rate_per_s``; a request takes one token, and a request that finds
the bucket empty gets 429 in the JSON error shape with ``Retry-After`` (whole seconds
until a token is back). The caller is the one :class:`service.auth.Authenticate` resolved (never
the headers again). Requests without a key, with an unknown key or with a client key
pass through untouched: authentication (401/403) is the routes' business, and client
traffic (assign, events, config) is never throttled here.

The buckets live in the process: with N uvicorn workers or N replicas a key may make up
to N times the rate. That is deliberate (no Redis round trip per admin call) and is
documented in docs/architecture.md; a shared limit belongs in the gateway in front.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from service.auth import caller_of
from service.auth_limits import TokenBucket
from service.errors import RateLimited, send_error

__all__ = ["AdminRateLimit"]

_CLIENT_PREFIXES = ("/v1/assign", "/v1/events", "/v1/config", "/v1/exposures")


class AdminRateLimit:
    """Pure ASGI middleware applying a :class:`TokenBucket` per admin key name."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        rate_per_s: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.rate_per_s = rate_per_s
        self.burst = float(burst)
        self.clock = clock
        self._buckets: dict[str, TokenBucket] = {}

    def _wait_s(self, name: str) -> float:
        now = self.clock()
        bucket = self._buckets.get(name)
        if bucket is None:
            # Bounded: one bucket per configured admin key name.
            bucket = TokenBucket(self.rate_per_s, self.burst, self.burst, now)
            self._buckets[name] = bucket
        return bucket.take(now)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(_CLIENT_PREFIXES):
            await self.app(scope, receive, send)
            return
        # The caller Authenticate resolved: the one identity every layer sees.
        who = caller_of(scope).identity
        if who is None or who.scope != "admin":
            await self.app(scope, receive, send)
            return
        wait_s = self._wait_s(who.name)
        if wait_s <= 0.0:
            await self.app(scope, receive, send)
            return
        retry_after = max(1, math.ceil(wait_s))
        refused = RateLimited(
            f"admin key {who.name!r} is over {self.rate_per_s:g} requests/s "
            f"(burst {self.burst:g}); retry after {retry_after} s",
            headers={"Retry-After": str(retry_after)},
        )
        await send_error(send, refused)
