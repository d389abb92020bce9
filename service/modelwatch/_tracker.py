"""Which segment values get their own rows: counted by volume, bounded (Space-Saving).

Each watched attribute keeps at most ``capacity`` counters. A value already counted adds
to its counter; a new value takes a free counter, or, when all are taken, the smallest
one: it starts from that count plus one and remembers the count as its possible error
(Metwally, Agrawal & El Abbadi, 2005). So any value holding more than 1/capacity of the
records always has a counter, and a stream of junk values only churns the smallest ones.
The values with a counter are the ones a new time bucket keeps rows for; the report then
shows the largest of those by the volume in its windows.

Attribute names and feature names are admitted in order of arrival up to their caps:
they are a model's schema, which does not churn.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["ValueCounter", "admit_names"]


class ValueCounter:
    """Space-Saving counters of one attribute's values: value -> (count, error)."""

    __slots__ = ("capacity", "counts")

    def __init__(self, capacity: int, counts: Mapping[str, Any] | None = None) -> None:
        self.capacity = capacity
        self.counts: dict[str, list[float]] = {
            str(v): [float(c[0]), float(c[1])] for v, c in (counts or {}).items()
        }

    def add(self, value: str, amount: float = 1.0) -> None:
        slot = self.counts.get(value)
        if slot is not None:
            slot[0] += amount
            return
        if len(self.counts) < self.capacity:
            self.counts[value] = [amount, 0.0]
            return
        smallest = min(self.counts, key=lambda v: self.counts[v][0])
        floor = self.counts.pop(smallest)[0]
        self.counts[value] = [floor + amount, floor]

    def values(self) -> list[str]:
        """The counted values, largest first."""
        return sorted(self.counts, key=lambda v: (-self.counts[v][0], v))

    def dump(self) -> dict[str, list[float]]:
        return {v: list(c) for v, c in self.counts.items()}


def admit_names(known: list[str], seen: Iterable[str], cap: int) -> list[str]:
    """``known`` plus the new names of ``seen`` while there is room, in arrival order."""
    out = list(known)
    have = set(out)
    for name in seen:
        if len(out) >= cap:
            break
        if name not in have:
            out.append(name)
            have.add(name)
    return out
