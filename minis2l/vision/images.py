"""The image modality: 28 x 28 grey images and their class, as :class:`~minis2l.items.Items`.

Splits: test is drawn from the standard test set; train and valid are disjoint draws from the
standard training set (valid is cut from train, never from test). Draws are class-stratified
and fixed (seed 0). Sizes (:data:`SIZES`) keep the image study within minutes on a laptop CPU;
fast mode shrinks them. Pixels are scaled to [0, 1], then standardized with the train split's
mean and standard deviation (two numbers, recorded in the metadata).
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path

import numpy as np

from minis2l.items import Items
from minis2l.vision.idx import ImageSource, find_images

#: Items per split (train, valid, test), full and fast.
SIZES = {"full": (10_000, 2_000, 10_000), "fast": (1_000, 300, 1_000)}


def _draw(labels: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """A class-stratified random draw of about ``n`` indices (all of them if fewer)."""
    if n >= len(labels):
        return rng.permutation(len(labels))
    keep = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        keep.append(rng.choice(idx, size=round(n * len(idx) / len(labels)), replace=False))
    return rng.permutation(np.concatenate(keep))


def split_source(source: ImageSource, fast: bool) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{split: (uint8 images, labels)}``: test from test; train and valid disjoint, from
    train (valid gets a fifth of train when train is smaller than the sizes ask for)."""
    n_train, n_valid, n_test = SIZES["fast" if fast else "full"]
    rng = np.random.default_rng(0)
    x, y = source.train
    if n_train + n_valid > len(y):
        n_valid = len(y) // 5
        n_train = len(y) - n_valid
    valid = _draw(y, n_valid, rng)
    rest = np.setdiff1d(np.arange(len(y)), valid)
    train = rest[_draw(y[rest], n_train, rng)]
    test = _draw(source.test[1], n_test, rng)
    return {
        "train": (x[train], y[train]),
        "valid": (x[valid], y[valid]),
        "test": (source.test[0][test], source.test[1][test]),
    }


@functools.lru_cache(maxsize=4)
def _load(directory: str | None, fast: bool, verbose: bool) -> Items:
    source = find_images(directory, verbose=verbose)
    parts = split_source(source, fast)
    scaled = {s: x.astype(np.float32) / 255.0 for s, (x, _) in parts.items()}
    mean, std = float(scaled["train"].mean()), float(scaled["train"].std())
    inputs = {s: (x - mean) / std for s, x in scaled.items()}
    for x in inputs.values():
        x.flags.writeable = False
    labels = {s: {"class": y} for s, (_, y) in parts.items()}
    metadata = {
        "modality": "image",
        "source": source.name,
        "files": source.files,
        "classes": list(source.classes),
        "counts": {s: len(y) for s, (_, y) in parts.items()},
        "normalization": {"mean": mean, "std": std},
    }
    blob = json.dumps({**metadata, "fast": fast}, sort_keys=True)
    return Items(inputs, labels, hashlib.sha256(blob.encode()).hexdigest(), metadata)


def load_images(
    directory: str | Path | None = None, *, fast: bool = False, verbose: bool = True
) -> Items:
    """Fashion-MNIST (or the digits fallback) as standardized ``(N, 28, 28)`` images.

    ``directory``: a folder with the four IDX files (default: Debian's package, see
    :func:`~minis2l.vision.idx.find_images`). Labels: ``{"class": 0-9}``. Loaded once per
    process and shared (the arrays are read-only).
    """
    return _load(None if directory is None else str(directory), fast, verbose)
