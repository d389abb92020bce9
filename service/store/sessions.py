"""Dashboard sessions: a random session id maps to the admin key's *name*, with a TTL.

The cookie carries only the random id; Redis holds the SHA-256 of that id, so a copy of
the database gives no usable cookie. The admin key itself is never stored anywhere: the
session holds its name and a binding to that very key (a slow hash of its digest,
:meth:`service.auth.KeyRing.session_binding`), so the dashboard can refuse a session whose
key was removed or replaced. Each session also holds its CSRF token. Expiry is absolute
(no sliding renewal).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

import orjson

from service.store import keys
from service.store.connection import RedisClient

__all__ = ["Session", "SessionStore"]

_ID_BYTES = 32


@dataclass(frozen=True, slots=True)
class Session:
    """One logged-in browser: the key's name (never the key), its CSRF token, timestamps."""

    name: str
    binding: str  # which key opened it (see service.auth.KeyRing.session_binding)
    csrf: str
    created_at: float
    expires_at: float


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()


def _valid_id(session_id: str) -> bool:
    return 20 <= len(session_id) <= 128 and session_id.isascii()


class SessionStore:
    def __init__(
        self, redis: RedisClient, ttl_s: int, clock: Callable[[], float] = time.time
    ) -> None:
        self._redis = redis
        self._ttl_s = ttl_s
        self._clock = clock

    async def create(self, name: str, binding: str) -> tuple[str, Session]:
        """A new session for the admin key called ``name`` (bound to it by ``binding``);
        returns (cookie value, session)."""
        session_id = secrets.token_urlsafe(_ID_BYTES)
        now = self._clock()
        session = Session(
            name=name,
            binding=binding,
            csrf=secrets.token_urlsafe(_ID_BYTES),
            created_at=now,
            expires_at=now + self._ttl_s,
        )
        payload = orjson.dumps(
            {
                "name": name,
                "binding": binding,
                "csrf": session.csrf,
                "created_at": now,
                "expires_at": now + self._ttl_s,
            }
        )
        await self._redis.set(keys.ui_session(_digest(session_id)), payload, ex=self._ttl_s)
        return session_id, session

    async def get(self, session_id: str) -> Session | None:
        if not _valid_id(session_id):
            return None
        raw = await self._redis.get(keys.ui_session(_digest(session_id)))
        if raw is None:
            return None
        try:
            data = orjson.loads(raw)
            session = Session(
                name=str(data["name"]),
                binding=str(data["binding"]),
                csrf=str(data["csrf"]),
                created_at=float(data["created_at"]),
                expires_at=float(data["expires_at"]),
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return None
        return session if session.expires_at > self._clock() else None

    async def delete(self, session_id: str) -> None:
        if _valid_id(session_id):
            await self._redis.delete(keys.ui_session(_digest(session_id)))
