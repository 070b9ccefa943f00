"""Compiled Pool Adjacent Violators over batches: the fast path behind soft sort and rank.

One row function, :func:`_pav_row`, holds the algorithm (the same one as
:mod:`minis2l.isotonic`, on preallocated work arrays so it never allocates). Numba compiles it
twice: for the CPU (rows spread over threads with ``prange``) and, where a CUDA GPU and Numba's
CUDA target are available, as a device function run one row per GPU thread on the tensors'
own memory, so CUDA inputs never travel to the host.

Besides the solution ``v`` it records, for every entry, where its block starts (``blk``) and
the entry's weight in its block's derivative (``wts``):

* ``mode == 0`` (``"l2"``): ``1 / |B|``, since d mean(y[B]) / d y_i = 1/|B|.
* ``mode == 1`` (``"kl"``, derivative in ``s``): ``softmax(s[B])_i``.
* ``mode == 2`` (``"kl"``, derivative in ``w``): ``softmax(w[B])_i``.

With these the backward pass is two O(n) segment sums (see :mod:`minis2l.ranking`).
"""

from __future__ import annotations

import math
import warnings

import numba
import numpy as np
import torch

# Below this many entries per call the thread pool costs more than it saves.
_PARALLEL_MIN_SIZE = 1 << 15


def _pav_row(s, w, mode, v, blk, wts, start, a, b):  # pragma: no cover - compiled by numba
    """Decreasing isotonic regression of one row, written into ``v``, ``blk`` and ``wts``.

    ``mode == 0`` solves ``min 1/2||v - (s - w)||^2``; otherwise
    ``min <exp(s - v), 1> + <exp(w), v>``. ``start``, ``a`` and ``b`` are work arrays of
    length n holding the block stack: first index, and the two statistics (sum of s - w and
    count, or logsumexp of s and of w).
    """
    n = s.shape[0]
    m = 0
    for i in range(n):
        start[m] = i
        if mode == 0:
            a[m] = s[i] - w[i]
            b[m] = 1.0
        else:
            a[m] = s[i]
            b[m] = w[i]
        m += 1
        while m > 1:
            if mode == 0:
                left = a[m - 2] / b[m - 2]
                right = a[m - 1] / b[m - 1]
            else:
                left = a[m - 2] - b[m - 2]
                right = a[m - 1] - b[m - 1]
            if left > right:
                break
            if mode == 0:
                a[m - 2] += a[m - 1]
                b[m - 2] += b[m - 1]
            else:
                hi = max(a[m - 2], a[m - 1])
                a[m - 2] = hi + math.log(math.exp(a[m - 2] - hi) + math.exp(a[m - 1] - hi))
                hi = max(b[m - 2], b[m - 1])
                b[m - 2] = hi + math.log(math.exp(b[m - 2] - hi) + math.exp(b[m - 1] - hi))
            m -= 1
    for k in range(m):
        lo = start[k]
        hi_i = start[k + 1] if k + 1 < m else n
        if mode == 0:
            val = a[k] / b[k]
            weight = 1.0 / (hi_i - lo)
        else:
            val = a[k] - b[k]
        for i in range(lo, hi_i):
            v[i] = val
            blk[i] = lo
            if mode == 0:
                wts[i] = weight
            elif mode == 1:
                wts[i] = math.exp(s[i] - a[k])
            else:
                wts[i] = math.exp(w[i] - b[k])


_pav_row_cpu = numba.njit(cache=True, nogil=True)(_pav_row)


def _pav_chunk(s, w, mode, v, blk, wts, lo, hi):  # pragma: no cover - compiled by numba
    """Rows lo..hi-1, sharing one set of work arrays. Returns how many entries of s or w are
    not finite (from the first such row on, rows are left unsolved)."""
    n = s.shape[1]
    start = np.empty(n, np.int64)
    a = np.empty(n, np.float64)
    b = np.empty(n, np.float64)
    bad = 0
    for r in range(lo, hi):
        for i in range(n):
            if not (math.isfinite(s[r, i]) and math.isfinite(w[r, i])):
                bad += 1
        if bad == 0:
            _pav_row_cpu(s[r], w[r], mode, v[r], blk[r], wts[r], start, a, b)
    return bad


_pav_chunk_cpu = numba.njit(cache=True, nogil=True)(_pav_chunk)


def _pav_rows(s, w, mode, v, blk, wts, chunks):  # pragma: no cover - compiled by numba
    rows = s.shape[0]
    step = (rows + chunks - 1) // chunks
    bad = np.zeros(chunks, np.int64)
    for c in numba.prange(chunks):
        bad[c] = _pav_chunk_cpu(s, w, mode, v, blk, wts, c * step, min(rows, (c + 1) * step))
    return bad.sum()


_pav_parallel = numba.njit(cache=True, nogil=True, parallel=True)(_pav_rows)


def _rank_chunk(xs, perm, inv_eps, kl, out, blk, wts, lo, hi):  # pragma: no cover - numba
    """Fused CPU forward of soft rank for rows lo..hi-1 (see :func:`soft_rank_forward`).

    Returns how many entries were not finite after scaling (those rows are left unsolved).
    """
    n = xs.shape[1]
    s = np.empty(n, np.float64)
    w = np.empty(n, np.float64)
    v = np.empty(n, np.float64)
    start = np.empty(n, np.int64)
    a = np.empty(n, np.float64)
    b = np.empty(n, np.float64)
    for i in range(n):
        w[i] = math.log(n - i) if kl else n - i
    mode = 1 if kl else 0
    bad = 0
    for r in range(lo, hi):
        for i in range(n):
            s[i] = xs[r, i] * inv_eps
            if not math.isfinite(s[i]):
                bad += 1
        if bad:
            continue
        _pav_row_cpu(s, w, mode, v, blk[r], wts[r], start, a, b)
        for i in range(n):
            out[r, perm[r, i]] = math.exp(s[i] - v[i]) if kl else s[i] - v[i]
    return bad


_rank_chunk_cpu = numba.njit(cache=True, nogil=True)(_rank_chunk)


def _rank_rows(xs, perm, inv_eps, kl, out, blk, wts, chunks):  # pragma: no cover - numba
    rows = xs.shape[0]
    step = (rows + chunks - 1) // chunks
    bad = np.zeros(chunks, np.int64)
    for c in numba.prange(chunks):
        lo, hi = c * step, min(rows, (c + 1) * step)
        bad[c] = _rank_chunk_cpu(xs, perm, inv_eps, kl, out, blk, wts, lo, hi)
    return bad.sum()


_rank_parallel = numba.njit(cache=True, nogil=True, parallel=True)(_rank_rows)


def soft_rank_forward(
    x_sorted: torch.Tensor, perm: torch.Tensor, eps: float, kl: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Soft rank of CPU rows in one compiled pass: ``(ranks, blk, wts)``.

    ``x_sorted, perm = torch.sort(x, descending=True)``. Dividing by ``eps > 0`` keeps that
    order, so the pass scales, solves the isotonic regression against ``rho`` (or ``log rho``),
    and writes ``z - v`` (or its exp) straight back to the unsorted positions, with no
    intermediate tensors. Raises ValueError on non-finite entries.
    """
    out = torch.empty_like(x_sorted)
    blk = torch.empty(x_sorted.shape, dtype=torch.int64)
    wts = torch.empty_like(x_sorted)
    arrays = (x_sorted.numpy(), perm.numpy(), 1.0 / eps, kl, out.numpy(), blk.numpy(), wts.numpy())
    if x_sorted.numel() >= _PARALLEL_MIN_SIZE and x_sorted.shape[0] > 1:
        bad = _rank_parallel(*arrays, min(x_sorted.shape[0], 4 * numba.get_num_threads()))
    else:
        bad = _rank_chunk_cpu(*arrays, 0, x_sorted.shape[0])
    if bad:
        raise ValueError(
            "values contains NaN or infinite entries (or overflows when divided by "
            "regularization_strength)"
        )
    return out, blk, wts


def _cuda_kernel():
    """The CUDA kernel, compiled on first use (imports Numba's CUDA target only then)."""
    from minis2l._pav_cuda import pav_kernel

    return pav_kernel


def pav(s: torch.Tensor, w: torch.Tensor, mode: int) -> tuple[torch.Tensor, ...]:
    """Solve one decreasing isotonic regression per row of ``s`` and ``w`` (both (B, n);
    ``w`` may be a broadcast view, e.g. one row expanded).

    On the CPU, non-finite entries raise ValueError (checked in the same pass).
    Returns ``(v, blk, wts)``: the solution (dtype of ``s``), the start index of each entry's
    block (int64) and each entry's derivative weight (dtype of ``s``), all on ``s.device``.
    """
    v = torch.empty(s.shape, dtype=s.dtype, device=s.device)
    blk = torch.empty(s.shape, dtype=torch.int64, device=s.device)
    wts = torch.empty(s.shape, dtype=s.dtype, device=s.device)
    if s.numel() == 0:
        return v, blk, wts
    if s.is_cuda:
        try:
            _pav_cuda(s, w, mode, v, blk, wts)
            return v, blk, wts
        except Exception as err:  # Numba's CUDA target missing, or no libNVVM/driver match
            _warn_cuda_fallback(err)
            return tuple(t.to(s.device) for t in pav(s.cpu(), w.cpu(), mode))
    if s.device.type != "cpu":  # e.g. Apple MPS: solve on the CPU, hand back on the device
        return tuple(t.to(s.device) for t in pav(s.cpu(), w.cpu(), mode))
    arrays = (s.numpy(), w.numpy(), mode, v.numpy(), blk.numpy(), wts.numpy())
    if s.numel() >= _PARALLEL_MIN_SIZE and s.shape[0] > 1:
        bad = _pav_parallel(*arrays, min(s.shape[0], 4 * numba.get_num_threads()))
    else:
        bad = _pav_chunk_cpu(*arrays, 0, s.shape[0])
    if bad:
        raise ValueError("values contains NaN or infinite entries")
    return v, blk, wts


_CUDA_WARNED = False


def _warn_cuda_fallback(err: Exception) -> None:
    global _CUDA_WARNED
    if not _CUDA_WARNED:
        warnings.warn(
            f"minis2l: Numba's CUDA kernel is unavailable ({type(err).__name__}: {err}); "
            "solving the isotonic step on the CPU instead (a copy to the host and back). "
            "Install Numba's CUDA support (pip install numba-cuda, with the CUDA toolkit's "
            "libNVVM) to keep it on the GPU.",
            RuntimeWarning,
            stacklevel=4,
        )
        _CUDA_WARNED = True


def _pav_cuda(s, w, mode, v, blk, wts) -> None:  # pragma: no cover - GPU only
    from numba import cuda

    kernel = _cuda_kernel()
    stream = cuda.external_stream(torch.cuda.current_stream(s.device).cuda_stream)
    start = torch.empty(s.shape, dtype=torch.int64, device=s.device)
    a = torch.empty(s.shape, dtype=torch.float64, device=s.device)
    b = torch.empty_like(a)
    arrays = [cuda.as_cuda_array(t) for t in (s, w)]
    outs = [cuda.as_cuda_array(t) for t in (v, blk, wts, start, a, b)]
    threads = 128
    blocks = (s.shape[0] + threads - 1) // threads
    kernel[blocks, threads, stream](arrays[0], arrays[1], mode, *outs)


def _block_vjp(g, perm, blk, wts, out, mode, scale, grad):  # pragma: no cover - numba
    """CPU backward of soft rank (``mode`` 0 or 1) and soft sort (``mode`` 2), fused.

    Per row, with ``S_B = sum of t over the block B``: soft rank sets
    ``grad[perm[i]] = (t[i] - wts[i] * S_B) * scale`` with ``t[i] = g[perm[i]]`` (times
    ``out[perm[i]]`` for kl, the derivative of exp); soft sort sets
    ``grad[perm[i]] = wts[i] * S_B`` with ``t = g`` (its output is already in sorted order).
    """
    rows, n = g.shape
    t = np.empty(n, g.dtype)
    for r in range(rows):
        for i in range(n):
            if mode == 2:
                t[i] = g[r, i]
            elif mode == 1:
                t[i] = g[r, perm[r, i]] * out[r, perm[r, i]]
            else:
                t[i] = g[r, perm[r, i]]
        i = 0
        while i < n:
            lo = i
            total = 0.0
            while i < n and blk[r, i] == lo:
                total += t[i]
                i += 1
            for k in range(lo, i):
                if mode == 2:
                    grad[r, perm[r, k]] = wts[r, k] * total
                else:
                    grad[r, perm[r, k]] = (t[k] - wts[r, k] * total) * scale


_block_vjp_cpu = numba.njit(cache=True, nogil=True)(_block_vjp)


def block_vjp(
    g: torch.Tensor,
    perm: torch.Tensor,
    blk: torch.Tensor,
    wts: torch.Tensor,
    out: torch.Tensor | None,
    mode: int,
    scale: float,
) -> torch.Tensor:
    """The O(n) vector-Jacobian product of soft rank/sort on CPU tensors (see _block_vjp)."""
    g = g.contiguous()
    grad = torch.empty_like(g)
    out_arr = (out if out is not None else g).numpy()
    _block_vjp_cpu(
        g.numpy(), perm.numpy(), blk.numpy(), wts.numpy(), out_arr, mode, scale, grad.numpy()
    )
    return grad
