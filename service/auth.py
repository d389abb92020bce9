"""API keys with scopes, kept only as SHA-256 digests and compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Literal

__all__ = ["Identity", "KeyRing", "Scope", "generate_key"]

Scope = Literal["admin", "client"]


@dataclass(frozen=True, slots=True)
class Identity:
    """Who called: the key's name (never the key) and its scope."""

    name: str
    scope: Scope


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8")).digest()


def generate_key(scope: Scope) -> str:
    return f"sk_{scope}_{secrets.token_urlsafe(24)}"


class KeyRing:
    """Resolves a presented secret to an :class:`Identity`; holds no plaintext."""

    def __init__(self) -> None:
        self._entries: list[tuple[bytes, Identity]] = []

    @classmethod
    def from_config(cls, admin: list[str], client: list[str]) -> KeyRing:
        ring = cls()
        for scope, entries in (("admin", admin), ("client", client)):
            for index, entry in enumerate(entries, start=1):
                name, _, secret = entry.partition("=") if "=" in entry else ("", "", entry)
                ring.add(secret, name or f"{scope}-{index}", scope)  # type: ignore[arg-type]
        return ring

    def add(self, secret: str, name: str, scope: Scope) -> None:
        self._entries.append((_digest(secret), Identity(name=name, scope=scope)))

    def __len__(self) -> int:
        return len(self._entries)

    def resolve(self, secret: str) -> Identity | None:
        presented = _digest(secret)
        found: Identity | None = None
        # Compare against every entry so timing does not reveal which key matched.
        for digest, identity in self._entries:
            if hmac.compare_digest(presented, digest):
                found = identity
        return found
