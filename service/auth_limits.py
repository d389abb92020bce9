"""Failed-authentication limits: per client address and overall, in process, memory-bounded.

A *failure* is an unknown API key (on any route) or a wrong key in the dashboard's login
form. Two token buckets count them:

* **Per address** (an IPv4 address; an IPv6 /64, since one host commonly holds a whole
  /64): ``SHARPEN_AUTH_FAIL_BURST`` failures, then ``SHARPEN_AUTH_FAIL_PER_MIN`` a minute.
  While an address's bucket is empty, every request from it that presents a key, and
  every login attempt, is answered 429 with ``Retry-After`` *without the key being
  checked*: a right guess looks the same as a wrong one. A later success does not refill
  the bucket (else a caller holding a client key could reset it between admin-key guesses).
* **Overall**: ``SHARPEN_AUTH_FAIL_GLOBAL_BURST`` failures from all addresses together,
  then ``SHARPEN_AUTH_FAIL_GLOBAL_PER_MIN`` a minute. While it is empty only addresses that
  have authenticated successfully before have their keys checked, so an attacker rotating
  addresses is stopped while the service's known callers carry on.

Memory is bounded: at most ``SHARPEN_AUTH_FAIL_MAX_ADDRESSES`` addresses are tracked for
failures (the least recently failed, and those whose bucket is full again, are forgotten
first) and as many known-good addresses. A warning names the address when it goes over
(at most once a minute per address; never the key) and when the overall limit trips.

The address is ``scope["client"]`` as uvicorn sets it. Behind a reverse proxy run uvicorn
with ``--forwarded-allow-ips=<the proxy's addresses>`` (``SHARPEN_FORWARDED_ALLOW_IPS`` for
``sharpen serve``) so that it is the client the proxy saw; never trust
``X-Forwarded-For`` from anywhere else. The buckets live in the process: with N workers or
replicas, N times the rates (as for the admin rate limit).
"""

from __future__ import annotations

import ipaddress
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from starlette.types import Scope

from service.errors import RateLimited
from service.metrics import Metrics

__all__ = ["FailedAuthLimit", "TokenBucket", "client_address"]

log = logging.getLogger("sharpen.auth")

Via = Literal["api_key", "login"]
_LOG_EVERY_S = 60.0
_VIA_TEXT = {"api_key": "API key", "login": "dashboard login"}


@dataclass(slots=True)
class TokenBucket:
    """``burst`` tokens, refilled continuously at ``rate_per_s``."""

    rate_per_s: float
    burst: float
    tokens: float
    updated: float

    def _refill(self, now: float) -> None:
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate_per_s)
        self.updated = now

    def take(self, now: float) -> float:
        """Take a token: 0.0 if granted, else the seconds until one is available."""
        self._refill(now)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate_per_s

    def wait(self, now: float) -> float:
        """Seconds until a token is available (0.0: one is), taking nothing."""
        self._refill(now)
        return 0.0 if self.tokens >= 1.0 else (1.0 - self.tokens) / self.rate_per_s

    def full(self, now: float) -> bool:
        self._refill(now)
        return self.tokens >= self.burst


def client_address(scope: Scope) -> str:
    """The client's address as the server saw it (after uvicorn's proxy-header handling)."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def _group(address: str) -> str:
    if ":" not in address:
        return address
    try:
        return str(ipaddress.IPv6Network(f"{address}/64", strict=False))
    except ValueError:
        return address


@dataclass(slots=True)
class _Tracked:
    bucket: TokenBucket
    logged_at: float


class FailedAuthLimit:
    """The per-address and overall failed-authentication buckets of one process."""

    def __init__(
        self,
        *,
        burst: int,
        per_min: float,
        global_burst: int,
        global_per_min: float,
        max_addresses: int,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._burst = float(burst)
        self._rate = per_min / 60.0
        self._max = max_addresses
        self._metrics = metrics
        self._clock = clock
        now = clock()
        self._global = TokenBucket(global_per_min / 60.0, global_burst, global_burst, now)
        self._global_logged_at = -math.inf
        self._addresses: OrderedDict[str, _Tracked] = OrderedDict()
        self._known: dict[str, None] = {}

    def refusal(self, address: str) -> RateLimited | None:
        """The 429 for a request presenting a key from ``address`` now, or None to go on."""
        if self._addresses:
            tracked = self._addresses.get(_group(address))
            if tracked is not None:
                wait_s = tracked.bucket.wait(self._clock())
                if wait_s > 0.0:
                    return self._refused(
                        "address", wait_s, "too many failed authentications from your address"
                    )
        if self._global.tokens < 1.0 and address not in self._known:
            wait_s = self._global.wait(self._clock())
            if wait_s > 0.0:
                return self._refused(
                    "global",
                    wait_s,
                    "too many failed authentications overall: keys from addresses that never "
                    "authenticated are not checked for now",
                )
        return None

    def failed(self, address: str, via: Via) -> None:
        """Count a failed authentication from ``address``."""
        now = self._clock()
        if self._metrics is not None:
            self._metrics.auth_failures.labels(via).inc()
        group = _group(address)
        tracked = self._addresses.get(group)
        if tracked is None:
            self._make_room(now)
            tracked = _Tracked(TokenBucket(self._rate, self._burst, self._burst, now), -math.inf)
            self._addresses[group] = tracked
        else:
            self._addresses.move_to_end(group)
        tracked.bucket.take(now)
        wait_s = tracked.bucket.wait(now)
        if wait_s > 0.0 and now - tracked.logged_at >= _LOG_EVERY_S:
            tracked.logged_at = now
            log.warning(
                "failed authentication (%s) from %s: %d failures, its keys are not checked "
                "for %d s",
                _VIA_TEXT[via],
                address,
                self._burst,
                math.ceil(wait_s),
            )
        self._global.take(now)
        wait_s = self._global.wait(now)
        if wait_s > 0.0 and now - self._global_logged_at >= _LOG_EVERY_S:
            self._global_logged_at = now
            log.warning(
                "failed authentications from all addresses reached %d: only addresses that "
                "authenticated before are checked for %d s (latest failure from %s)",
                self._global.burst,
                math.ceil(wait_s),
                address,
            )

    def succeeded(self, address: str) -> None:
        """Remember ``address`` as one that holds a key (checked while the overall limit is hit)."""
        if address not in self._known:
            if len(self._known) >= self._max:
                del self._known[next(iter(self._known))]
            self._known[address] = None

    def tracked(self) -> tuple[int, int]:
        """``(addresses tracked for failures, known-good addresses)``: both stay bounded."""
        return len(self._addresses), len(self._known)

    def _make_room(self, now: float) -> None:
        while self._addresses:
            oldest = next(iter(self._addresses.values()))
            if len(self._addresses) < self._max and not oldest.bucket.full(now):
                return
            self._addresses.popitem(last=False)

    def _refused(self, limit: str, wait_s: float, message: str) -> RateLimited:
        if self._metrics is not None:
            self._metrics.auth_refused.labels(limit).inc()
        retry_after = max(1, math.ceil(wait_s))
        return RateLimited(
            f"{message}: retry after {retry_after} s",
            headers={"Retry-After": str(retry_after)},
        )
