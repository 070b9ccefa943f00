"""Cutting inputs into patches, shuffling them, and the permutations that do it.

The same functions serve every modality: a log-mel spectrogram ``(..., F, T)`` (mel bins,
frames), an image ``(..., H, W)`` (``"2d"``: a grid of tiles) and a video clip laid out as a
film strip ``(..., H, T * W)`` (``"time"`` with K = T: its frames). Below, a spectrogram's
names are used. ``K`` patches are cut

* ``"time"``: along time, K vertical strips of ``T // K`` frames each;
* ``"freq"``: along frequency, K horizontal bands of ``F // K`` bins each;
* ``"2d"``: on a grid of ``rows x cols = K`` tiles (the most square factorization with
  ``rows <= cols``: 4 -> 2x2, 6 -> 2x3, 8 -> 2x4, 9 -> 3x3). A prime K has no 2-D grid.

When a size is not divisible, the trailing ``F % rows`` bins and ``T % cols`` frames are cropped,
so :func:`merge_patches` gives back the cropped spectrogram (:func:`crop_to_patches`), not the
original size. Patches come out as ``(..., K, F // rows, T // cols)``, in reading order (left to
right, then top to bottom). :func:`cut_pieces` is the cut every stage uses: split, shuffle when
asked, and crop each piece by a jitter margin.

Permutation convention: ``shuffled[..., j] = patches[..., perm[j]]``, i.e. slot ``j`` of the
shuffled sequence holds original patch ``perm[j]``. The target rank of slot ``j`` (1 = first
patch, as :func:`minis2l.soft_rank` counts) is therefore ``perm[j] + 1``, and
``patches = shuffled[..., invert_permutation(perm)]``.
"""

from __future__ import annotations

import itertools
import math

import torch

KINDS = ("time", "freq", "2d")


def grid_shape(num_patches: int, kind: str) -> tuple[int, int]:
    """(rows, cols) of the patch grid for ``num_patches`` patches of the given kind."""
    if kind not in KINDS:
        raise ValueError(f"patch kind must be one of {KINDS}, got {kind!r}")
    if isinstance(num_patches, bool) or not isinstance(num_patches, int):
        raise TypeError(f"num_patches must be an int, got {type(num_patches).__name__}")
    if num_patches < 2:
        raise ValueError(f"num_patches must be at least 2, got {num_patches}")
    if kind == "time":
        return 1, num_patches
    if kind == "freq":
        return num_patches, 1
    rows = max(r for r in range(1, math.isqrt(num_patches) + 1) if num_patches % r == 0)
    if rows == 1:
        raise ValueError(
            f"num_patches={num_patches} is prime, so it has no 2-D grid; use e.g. 4, 6, 8 or 9"
        )
    return rows, num_patches // rows


def _check(x: torch.Tensor, num_patches: int, kind: str) -> tuple[int, int]:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"input must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() < 2:
        raise ValueError(f"input must be (..., height, width), got shape {tuple(x.shape)}")
    rows, cols = grid_shape(num_patches, kind)
    f, t = x.shape[-2:]
    if rows > f or cols > t:
        raise ValueError(
            f"cannot cut a {f} x {t} input into {rows} x {cols} {kind} patches: each patch "
            "needs at least one row and one column"
        )
    return rows, cols


def crop_to_patches(x: torch.Tensor, num_patches: int, kind: str) -> torch.Tensor:
    """``x`` cropped to the largest size that the patch grid divides exactly."""
    rows, cols = _check(x, num_patches, kind)
    f, t = x.shape[-2:]
    return x[..., : f - f % rows, : t - t % cols]


def split_patches(x: torch.Tensor, num_patches: int, kind: str) -> torch.Tensor:
    """Cut ``(..., F, T)`` into ``(..., K, F // rows, T // cols)`` patches in reading order."""
    rows, cols = _check(x, num_patches, kind)
    x = crop_to_patches(x, num_patches, kind)
    f, t = x.shape[-2:]
    lead = x.shape[:-2]
    grid = x.reshape(*lead, rows, f // rows, cols, t // cols)
    grid = grid.movedim(-3, -2)  # (..., rows, cols, f/rows, t/cols)
    return grid.reshape(*lead, rows * cols, f // rows, t // cols)


def merge_patches(patches: torch.Tensor, kind: str) -> torch.Tensor:
    """Inverse of :func:`split_patches`: ``(..., K, h, w)`` back to ``(..., rows*h, cols*w)``."""
    if patches.dim() < 3:
        raise ValueError(f"patches must be (..., K, h, w), got shape {tuple(patches.shape)}")
    k, h, w = patches.shape[-3:]
    rows, cols = grid_shape(k, kind)
    lead = patches.shape[:-3]
    grid = patches.reshape(*lead, rows, cols, h, w).movedim(-2, -3)
    return grid.reshape(*lead, rows * h, cols * w)


def crop_patches(
    patches: torch.Tensor, margin: int, offsets: torch.Tensor | None = None
) -> torch.Tensor:
    """Cut ``margin`` rows and columns off every patch: ``(..., K, h, w)`` ->
    ``(..., K, h - margin, w - margin)``.

    ``offsets`` ``(..., K, 2)`` (integers in ``[0, margin]``) say where each crop starts (row,
    column); ``None`` takes the centre. Random offsets leave random gaps between neighbouring
    tiles, so a jigsaw cannot be solved by matching the pixels along their edges (Noroozi &
    Favaro, 2016, crop 64 x 64 tiles at random from 85 x 85 cells for the same reason).
    """
    if margin == 0:
        return patches
    h, w = patches.shape[-2:]
    if not 0 < margin < min(h, w):
        raise ValueError(f"jitter margin must be in 0..{min(h, w) - 1} for {h} x {w} patches")
    if offsets is None:
        c = margin // 2
        return patches[..., c : c + h - margin, c : c + w - margin]
    offsets = offsets.to(device=patches.device, dtype=torch.int64)
    lead = patches.shape[:-2]
    rows = offsets[..., 0, None] + torch.arange(h - margin, device=patches.device)
    out = patches.gather(-2, rows[..., None].expand(*lead, h - margin, w))
    cols = offsets[..., 1, None] + torch.arange(w - margin, device=patches.device)
    return out.gather(-1, cols[..., None, :].expand(*lead, h - margin, w - margin))


def cut_pieces(
    x: torch.Tensor,
    num_patches: int,
    kind: str,
    jitter: int = 0,
    *,
    perm: torch.Tensor | None = None,
    offsets: torch.Tensor | None = None,
) -> torch.Tensor:
    """The K pieces an encoder sees: ``(..., H, W)`` -> ``(..., K, h - jitter, w - jitter)``.

    The one cut every stage shares (the encoder's clip embedding, pretraining, fine-tuning,
    the probes and the puzzles): :func:`split_patches`, then, when ``perm`` is given,
    :func:`permute_patches` (slot ``j`` holds piece ``perm[j]``), then :func:`crop_patches` by
    ``jitter`` (at ``offsets`` ``(..., K, 2)``, one per slot, or centred when ``None``).
    """
    pieces = split_patches(x, num_patches, kind)
    if perm is not None:
        pieces = permute_patches(pieces, perm)
    return crop_patches(pieces, jitter, offsets)


def _check_perm(perm: torch.Tensor, k: int | None = None) -> None:
    if perm.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
        raise TypeError(f"perm must be an integer tensor, got {perm.dtype}")
    if k is not None and perm.shape[-1] != k:
        raise ValueError(f"perm has {perm.shape[-1]} entries but there are {k} patches")


def permute_patches(patches: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
    """``shuffled[..., j, :, :] = patches[..., perm[..., j], :, :]``.

    ``perm`` is ``(K,)`` (the same for every item) or has the leading shape of ``patches``
    plus ``K``.
    """
    _check_perm(perm, patches.shape[-3])
    perm = perm.to(device=patches.device, dtype=torch.int64)
    perm = perm.expand(*patches.shape[:-3], perm.shape[-1])
    index = perm[..., None, None].expand(*perm.shape, *patches.shape[-2:])
    return patches.gather(-3, index)


def invert_permutation(perm: torch.Tensor) -> torch.Tensor:
    """The permutation that undoes ``perm`` (along the last dimension)."""
    _check_perm(perm)
    return torch.argsort(perm.to(torch.int64), dim=-1)


def target_ranks(perm: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The rank (1 = first patch) each shuffled slot should get: ``perm + 1``."""
    _check_perm(perm)
    return perm.to(dtype) + 1


def shuffle(x: torch.Tensor, perm: torch.Tensor, num_patches: int, kind: str) -> torch.Tensor:
    """Cut ``x`` into patches, permute them with ``perm`` and put the picture back together."""
    return merge_patches(permute_patches(split_patches(x, num_patches, kind), perm), kind)


def random_permutations(
    batch: int,
    num_patches: int,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """``(batch, K)`` permutations drawn uniformly from all K! (argsort of i.i.d. uniforms).

    Never materializes the K! permutations, so K = 20 (K! ~ 2.4e18) is as cheap as K = 3.
    """
    if num_patches < 1 or batch < 0:
        raise ValueError(f"need batch >= 0 and num_patches >= 1, got {batch}, {num_patches}")
    gen_device = generator.device if generator is not None else device
    keys = torch.rand(batch, num_patches, generator=generator, device=gen_device)
    return torch.argsort(keys, dim=-1).to(device if device is not None else keys.device)


def hamming(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pairwise Hamming distances between rows of ``a`` (m, K) and ``b`` (n, K): (m, n)."""
    return (a[:, None, :] != b[None, :, :]).sum(-1)


def fixed_permutation_set(
    size: int, num_patches: int, *, seed: int = 0, candidates: int = 4000
) -> torch.Tensor:
    """``(P, K)`` permutations chosen far apart in Hamming distance, as jigsaw methods do.

    Greedy maximal minimum distance (Noroozi & Favaro, 2016): start from one random
    permutation, then repeatedly add the candidate whose distance to its nearest chosen
    permutation is largest (ties: the first candidate). The candidates are all K! permutations
    when K! <= ``candidates`` and a random sample of ``candidates`` of them otherwise.
    Deterministic for a seed.
    """
    if num_patches < 2:
        raise ValueError(f"num_patches must be at least 2, got {num_patches}")
    total = math.factorial(num_patches)
    if not 1 <= size <= total:
        raise ValueError(
            f"perm set size must be in 1..{total} (K! for K={num_patches}), got {size}"
        )
    gen = torch.Generator().manual_seed(seed)
    if total <= candidates:
        pool = torch.tensor(list(itertools.permutations(range(num_patches))), dtype=torch.int64)
        pool = pool[torch.randperm(total, generator=gen)]
    else:
        pool = random_permutations(candidates, num_patches, generator=gen)
        pool = torch.unique(pool, dim=0)
        pool = pool[torch.randperm(len(pool), generator=gen)]
        if len(pool) < size:
            raise ValueError(f"only {len(pool)} distinct candidates for {size} permutations")
    chosen = [0]
    nearest = hamming(pool, pool[:1])[:, 0]
    for _ in range(size - 1):
        nearest[chosen] = -1
        best = int(torch.argmax(nearest))
        chosen.append(best)
        nearest = torch.minimum(nearest, hamming(pool, pool[best : best + 1])[:, 0])
    return pool[chosen]
