"""Seeded, vectorised simulation of cumulative sufficient statistics (no per-unit loops)."""

from __future__ import annotations

import numpy as np

from service.stats import StatsBatch


def cumulative_binomial(
    rng: np.random.Generator, sims: int, look_units: np.ndarray, p: float
) -> tuple[np.ndarray, np.ndarray]:
    """Units and successes at each look, shape (sims, looks), for one arm."""
    steps = np.diff(np.concatenate([[0], look_units]))
    successes = rng.binomial(steps[None, :].repeat(sims, 0), p).cumsum(axis=1)
    return np.broadcast_to(look_units, successes.shape).astype(float), successes.astype(float)


def cumulative_normal(
    rng: np.random.Generator, sims: int, look_units: np.ndarray, mean: float, sd: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Units, sum and sum of squares at each look for iid normal units (exact in law).

    A block of m units has sum ~ N(m mean, m sd^2) and, independently, a centred sum of
    squares ~ sd^2 chi2(m - 1); sum_sq = centred + sum^2 / m.
    """
    steps = np.diff(np.concatenate([[0], look_units])).astype(float)
    m = steps[None, :].repeat(sims, 0)
    block_sum = rng.normal(m * mean, sd * np.sqrt(m))
    centred = sd**2 * rng.chisquare(np.maximum(m - 1, 1))
    block_sq = centred + block_sum**2 / m
    n = np.broadcast_to(look_units, block_sum.shape).astype(float)
    return n, block_sum.cumsum(axis=1), block_sq.cumsum(axis=1)


def proportion_batch(n: np.ndarray, s: np.ndarray) -> StatsBatch:
    return StatsBatch.from_columns("proportion", n.ravel(), s.ravel())


def mean_batch(n: np.ndarray, s: np.ndarray, ss: np.ndarray) -> StatsBatch:
    return StatsBatch.from_columns("mean", n.ravel(), s.ravel(), ss.ravel())
