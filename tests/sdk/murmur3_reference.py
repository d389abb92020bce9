"""A slow, plain-Python MurmurHash3 x86_32, written from the published algorithm.

It checks the golden vectors independently of the ``mmh3`` C extension that
the SDK uses, so a wrong vector cannot agree with the SDK by construction.
"""

from __future__ import annotations

_C1 = 0xCC9E2D51
_C2 = 0x1B873593
_MASK = 0xFFFFFFFF


def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (32 - r))) & _MASK


def _mix_block(k: int) -> int:
    k = (k * _C1) & _MASK
    k = _rotl(k, 15)
    return (k * _C2) & _MASK


def murmur3_32(data: bytes, seed: int) -> int:
    h = seed & _MASK
    full = len(data) - len(data) % 4
    for i in range(0, full, 4):
        h ^= _mix_block(int.from_bytes(data[i : i + 4], "little"))
        h = _rotl(h, 13)
        h = (h * 5 + 0xE6546B64) & _MASK
    tail = data[full:]
    if tail:
        h ^= _mix_block(int.from_bytes(tail, "little"))
    h ^= len(data)
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & _MASK
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & _MASK
    h ^= h >> 16
    return h
