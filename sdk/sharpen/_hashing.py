"""Versioned hashing: the single source of truth for bucketing.

Hash version 1 is MurmurHash3 x86_32 (unsigned) of the UTF-8 bytes of
``f"{salt}:{unit_id}"``; the bucket is ``hash % BUCKETS``.  Lone surrogates,
which have no UTF-8 form, are replaced by U+FFFD first (as JavaScript's
``TextEncoder`` does), so every language hashes the same bytes.

Each decision uses its own seed, so the decisions are independent of each
other: the traffic draw ("is the unit in?") never correlates with the variant
draw ("which arm?"), which is why raising traffic from 10% to 50% adds units
without moving any included unit to another variant.

Variant ranges come from :func:`weight_boundaries`: weights are read at their
shortest decimal form (the JSON text), cumulative shares are computed exactly
as fractions, and boundary *k* is ``floor(BUCKETS * C_k / W + 1/2)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from fractions import Fraction
from typing import Final

import mmh3

from sharpen._exceptions import UnsupportedHashVersionError

__all__ = [
    "BUCKETS",
    "HOLDOUT_SALT",
    "HOLDOUT_SEED",
    "LAYER_SEED",
    "SUPPORTED_HASH_VERSIONS",
    "TRAFFIC_SEED",
    "VARIANT_SEED",
    "Hasher",
    "bucket",
    "check_hash_version",
    "encode_key",
    "hash_key",
    "hasher_for",
    "threshold",
    "unit_hash",
    "weight_boundaries",
]

BUCKETS: Final = 10_000
"""Buckets per draw; shares and layer ranges are expressed out of this."""

# Seeds are "SH" (0x5348) followed by a decision number; all differ from 0,
# mmh3's default, so an unrelated system hashing the same ids never lines up.
TRAFFIC_SEED: Final = 0x5348_0001
"""Seed of the draw that decides whether a unit enters an experiment."""
VARIANT_SEED: Final = 0x5348_0002
"""Seed of the draw that picks the variant of an included unit."""
LAYER_SEED: Final = 0x5348_0003
"""Seed of the draw that places a unit in a layer (salt = layer name)."""
HOLDOUT_SEED: Final = 0x5348_0004
"""Seed of the global-holdout draw (salt = :data:`HOLDOUT_SALT`)."""
HOLDOUT_SALT: Final = "sharpen-holdout"
"""Salt of the global holdout: the same units for every experiment."""

SUPPORTED_HASH_VERSIONS: Final = frozenset({1})

Hasher = Callable[[str | bytes, int, bool], int]
"""The hash of one version, called ``hasher(key, seed, False)`` -> unsigned 32 bits.

``key`` is the joined ``salt:unit`` key as :func:`encode_key` gives it (an
ASCII ``str`` or UTF-8 ``bytes``); ``False`` asks for the unsigned value.
This is the calling convention of ``mmh3.hash``, which *is* version 1, so a
draw on the hot path costs a single C call.
"""


def _utf8(key: str) -> bytes:
    try:
        return key.encode("utf-8")
    except UnicodeEncodeError:
        fixed = "".join("\ufffd" if "\ud800" <= ch <= "\udfff" else ch for ch in key)
        return fixed.encode("utf-8")


def encode_key(key: str) -> str | bytes:
    """``key`` itself when ASCII, else its UTF-8 bytes (lone surrogates as U+FFFD).

    mmh3 hashes a ``str`` as its UTF-8 bytes but crashes on lone surrogates,
    so only ASCII keys (the common case, an O(1) check) skip the encoding.
    """
    return key if key.isascii() else _utf8(key)


_HASHERS: Final[dict[int, Hasher]] = {1: mmh3.hash}


def check_hash_version(version: object, *, key: str | None = None) -> int:
    """Return ``version`` if this SDK implements it, else raise.

    Raises :class:`UnsupportedHashVersionError` naming the experiment ``key``.
    """
    if type(version) is int and version in _HASHERS:
        return version
    raise UnsupportedHashVersionError(version, key=key)


def hasher_for(version: int) -> Hasher:
    """The hash function of ``version`` (raises for an unknown version)."""
    return _HASHERS[check_hash_version(version)]


def hash_key(salt: str, unit_id: str) -> str:
    """The string that is hashed: ``f"{salt}:{unit_id}"``."""
    return f"{salt}:{unit_id}"


def unit_hash(salt: str, unit_id: str, *, seed: int, version: int = 1) -> int:
    """Unsigned 32-bit hash of ``f"{salt}:{unit_id}"`` under ``seed`` and hash ``version``."""
    return hasher_for(version)(encode_key(hash_key(salt, unit_id)), seed, False)


def bucket(salt: str, unit_id: str, *, seed: int, version: int = 1) -> int:
    """Bucket in ``[0, BUCKETS)`` of ``unit_id`` under ``salt`` and ``seed``.

    >>> 0 <= bucket("fraud-v7", "user-1", seed=VARIANT_SEED) < BUCKETS
    True
    """
    return unit_hash(salt, unit_id, seed=seed, version=version) % BUCKETS


def threshold(share: float) -> int:
    """Buckets below which a unit falls inside ``share`` (clamped to [0, 1])."""
    if not share > 0.0:  # also catches NaN
        return 0
    if share >= 1.0:
        return BUCKETS
    return int(Fraction(repr(float(share))) * BUCKETS + Fraction(1, 2))


def _exact_weight(w: object) -> Fraction:
    if isinstance(w, bool) or not isinstance(w, int | float):
        raise ValueError(f"weight {w!r} is not a number")
    if isinstance(w, float) and not math.isfinite(w):
        raise ValueError(f"weight {w!r} is not finite")
    # repr() is the shortest decimal that round-trips: 33.3 means 333/10.
    exact = Fraction(w) if isinstance(w, int) else Fraction(repr(w))
    if exact < 0:
        raise ValueError(f"weight {w!r} is negative")
    return exact


def weight_boundaries(weights: Sequence[float]) -> tuple[int, ...]:
    """Upper bucket boundary of each variant for the given weights.

    Variant ``i`` owns buckets ``[b[i-1], b[i])`` with ``b[-1] = 0``; the last
    boundary is always :data:`BUCKETS`.  Weights must be finite, non-negative
    and not all zero (``ValueError`` otherwise).

    >>> weight_boundaries([20, 30, 50])
    (2000, 5000, 10000)
    """
    exact = [_exact_weight(w) for w in weights]
    total = sum(exact, Fraction(0))
    if total <= 0:
        raise ValueError("weights must not all be zero")
    bounds: list[int] = []
    running = Fraction(0)
    for f in exact:
        running += f
        bounds.append(int(running * BUCKETS / total + Fraction(1, 2)))
    return tuple(bounds)
