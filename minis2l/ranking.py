"""Differentiable sorting and ranking (Blondel, Teboul, Berthet, Djolonga, ICML 2020).

Both operators are projections onto the permutahedron ``P(w)``, the convex hull of all
permutations of a vector ``w``, regularized with strength ``eps > 0``:

* ``soft_rank(x)  = P(x / eps, rho)``            with ``rho = (n, n-1, ..., 1)``  (``"l2"``)
  ``soft_rank(x)  = exp(P_kl(x / eps, log rho))``                           (``"kl"``)
* ``soft_sort(x)  = P(rho / eps, x)``                                        (both)

A projection ``P(z, w)`` sorts ``z`` in decreasing order, solves one decreasing isotonic
regression (O(n) by Pool Adjacent Violators, :mod:`minis2l._pav`) and undoes the sort, so the
forward pass is O(n log n). The isotonic solution is constant on blocks, so its Jacobian is
block diagonal and the backward pass is O(n) (two segment sums over the blocks).

Conventions follow torchsort: ascending by default, rank 1 is the smallest value; as
``eps -> 0`` the results tend to the hard rank and sort, as ``eps -> inf`` every rank tends to
``(n + 1) / 2`` and every sorted value to the mean.
"""

from __future__ import annotations

import math

import torch

from minis2l._pav import block_vjp, pav, soft_rank_forward

__all__ = ["soft_rank", "soft_sort", "soft_spearman", "spearman_loss", "hard_rank"]

_MODES = ("l2", "kl")
# Soft rank's forward and both backwards have two implementations: fused compiled loops for
# CPU tensors, and torch ops around the isotonic step (scatter/gather segment sums) for every
# other device. Tests set this flag to run the second on the CPU too and check both agree.
_FORCE_TORCH_PATH = False


def _validate(values, regularization, regularization_strength, dim) -> int:
    """Check the arguments; return ``dim`` as a non-negative index."""
    if not isinstance(values, torch.Tensor):
        raise TypeError(f"values must be a torch.Tensor, got {type(values).__name__}")
    if not values.is_floating_point():
        raise TypeError(f"values must have a floating dtype, got {values.dtype}")
    if regularization not in _MODES:
        raise ValueError(f"regularization must be 'l2' or 'kl', got {regularization!r}")
    if isinstance(regularization_strength, torch.Tensor):
        if regularization_strength.numel() != 1:
            raise ValueError("regularization_strength must be a scalar")
        regularization_strength = regularization_strength.item()
    if isinstance(regularization_strength, bool) or not isinstance(
        regularization_strength, (int, float)
    ):
        raise TypeError(
            "regularization_strength must be a number, "
            f"got {type(regularization_strength).__name__}"
        )
    if not math.isfinite(regularization_strength) or regularization_strength <= 0:
        raise ValueError(
            f"regularization_strength must be finite and > 0, got {regularization_strength}"
        )
    if values.dim() == 0:
        raise ValueError("values must have at least one dimension to rank along, got a scalar")
    if not -values.dim() <= dim < values.dim():
        raise ValueError(f"dim={dim} is out of range for values with {values.dim()} dimensions")
    dim = dim % values.dim()
    if values.shape[dim] == 0:
        raise ValueError(
            f"values has an empty ranking dimension (dim={dim}, shape {tuple(values.shape)})"
        )
    # On the CPU the compiled pass checks finiteness itself, at no extra cost.
    if values.device.type != "cpu" and not bool(torch.isfinite(values).all()):
        raise ValueError("values contains NaN or infinite entries")
    return dim


def _as_rows(values: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.dtype]:
    """Move ``dim`` last, flatten the rest into rows, and pick the compute dtype."""
    out_dtype = values.dtype
    compute = values if values.dtype in (torch.float32, torch.float64) else values.float()
    rows = compute.movedim(dim, -1)
    return rows.reshape(-1, rows.shape[-1]), out_dtype


def _from_rows(
    rows: torch.Tensor, like: torch.Tensor, dim: int, dtype: torch.dtype
) -> torch.Tensor:
    shape = list(like.movedim(dim, -1).shape)
    return rows.reshape(shape).movedim(-1, dim).to(dtype)


def _segment_weighted_sum(g: torch.Tensor, blk: torch.Tensor, wts: torch.Tensor) -> torch.Tensor:
    """For each entry i: ``wts[i] * sum(g[j] for j in the block of i)``. O(n) per row."""
    sums = torch.zeros_like(g).scatter_add_(-1, blk, g)
    return wts * sums.gather(-1, blk)


def _rho(n: int, like: torch.Tensor) -> torch.Tensor:
    """(n, n-1, ..., 1) with the dtype and device of ``like``."""
    return torch.arange(n, 0, -1, dtype=like.dtype, device=like.device)


class SoftRank(torch.autograd.Function):
    """Soft rank of each row of a 2-D tensor (ascending); exact O(n) backward.

    ``forward(ctx, x, eps, kl)`` with ``x`` of shape (B, n), ``eps > 0``, ``kl`` a bool.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, eps: float, kl: bool) -> torch.Tensor:
        if x.device.type == "cpu" and not _FORCE_TORCH_PATH:
            x_sorted, perm = torch.sort(x, dim=-1, descending=True)
            out, blk, wts = soft_rank_forward(x_sorted, perm, eps, kl)
            ctx.save_for_backward(perm, blk, wts, out if kl else None)
            ctx.eps = eps
            return out
        z = x / eps
        z_sorted, perm = torch.sort(z, dim=-1, descending=True)
        w = _rho(x.shape[-1], x).expand_as(z_sorted)
        if kl:
            w = w.log()
        v, blk, wts = pav(z_sorted, w, 1 if kl else 0)
        out_sorted = z_sorted - v
        if kl:
            out_sorted = out_sorted.exp()
        out = torch.empty_like(out_sorted).scatter_(-1, perm, out_sorted)
        ctx.save_for_backward(perm, blk, wts, out if kl else None)
        ctx.eps = eps
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out: torch.Tensor):
        perm, blk, wts, out = ctx.saved_tensors
        if grad_out.device.type == "cpu" and not _FORCE_TORCH_PATH:
            mode = 0 if out is None else 1
            return block_vjp(grad_out, perm, blk, wts, out, mode, 1.0 / ctx.eps), None, None
        g = grad_out.gather(-1, perm)
        if out is not None:  # kl: rank = exp(projection)
            g = g * out.gather(-1, perm)
        g = g - _segment_weighted_sum(g, blk, wts)
        grad_x = torch.empty_like(g).scatter_(-1, perm, g) / ctx.eps
        return grad_x, None, None


class SoftSort(torch.autograd.Function):
    """Soft sort of each row of a 2-D tensor (descending); exact O(n) backward.

    ``forward(ctx, x, eps, kl)`` with ``x`` of shape (B, n), ``eps > 0``, ``kl`` a bool.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, eps: float, kl: bool) -> torch.Tensor:
        w, perm = torch.sort(x, dim=-1, descending=True)
        z = (_rho(x.shape[-1], x) / eps).expand_as(w)
        v, blk, wts = pav(z, w, 2 if kl else 0)
        ctx.save_for_backward(perm, blk, wts)
        return z - v

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out: torch.Tensor):
        perm, blk, wts = ctx.saved_tensors
        if grad_out.device.type == "cpu" and not _FORCE_TORCH_PATH:
            return block_vjp(grad_out, perm, blk, wts, None, 2, 1.0), None, None
        g = _segment_weighted_sum(grad_out.contiguous(), blk, wts)
        return torch.empty_like(g).scatter_(-1, perm, g), None, None


def soft_rank(
    values: torch.Tensor,
    regularization: str = "l2",
    regularization_strength: float = 1.0,
    *,
    dim: int = -1,
    descending: bool = False,
) -> torch.Tensor:
    """Differentiable ranks of ``values`` along ``dim``.

    Args:
        values: floating tensor of any shape; float16 and bfloat16 are computed in float32
            and returned in their own dtype. CPU or CUDA (other devices, e.g. Apple MPS,
            solve the isotonic step on the CPU).
        regularization: ``"l2"`` (quadratic) or ``"kl"`` (entropic).
        regularization_strength: ``eps > 0``. Small: close to the hard rank; large: every
            rank tends to ``(n + 1) / 2``.
        dim: the dimension to rank along.
        descending: rank 1 for the largest value instead of the smallest.

    Returns:
        A tensor of the shape and dtype of ``values``; along ``dim`` its entries sum to
        ``n (n + 1) / 2``, as hard ranks do (for both regularizations).

    Raises:
        TypeError: ``values`` is not a floating tensor, or the strength is not a number.
        ValueError: NaN or infinite values, ``eps <= 0`` or non-finite, an unknown
            regularization, a bad ``dim`` or an empty ranking dimension.
    """
    dim = _validate(values, regularization, regularization_strength, dim)
    rows, dtype = _as_rows(values, dim)
    if descending:
        rows = -rows
    out = SoftRank.apply(rows, float(regularization_strength), regularization == "kl")
    return _from_rows(out, values, dim, dtype)


def soft_sort(
    values: torch.Tensor,
    regularization: str = "l2",
    regularization_strength: float = 1.0,
    *,
    dim: int = -1,
    descending: bool = False,
) -> torch.Tensor:
    """Differentiable sorted values of ``values`` along ``dim`` (ascending by default).

    Args and errors as in :func:`soft_rank`. The result is sorted along ``dim``; for ``"l2"``
    it keeps the sum of the values; small ``eps`` gives ``torch.sort``, large ``eps`` tends to
    the mean everywhere.
    """
    dim = _validate(values, regularization, regularization_strength, dim)
    rows, dtype = _as_rows(values, dim)
    # SoftSort sorts in decreasing order; ascending is the decreasing sort of -x, negated.
    sign = 1.0 if descending else -1.0
    out = sign * SoftSort.apply(sign * rows, float(regularization_strength), regularization == "kl")
    return _from_rows(out, values, dim, dtype)


def hard_rank(values: torch.Tensor, *, dim: int = -1, descending: bool = False) -> torch.Tensor:
    """Exact ranks (1 = smallest, or largest when ``descending``) as the dtype of ``values``.

    Ties get distinct ranks in order of appearance (a stable sort).
    """
    order = torch.sort(values, dim=dim, descending=descending, stable=True).indices
    ranks = torch.empty_like(order)
    positions = torch.arange(1, values.shape[dim] + 1, device=values.device)
    shape = [1] * values.dim()
    shape[dim] = -1
    ranks.scatter_(dim, order, positions.view(shape).expand_as(order))
    return ranks.to(values.dtype if values.is_floating_point() else torch.float32)


def soft_spearman(
    pred: torch.Tensor,
    target: torch.Tensor,
    regularization: str = "l2",
    regularization_strength: float = 1.0,
) -> torch.Tensor:
    """Soft Spearman correlation between each row of ``pred`` and of ``target``.

    ``pred`` is soft-ranked (differentiable); ``target`` is hard-ranked (no gradient). The
    Pearson correlation of the two rank vectors is returned per row, shape ``pred.shape[:-1]``.
    Rows need at least two entries.
    """
    if pred.shape != target.shape:
        raise ValueError(
            f"pred and target must have the same shape, got {tuple(pred.shape)} "
            f"and {tuple(target.shape)}"
        )
    if pred.dim() == 0 or pred.shape[-1] < 2:
        raise ValueError("soft_spearman needs at least two entries along the last dimension")
    r_pred = soft_rank(pred, regularization, regularization_strength)
    r_true = hard_rank(target.detach()).to(r_pred.dtype)
    r_pred = r_pred - r_pred.mean(-1, keepdim=True)
    r_true = r_true - r_true.mean(-1, keepdim=True)
    # eps inside the root keeps the gradient finite when every prediction in a row is equal.
    denom = torch.sqrt(
        r_pred.square().sum(-1) * r_true.square().sum(-1) + torch.finfo(r_pred.dtype).eps
    )
    return (r_pred * r_true).sum(-1) / denom


def spearman_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    regularization: str = "l2",
    regularization_strength: float = 1.0,
) -> torch.Tensor:
    """``1 - soft_spearman(pred, target)``, averaged over rows: 0 when the order is perfect."""
    return (1.0 - soft_spearman(pred, target, regularization, regularization_strength)).mean()
