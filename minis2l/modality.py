"""The three modalities, side by side: where items come from and how they are cut into K pieces.

===========  =========================  ===================  ===========================
modality     an item (``(H, W)``)       default pieces       labels (supervised first)
===========  =========================  ===================  ===========================
``audio``    log-mel ``64 x 63``        6 ``freq`` bands     ``family``, ``pitch``
``image``    28 x 28 pixels             3 x 3 ``2d`` tiles   ``class``
``video``    film strip ``40 x 320``    8 ``time`` frames    ``class``, ``direction``
===========  =========================  ===================  ===========================

This is the only place that knows the difference. :func:`load_items` returns
:class:`~minis2l.items.Items`; patches, models, pretraining, probes and the study take it from
there. Each modality also names a no-encoder baseline: a linear probe on its input, average
pooled to a fixed size (the log-mel for audio, the pixels for images and video).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from minis2l import patches as P
from minis2l.data import FAMILIES
from minis2l.items import Items


@dataclass(frozen=True)
class Modality:
    """A modality's defaults: its pieces, its supervised classes and its baseline.

    Attributes:
        name: ``"audio"``, ``"image"`` or ``"video"``.
        patches, num_patches: the default patch kind and K.
        jitter: pixels cropped at random off each piece in pretraining (gaps between tiles).
        num_classes: classes of the first task, the one the supervised reference learns.
        baseline, baseline_size: the no-encoder probe's name and the size its input is
            average-pooled to.
        pieces: what the pieces are called (``"patches"``, ``"tiles"``, ``"frames"``).
        coords: whether the encoder gets coordinate channels (see
            :class:`minis2l.models.PatchEncoder`).
    """

    name: str
    patches: str
    num_patches: int
    jitter: int
    num_classes: int
    baseline: str
    baseline_size: tuple[int, int]
    pieces: str
    coords: bool = False


MODALITIES = {
    "audio": Modality("audio", "freq", 6, 0, len(FAMILIES), "logmel", (32, 8), "patches"),
    "image": Modality("image", "2d", 9, 2, 10, "pixels", (28, 28), "tiles"),
    "video": Modality("video", "time", 8, 0, 10, "pixels", (12, 96), "frames", True),
}


def get(name: str) -> Modality:
    """The :class:`Modality` called ``name``."""
    if name not in MODALITIES:
        raise ValueError(f"unknown modality {name!r}; choose from {', '.join(MODALITIES)}")
    return MODALITIES[name]


def check_pieces(name: str, kind: str, num_patches: int, jitter: int, shape: tuple) -> None:
    """Raise ValueError, naming the problem, when ``num_patches`` ``kind`` pieces cropped by
    ``jitter`` do not fit an input of ``shape`` ``(H, W)`` of modality ``name``."""
    P.grid_shape(num_patches, kind)
    if name == "video":
        from minis2l.vision.video import FRAMES

        if kind != "time":
            raise ValueError(f"video clips are cut into frames: use time patches, not {kind!r}")
        if num_patches > FRAMES:
            raise ValueError(f"K={num_patches} is larger than the {FRAMES} frames of a clip")
        if FRAMES % num_patches:
            raise ValueError(f"the {FRAMES} frames of a clip do not split into K={num_patches}")
    h, w = shape
    rows, cols = P.grid_shape(num_patches, kind)
    if rows > h or cols > w:
        raise ValueError(
            f"a {rows} x {cols} grid does not fit a {h} x {w} {name} input "
            f"(K={num_patches}, {kind} patches)"
        )
    if jitter < 0 or jitter >= min(h // rows, w // cols) - 1:
        raise ValueError(
            f"jitter {jitter} does not fit {h // rows} x {w // cols} pieces: use 0 to "
            f"{max(0, min(h // rows, w // cols) - 2)}"
        )


def load_items(
    name: str,
    data: str | Path | None = None,
    *,
    fast: bool = False,
    progress: bool = False,
    verbose: bool = True,
    **audio_build: Any,
) -> Items:
    """The items of modality ``name``.

    ``data``: audio, a built note data set (default: build or reuse one with
    ``audio_build``, see :func:`minis2l.data.build_dataset`); image and video, a folder with
    Fashion-MNIST's four IDX files (default: Debian's, else scikit-learn's digits).
    """
    modality = get(name).name
    if modality == "image":
        from minis2l.vision import load_images

        return load_images(data, fast=fast, verbose=verbose)
    if modality == "video":
        from minis2l.vision import load_video

        return load_video(data, fast=fast, verbose=verbose)
    from minis2l.data import load_dataset

    if data is None:
        build = {"fast": fast, "progress": progress, "verbose": verbose, **audio_build}
        notes = load_dataset(None, **build)
    else:
        notes = load_dataset(data)
    inputs, labels = {}, {}
    for split in ("train", "valid", "test"):
        part = notes.split(split)
        inputs[split] = np.asarray(part.features, dtype=np.float32)
        labels[split] = {"family": part.family, "pitch": part.pitch}
    meta = notes.metadata
    metadata = {
        "modality": "audio",
        "data": str(notes.root),
        "soundfonts": meta["params"]["soundfonts"],
        "notes": len(notes),
        "notes_per_split": meta["counts"]["notes_per_split"],
    }
    fingerprint = (Path(notes.root) / "metadata.json").read_text()
    return Items(inputs, labels, fingerprint, metadata)


def baseline_features(name: str, inputs: np.ndarray) -> np.ndarray:
    """The no-encoder baseline's features: ``inputs`` average-pooled to the modality's
    ``baseline_size`` and flattened (for audio: 32 mel bands x 8 time steps)."""
    pooled = torch.nn.functional.adaptive_avg_pool2d(
        torch.from_numpy(np.array(inputs, dtype=np.float32)), get(name).baseline_size
    )
    return pooled.flatten(1).numpy()
