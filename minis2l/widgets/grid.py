"""The patch grid: drawing it on a spectrogram, the K on offer, and parsing an order of patches.

Patch numbering follows :mod:`minis2l.patches`: patches in reading order (left to right, then
top to bottom), ``shuffled[j] = patches[perm[j]]``. :func:`draw_patch_grid` is also used by the
notebooks' own figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib import patheffects
from matplotlib.axes import Axes

from minis2l import patches as P


def draw_patch_grid(
    ax: Axes,
    spec: np.ndarray,
    num_patches: int,
    kind: str,
    labels: Sequence[Any] | None = None,
    *,
    title: str | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
) -> Any:
    """Show a ``(F, T)`` log-mel on ``ax`` with the patch borders and one label per patch.

    ``spec`` should already be cropped to the patch grid (:func:`minis2l.patches.crop_to_patches`).
    ``labels`` defaults to the patch numbers ``0..K-1`` in reading order; ``None`` entries
    (or NaN patches, e.g. unfilled slots) get no label. Low frequencies are at the bottom, so the
    first patch row in reading order (the lowest mel bins) is drawn at the bottom. Returns the
    image (a matplotlib ``AxesImage``, e.g. for a colour bar).
    """
    spec = np.asarray(spec, dtype=np.float32)
    rows, cols = P.grid_shape(num_patches, kind)
    f, t = spec.shape
    h, w = f // rows, t // cols
    image = ax.imshow(spec, origin="lower", aspect="auto", cmap="magma", vmin=vmin, vmax=vmax)
    for r in range(1, rows):
        ax.axhline(r * h - 0.5, color="white", lw=1.5)
    for c in range(1, cols):
        ax.axvline(c * w - 0.5, color="white", lw=1.5)
    labels = list(range(num_patches)) if labels is None else list(labels)
    for k, label in enumerate(labels):
        if label is None:
            continue
        r, c = divmod(k, cols)
        ax.text(
            c * w + (w - 1) / 2,
            r * h + (h - 1) / 2,
            str(label),
            ha="center",
            va="center",
            color="white",
            fontsize=12 if cols <= 8 else 10,
            fontweight="bold",
            path_effects=[patheffects.withStroke(linewidth=3, foreground="black")],
        )
    ax.set_xlabel("frame")
    ax.set_ylabel("mel bin")
    if title:
        ax.set_title(title)
    return image


def parse_order(text: str, num_patches: int) -> list[int]:
    """Parse ``"2 0 1 3"`` (or ``"2,0,1,3"``) into patch numbers, each in ``0..K-1``, no repeats.

    Raises:
        ValueError: naming the offending entry.
    """
    out: list[int] = []
    for token in text.replace(",", " ").split():
        try:
            k = int(token)
        except ValueError:
            raise ValueError(f"{token!r} is not a patch number") from None
        if not 0 <= k < num_patches:
            raise ValueError(f"patch {k} does not exist: use 0 to {num_patches - 1}")
        if k in out:
            raise ValueError(f"patch {k} is used twice")
        out.append(k)
    if len(out) > num_patches:
        raise ValueError(f"{len(out)} patch numbers for {num_patches} slots")
    return out


def _valid_k(kind: str, max_patches: int) -> list[int]:
    """The K on offer for a patch kind: 2..max, or only those with a 2-D grid for ``"2d"``."""
    out = []
    for k in range(2, max_patches + 1):
        try:
            P.grid_shape(k, kind)
        except ValueError:
            continue
        out.append(k)
    return out
