"""Recursive numerical integration of the z-process (Armitage, McPherson & Rowe 1969).

The score S(t) = Z(t) sqrt(t) is Brownian motion in information time t with drift
theta t (theta = expected z at t = 1). Between looks the sub-density of S on the
continuation region is carried forward by convolving with the normal increment.

The density is held on a grid and read as piecewise linear; integrals of a piecewise
linear function against the normal density and distribution function have closed
forms, so the convolution stays exact for the interpolant however small an increment
is (irregular, closely spaced looks are fine). Error comes only from the linear
interpolation, O(h^2) with h = sqrt(t) / resolution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special

from service.stats._batch import FloatArray

_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def _phi(u: FloatArray) -> FloatArray:
    return np.asarray(_INV_SQRT_2PI * np.exp(-0.5 * u * u), dtype=np.float64)


def _g1(u: FloatArray) -> FloatArray:
    """Antiderivative of Phi(u)."""
    return np.asarray(u * special.ndtr(u) + _phi(u), dtype=np.float64)


def _g2(u: FloatArray) -> FloatArray:
    """Antiderivative of u Phi(u)."""
    return np.asarray(0.5 * ((u * u - 1.0) * special.ndtr(u) + u * _phi(u)), dtype=np.float64)


@dataclass(frozen=True, slots=True)
class Density:
    """Sub-density of S on the continuation region after a look (None = start at 0)."""

    xs: FloatArray
    fs: FloatArray
    slopes: FloatArray

    @classmethod
    def on(cls, xs: FloatArray, fs: FloatArray) -> Density:
        return cls(xs, fs, np.asarray((fs[1:] - fs[:-1]) / (xs[1:] - xs[:-1]), dtype=np.float64))

    def mass(self) -> float:
        return float(np.dot(0.5 * (self.fs[1:] + self.fs[:-1]), self.xs[1:] - self.xs[:-1]))


def _above(d: Density, c: float, sigma: float) -> float:
    """Integral of f(s) Phi((s - c) / sigma) ds."""
    x, f, m = d.xs, d.fs, d.slopes
    a = (x - c) / sigma
    g1, g2 = _g1(a), _g2(a)
    base = f[:-1] + m * (c - x[:-1])
    return float(
        sigma * np.dot(base, g1[1:] - g1[:-1]) + sigma * sigma * np.dot(m, g2[1:] - g2[:-1])
    )


def _below(d: Density, c: float, sigma: float) -> float:
    """Integral of f(s) Phi((c - s) / sigma) ds."""
    x, f, m = d.xs, d.fs, d.slopes
    b = (c - x) / sigma
    g1, g2 = _g1(b), _g2(b)
    base = f[:-1] + m * (c - x[:-1])
    return float(
        -sigma * np.dot(base, g1[1:] - g1[:-1]) + sigma * sigma * np.dot(m, g2[1:] - g2[:-1])
    )


def crossing(prev: Density | None, bound: float, sigma: float, shift: float) -> tuple[float, float]:
    """P(continue so far and S_k >= bound), P(continue so far and S_k <= -bound).

    `bound` is on the score scale; the increment is N(shift, sigma^2).
    """
    if prev is None:
        return (
            float(special.ndtr((shift - bound) / sigma)),
            float(special.ndtr((-bound - shift) / sigma)),
        )
    return _above(prev, bound - shift, sigma), _below(prev, -bound - shift, sigma)


GRID_Z = 7.0
"""The grid stops at |z| = 7 even when the boundary is higher: the density there is
below 1e-11 of its peak."""


def _grid(
    prev: Density | None, bound: float, t: float, sigma: float, resolution: int
) -> FloatArray:
    root_t = math.sqrt(t)
    edge = min(bound, GRID_Z * root_t)
    points = max(math.ceil(2.0 * edge * resolution / root_t) + 1, 21)
    ys = np.linspace(-edge, edge, points)
    if prev is not None:
        # The previous region's edges become ramps of width sigma; resolve them.
        ramp = sigma * np.linspace(-6.0, 6.0, 25)
        extra = np.concatenate([prev.xs[0] + ramp, prev.xs[-1] + ramp])
        extra = extra[(extra > -edge) & (extra < edge)]
        if extra.size:
            ys = np.unique(np.concatenate([ys, extra]))
    return np.asarray(ys, dtype=np.float64)


def density_at(prev: Density | None, ys: FloatArray, sigma: float, shift: float) -> FloatArray:
    """Density of S_k (continuing so far, before look k's stopping) at the points ys."""
    if prev is None:
        return _phi((ys - shift) / sigma) / sigma
    x, f, m = prev.xs, prev.fs, prev.slopes
    yc = ys - shift
    a = (x[None, :] - yc[:, None]) / sigma
    # Absolute (not relative) accuracy is what matters here, so plain differences of
    # the distribution function are fine even deep in the tails.
    cdf = special.ndtr(a)
    d_cdf = cdf[:, 1:] - cdf[:, :-1]
    pdf = _phi(a)
    base = f[None, :-1] + m[None, :] * (yc[:, None] - x[None, :-1])
    g = np.einsum("ij,ij->i", base, d_cdf) + sigma * (pdf[:, :-1] - pdf[:, 1:]) @ m
    return np.maximum(np.asarray(g, dtype=np.float64), 0.0)


def propagate(
    prev: Density | None, bound: float, t: float, sigma: float, shift: float, resolution: int
) -> Density:
    """Sub-density of S_k on [-bound, bound] given the previous one."""
    if bound <= 1e-12:
        # Everything stopped: an empty continuation region.
        ys = np.array([-1e-12, 1e-12])
        return Density(ys, np.zeros(2), np.zeros(1))
    ys = _grid(prev, bound, t, sigma, resolution)
    return Density.on(ys, density_at(prev, ys, sigma, shift))
