"""Event ids that all land in one dedup field of the fingerprint scheme sharpen used before
issue 12: the field was the first 2 bytes of the *unkeyed* murmur3 x64-128 hash of the id,
so anyone could search offline for ids sharing a field and make the dedup script quadratic.

The search is brute force, vectorized with numpy (in place, 65,536 candidates at a time so
the arrays stay in cache): 16-character printable ids (one murmur3 block, no tail) from a
seeded generator, kept when their field is the target. About 65,536 candidates per hit,
roughly 1-2 ms per id on one core. :func:`old_field` is the old rule itself (through
``mmh3``), so a caller can check that the ids really collide.

    .venv/bin/python -m loadtests.colliding_ids 1000   # prints the ids, one per line
"""

from __future__ import annotations

import sys
from typing import Final

import mmh3
import numpy as np

__all__ = ["colliding_ids", "old_field"]

_U = np.uint64
_C1: Final = _U(0x87C37B91114253D5)
_C2: Final = _U(0x4CF5AD432745937F)
_F1: Final = _U(0xFF51AFD7ED558CCD)
_F2: Final = _U(0xC4CEB9FE1A85EC53)
# Bytes 0x30..0x6f: printable ASCII without a quote (a backslash is fine in JSON).
_MASK: Final = _U(0x3F3F3F3F3F3F3F3F)
_BASE: Final = _U(0x3030303030303030)
_CHUNK: Final = 1 << 16


def old_field(event_id: str) -> int:
    """The dedup field (0-65535) of ``event_id`` under the old, unkeyed scheme."""
    digest = mmh3.hash_bytes(event_id)
    return digest[0] | (digest[1] << 8)


class _Murmur:
    """murmur3 x64-128 (seed 0) of 16-byte keys ``k1 || k2``, low 16 bits of h1, in place."""

    def __init__(self) -> None:
        self.a, self.b, self.t, self.h1, self.h2 = (np.empty(_CHUNK, _U) for _ in range(5))

    def _rotl(self, x: np.ndarray, r: int, out: np.ndarray) -> None:
        np.left_shift(x, _U(r), out=self.t)
        np.right_shift(x, _U(64 - r), out=out)
        np.bitwise_or(out, self.t, out=out)

    def _fmix(self, k: np.ndarray) -> None:
        for multiplier in (_F1, _F2, None):
            np.right_shift(k, _U(33), out=self.t)
            k ^= self.t
            if multiplier is not None:
                k *= multiplier

    def fields(self, k1: np.ndarray, k2: np.ndarray) -> np.ndarray:
        a, b, h1, h2 = self.a, self.b, self.h1, self.h2
        with np.errstate(over="ignore"):
            np.multiply(k1, _C1, out=a)
            self._rotl(a, 31, a)
            a *= _C2
            self._rotl(a, 27, h1)
            h1 *= _U(5)
            h1 += _U(0x52DCE729)
            np.multiply(k2, _C2, out=b)
            self._rotl(b, 33, b)
            b *= _C1
            self._rotl(b, 31, h2)
            h2 += h1
            h2 *= _U(5)
            h2 += _U(0x38495AB5)
            h1 ^= _U(16)  # the key's length
            h2 ^= _U(16)
            h1 += h2
            h2 += h1
            self._fmix(h1)
            self._fmix(h2)
            h1 += h2
        h1 &= _U(0xFFFF)
        return h1


def colliding_ids(count: int, *, seed: int = 12) -> list[str]:
    """``count`` distinct 16-character ids that share one old dedup field (the field of the
    first candidate). Deterministic for a given seed."""
    rng = np.random.default_rng(seed)
    murmur = _Murmur()
    found: dict[str, None] = {}
    target: int | None = None
    while len(found) < count:
        raw = rng.bit_generator.random_raw(2 * _CHUNK).view(_U)
        k1 = (raw[:_CHUNK] & _MASK) + _BASE
        k2 = (raw[_CHUNK:] & _MASK) + _BASE
        fields = murmur.fields(k1, k2)
        if target is None:
            target = int(fields[0])
        for i in np.flatnonzero(fields == target):
            key = np.array([k1[i], k2[i]], dtype="<u8").tobytes().decode("ascii")
            found[key] = None
    ids = list(found)[:count]
    if any(old_field(i) != target for i in ids):
        raise AssertionError("the vectorized murmur3 disagrees with mmh3")
    return ids


if __name__ == "__main__":
    for event_id in colliding_ids(int(sys.argv[1]) if len(sys.argv) > 1 else 100):
        print(event_id)
