"""Isotonic regression by Pool Adjacent Violators (PAV), written to be read.

This is the reference version that notebook 01 builds step by step. It works on one 1-D NumPy
array at a time, in plain Python loops. The library's fast path (:mod:`minis2l._pav`) runs the
same algorithm compiled, over whole batches; tests check that the two agree.

Convention (as in Blondel et al. 2020): the constraint is *decreasing*,
``v[0] >= v[1] >= ... >= v[n-1]``, because soft sorting and ranking project onto the
permutahedron after sorting in descending order.

* Quadratic (``"l2"``):  ``argmin_v  1/2 ||v - y||^2``.
  On a block ``B`` of pooled entries the solution is the mean ``mean(y[B])``.
* Entropic (``"kl"``):  ``argmin_v  <exp(s - v), 1> + <exp(w), v>``.
  On a block the solution is ``logsumexp(s[B]) - logsumexp(w[B])``.

PAV scans left to right, keeping a stack of blocks. Each new entry starts its own block; while
the last two blocks violate the constraint (left value <= right value), they are pooled into
one. Every entry is pushed once and pooled at most once, so the scan is O(n).
"""

from __future__ import annotations

import numpy as np


def _check_1d(name: str, x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return x


def isotonic_l2(y: np.ndarray) -> np.ndarray:
    """Decreasing isotonic regression with squared loss.

    Args:
        y: 1-D array of length n.

    Returns:
        v of length n with ``v[0] >= ... >= v[n-1]`` minimizing ``1/2 ||v - y||^2``.
    """
    y = _check_1d("y", y)
    # Each block is [start, total, count]; its value is total / count.
    blocks: list[list[float]] = []
    for i, yi in enumerate(y):
        blocks.append([i, yi, 1.0])
        # Pool while the previous block's value does not exceed the new one's.
        while len(blocks) > 1 and blocks[-2][1] / blocks[-2][2] <= blocks[-1][1] / blocks[-1][2]:
            _, total, count = blocks.pop()
            blocks[-1][1] += total
            blocks[-1][2] += count
    v = np.empty_like(y)
    for start, total, count in blocks:
        v[int(start) : int(start + count)] = total / count
    return v


def isotonic_kl(s: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Decreasing isotonic regression with the entropic (KL) loss.

    Args:
        s: 1-D array of length n.
        w: 1-D array of length n (sorted in decreasing order when used by the projection).

    Returns:
        v of length n with ``v[0] >= ... >= v[n-1]`` minimizing
        ``sum(exp(s - v)) + sum(exp(w) * v)``.
    """
    s = _check_1d("s", s)
    w = _check_1d("w", w)
    if s.shape != w.shape:
        raise ValueError(f"s and w must have the same shape, got {s.shape} and {w.shape}")
    # Each block is [start, logsumexp(s[B]), logsumexp(w[B]), size]; value = lse_s - lse_w.
    blocks: list[list[float]] = []
    for i in range(len(s)):
        blocks.append([i, s[i], w[i], 1])
        while len(blocks) > 1 and (blocks[-2][1] - blocks[-2][2]) <= (
            blocks[-1][1] - blocks[-1][2]
        ):
            _, lse_s, lse_w, size = blocks.pop()
            blocks[-1][1] = np.logaddexp(blocks[-1][1], lse_s)
            blocks[-1][2] = np.logaddexp(blocks[-1][2], lse_w)
            blocks[-1][3] += size
    v = np.empty_like(s)
    for start, lse_s, lse_w, size in blocks:
        v[int(start) : int(start) + int(size)] = lse_s - lse_w
    return v
