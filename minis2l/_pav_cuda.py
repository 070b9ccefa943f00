"""The CUDA version of :func:`minis2l._pav._pav_row`: one row of the batch per GPU thread.

Imported only when a CUDA tensor is ranked, so that CPU users never load Numba's CUDA target.
The row function is the very same Python function the CPU path compiles; only the wrapper
differs. Work arrays are passed in from torch, so nothing is allocated on the device here.
"""

from numba import cuda

from minis2l._pav import _pav_row

_pav_row_device = cuda.jit(device=True)(_pav_row)


@cuda.jit
def pav_kernel(s, w, mode, v, blk, wts, start, a, b):  # pragma: no cover - runs on the GPU
    """Row ``cuda.grid(1)`` of the batch: see :func:`minis2l._pav._pav_row`."""
    r = cuda.grid(1)
    if r < s.shape[0]:
        _pav_row_device(s[r], w[r], mode, v[r], blk[r], wts[r], start[r], a[r], b[r])
