"""Who is calling: API keys with scopes, resolved once per request by one ASGI step.

* :class:`KeyRing` keeps each configured key only as its SHA-256 digest and finds the key
  a caller presents by a dict lookup on that digest. The lookup reveals nothing through
  timing that an attacker can use: what is looked up is the SHA-256 of their guess, which
  they cannot steer towards a configured digest.
* :class:`Authenticate` (called by the first ASGI step, :mod:`service.api.front`, before
  every layer that needs a caller) reads the credentials of a request once —
  ``Authorization: Bearer <key>`` or ``X-API-Key: <key>`` — refuses ambiguous ones with
  400 naming the header (two ``X-API-Key`` headers, two ``Authorization`` headers, or both
  headers with different keys), applies the failed-authentication limits
  (:mod:`service.auth_limits`) and the front step stores a :class:`Caller` in
  ``scope["auth"]``. The routes' dependencies, the admin rate limiter
  and the assignment fast path read it from there; the dashboard's login form counts its
  failures against the same limits, by the same client address.
* :func:`authorize` turns a caller into the identity a route needs (401 / 403 otherwise).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from typing import Final, Literal, NamedTuple

from starlette.types import Scope as ASGIScope

from service.auth_limits import FailedAuthLimit, client_address
from service.errors import BadRequest, Forbidden, Unauthorized

__all__ = [
    "ANONYMOUS",
    "UNKNOWN_KEY",
    "Authenticate",
    "Caller",
    "Identity",
    "KeyRing",
    "Scope",
    "authorize",
    "caller_of",
    "generate_key",
    "presented_key",
]

Scope = Literal["admin", "client"]

_AUTHORIZATION: Final = b"authorization"
_X_API_KEY: Final = b"x-api-key"
_BEARER: Final = "bearer"


@dataclass(frozen=True, slots=True)
class Identity:
    """Who called: the key's name (never the key) and its scope."""

    name: str
    scope: Scope
    # The key's SHA-256, to bind a dashboard session to this very key (not to its name).
    digest: bytes = field(default=b"", repr=False, compare=False)


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8")).digest()


@functools.lru_cache(maxsize=256)
def _session_binding(digest: bytes) -> bytes:
    # Slow on purpose (~40 ms, once per key and process): sessions keep this in Redis, and a
    # copy of Redis must not make a short key cheap to guess offline.
    return hashlib.scrypt(digest, salt=b"sharpen dashboard session", n=1 << 14, r=8, p=1)[:16]


def generate_key(scope: Scope) -> str:
    return f"sk_{scope}_{secrets.token_urlsafe(24)}"


class Caller(NamedTuple):
    """What :class:`Authenticate` learnt about a request (``scope["auth"]``). One per key,
    made once: nothing is built per request on the hot path."""

    identity: Identity | None
    presented: bool  # a key was sent (None identity: an unknown key)


ANONYMOUS: Final = Caller(None, False)
UNKNOWN_KEY: Final = Caller(None, True)


class KeyRing:
    """Resolves a presented secret to an :class:`Identity`; holds no plaintext."""

    def __init__(self) -> None:
        self._callers: dict[bytes, Caller] = {}  # by the key's digest

    @classmethod
    def from_config(cls, admin: list[str], client: list[str]) -> KeyRing:
        ring = cls()
        for scope, entries in (("admin", admin), ("client", client)):
            for index, entry in enumerate(entries, start=1):
                name, _, secret = entry.partition("=") if "=" in entry else ("", "", entry)
                ring.add(secret, name or f"{scope}-{index}", scope)  # type: ignore[arg-type]
        return ring

    def add(self, secret: str, name: str, scope: Scope) -> None:
        digest = _digest(secret)
        self._callers[digest] = Caller(Identity(name=name, scope=scope, digest=digest), True)

    def __len__(self) -> int:
        return len(self._callers)

    def resolve(self, secret: str) -> Identity | None:
        """The identity of ``secret``, or None if no configured key is ``secret``."""
        return self.caller(secret).identity

    def caller(self, secret: str) -> Caller:
        """The :class:`Caller` presenting ``secret`` (:data:`UNKNOWN_KEY` if none is)."""
        return self._callers.get(_digest(secret), UNKNOWN_KEY)

    def session_binding(self, who: Identity) -> str:
        """What a dashboard session stores to name the key it was opened with (hex)."""
        return _session_binding(who.digest).hex()

    def session_identity(self, name: str, binding: str) -> Identity | None:
        """The admin identity a session of key ``name`` opened with ``binding`` still holds:
        None once that key is removed or replaced, even if another key took its name."""
        found = None
        for who, _ in self._callers.values():
            if who is not None and who.name == name and who.scope == "admin":
                if hmac.compare_digest(self.session_binding(who), binding):
                    found = who
        return found


def caller_of(scope: ASGIScope) -> Caller:
    """The caller :class:`Authenticate` stored; a missing one is a wiring error."""
    caller = scope.get("auth")
    if not isinstance(caller, Caller):
        raise RuntimeError("no caller in the request scope: Authenticate is not installed")
    return caller


def authorize(caller: Caller, scope: Scope) -> Identity:
    """The caller's identity if it carries ``scope`` (401 / 403 otherwise)."""
    who = caller.identity
    if who is None:
        if not caller.presented:
            raise Unauthorized(
                "missing API key: send 'Authorization: Bearer <key>'",
                headers={"WWW-Authenticate": "Bearer"},
            )
        raise Unauthorized("unknown API key", headers={"WWW-Authenticate": "Bearer"})
    if who.scope != scope:
        raise Forbidden(f"this endpoint needs a key with scope {scope!r}; yours is {who.scope!r}")
    return who


def _ambiguous(header: str, message: str) -> BadRequest:
    return BadRequest(
        f"ambiguous credentials: {message}; send one key, once",
        details=[{"field": f"headers.{header}", "message": message}],
    )


def presented_key(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The key a request presents (``Authorization: Bearer`` or ``X-API-Key``), if any.

    Raises :class:`BadRequest` naming the header when the credentials are ambiguous. An
    ``Authorization`` header of another scheme is not a sharpen key and is ignored.
    """
    bearer = api_key = None
    authorizations = api_keys = 0
    for name, value in headers:
        if name == _AUTHORIZATION:
            authorizations += 1
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == _BEARER and token.strip():
                bearer = token.strip()
        elif name == _X_API_KEY:
            api_keys += 1
            api_key = value.decode("latin-1") or None
    if authorizations > 1:
        raise _ambiguous("Authorization", f"sent {authorizations} times")
    if api_keys > 1:
        raise _ambiguous("X-API-Key", f"sent {api_keys} times")
    if bearer is not None and api_key is not None and bearer != api_key:
        raise _ambiguous("X-API-Key", "differs from the Authorization bearer key")
    return bearer or api_key


class Authenticate:
    """Resolves the caller of a request once, for :class:`service.api.front.Front` to store
    in ``scope["auth"]``.

    A request presenting a key from an address (or, for addresses that never
    authenticated, at a time) over its failed-authentication limit is refused with 429 and
    ``Retry-After`` without its key being looked at, so the answer tells a guesser nothing.
    """

    def __init__(self, *, keyring: KeyRing, limit: FailedAuthLimit) -> None:
        self.keyring = keyring
        self.limit = limit

    def resolve(self, scope: ASGIScope) -> Caller:
        """The request's :class:`Caller`; raises :class:`BadRequest` for ambiguous
        credentials and the limit's refusal (429) for an address over its limit."""
        secret = presented_key(scope["headers"])
        if secret is None:
            return ANONYMOUS
        address = client_address(scope)
        refused = self.limit.refusal(address)
        if refused is not None:
            raise refused
        caller = self.keyring.caller(secret)
        if caller.identity is None:
            self.limit.failed(address, "api_key")
        else:
            self.limit.succeeded(address)
        return caller
