"""The video modality: images sliding across a canvas, shown as film strips.

Each clip is made deterministically from one image (as Moving MNIST was made from MNIST): the
image, shrunk to ``item`` x ``item`` pixels, starts somewhere on a black ``canvas`` x
``canvas`` frame and slides in one of eight directions (:data:`DIRECTIONS`) at one of two
initial speeds, **slowing down under friction** (each frame's step is ``FRICTION`` times the
previous one). Friction gives time a direction: at constant speed a clip played backwards is
just as likely as the clip itself, so its frame order would only be defined up to reversal.
Positions are sub-pixel (bilinear sampling), so every frame differs from the next.

A clip ``(T, H, W)`` is handed on as its **film strip** ``(H, T * W)``, the frames side by
side. Cutting the strip into K = T ``"time"`` patches (:func:`minis2l.patches.split_patches`)
gives back the frames: the same call that cuts a spectrogram into time strips.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
from pathlib import Path

import numpy as np
import torch

from minis2l.items import Items
from minis2l.vision.images import _load

DIRECTIONS = ("E", "NE", "N", "NW", "W", "SW", "S", "SE")
SPEEDS = (2.0, 3.0)
FRICTION = 0.7
FRAMES, CANVAS, ITEM = 8, 20, 10
#: Clips per split (train, valid, test), full and fast.
SIZES = {"full": (3_000, 1_000, 2_000), "fast": (600, 200, 400)}


def film_strip(clips: torch.Tensor | np.ndarray) -> torch.Tensor:
    """``(..., T, H, W)`` clips -> ``(..., H, T * W)`` strips (frames side by side)."""
    x = torch.as_tensor(clips)
    t, h, w = x.shape[-3:]
    return x.movedim(-3, -2).reshape(*x.shape[:-3], h, t * w)


def frames_of(strips: torch.Tensor | np.ndarray, frames: int) -> torch.Tensor:
    """Inverse of :func:`film_strip`: ``(..., H, T * W)`` -> ``(..., T, H, W)``."""
    x = torch.as_tensor(strips)
    h, tw = x.shape[-2:]
    if frames < 1 or tw % frames:
        raise ValueError(f"a strip {tw} pixels wide does not hold {frames} equal frames")
    return x.reshape(*x.shape[:-2], h, frames, tw // frames).movedim(-2, -3)


def make_clips(
    images: np.ndarray,
    *,
    frames: int = FRAMES,
    canvas: int = CANVAS,
    item: int = ITEM,
    speeds: tuple[float, ...] = SPEEDS,
    friction: float = FRICTION,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Clips ``(N, frames, canvas, canvas)`` in [0, 1] from images ``(N, h, w)`` in [0, 1],
    and each clip's direction (an index into :data:`DIRECTIONS`). Deterministic in ``seed``.

    Each clip's first step is one of ``speeds`` (pixels per frame), and each step is
    ``friction`` times the one before (1: constant speed, no direction in time)."""
    if frames < 2:
        raise ValueError(f"a clip needs at least 2 frames, got {frames}")
    if not 0 < item < canvas:
        raise ValueError(f"the item ({item} px) must be smaller than the canvas ({canvas} px)")
    if not 0 < friction <= 1:
        raise ValueError(f"friction must be in (0, 1], got {friction}")
    n = len(images)
    rng = np.random.default_rng(seed)
    direction = rng.integers(len(DIRECTIONS), size=n)
    speed = rng.choice(np.asarray(speeds, dtype=float), size=n)
    angle = direction * math.pi / 4
    unit = np.stack([np.cos(angle), -np.sin(angle)], axis=1)  # (x, y); y grows downwards
    steps = friction ** np.arange(frames - 1)  # the length of each step, relative to the first
    travel = np.concatenate([[0.0], np.cumsum(steps)])  # distance covered after t frames
    room = canvas - item
    total = speed[:, None] * unit * travel[-1]  # (n, 2) displacement over the clip
    if np.abs(total).max() > room:
        raise ValueError(
            f"a {canvas} px canvas is too small for {frames} frames at speeds {tuple(speeds)}: "
            f"the paths are up to {np.abs(total).max():.1f} px long, the room is {room} px"
        )
    lo, hi = np.maximum(0, -total), room - np.maximum(0, total)
    start = lo + rng.random((n, 2)) * (hi - lo)
    pos = start[:, None, :] + speed[:, None, None] * unit[:, None, :] * travel[None, :, None]
    small = torch.nn.functional.interpolate(
        torch.as_tensor(images, dtype=torch.float32)[:, None], size=(item, item), mode="area"
    )
    pix = torch.arange(canvas, dtype=torch.float32)
    out = np.empty((n, frames, canvas, canvas), dtype=np.float32)
    for lo_i in range(0, n, 500):
        p = torch.as_tensor(pos[lo_i : lo_i + 500], dtype=torch.float32)  # (b, T, 2)
        b = len(p)
        gx = (2 * (pix[None, None, :] - p[..., 0:1]) + 1) / item - 1  # (b, T, canvas)
        gy = (2 * (pix[None, None, :] - p[..., 1:2]) + 1) / item - 1
        grid = torch.stack(
            [
                gx[:, :, None, :].expand(b, frames, canvas, canvas),
                gy[:, :, :, None].expand(b, frames, canvas, canvas),
            ],
            dim=-1,
        )
        src = small[lo_i : lo_i + b, None].expand(b, frames, 1, item, item)
        clip = torch.nn.functional.grid_sample(
            src.reshape(b * frames, 1, item, item),
            grid.reshape(b * frames, canvas, canvas, 2),
            mode="bilinear",
            padding_mode="zeros",
            align_corners=False,
        )
        out[lo_i : lo_i + b] = clip.reshape(b, frames, canvas, canvas).numpy()
    return out, direction.astype(np.int64)


@functools.lru_cache(maxsize=2)
def _load_video(directory: str | None, fast: bool, verbose: bool) -> Items:
    images = _load(directory, fast, verbose)
    sizes = SIZES["fast" if fast else "full"]
    raw, labels = {}, {}
    for seed, (split, n) in enumerate(zip(("train", "valid", "test"), sizes, strict=True)):
        idx = np.arange(min(n, len(images.labels[split]["class"])))
        pixels = images.inputs[split][idx] * images.metadata["normalization"]["std"]
        pixels = pixels + images.metadata["normalization"]["mean"]
        clips, direction = make_clips(
            np.clip(pixels, 0, 1),
            frames=FRAMES,
            canvas=CANVAS,
            item=ITEM,
            speeds=SPEEDS,
            friction=FRICTION,
            seed=seed + 1,
        )  # the module's settings as they are now, the ones the metadata records
        raw[split] = film_strip(clips).numpy()
        labels[split] = {"class": images.labels[split]["class"][idx], "direction": direction}
    mean, std = float(raw["train"].mean()), float(raw["train"].std())
    inputs = {s: (x - mean) / std for s, x in raw.items()}
    for x in inputs.values():
        x.flags.writeable = False
    metadata = {
        **{k: v for k, v in images.metadata.items() if k not in ("counts", "normalization")},
        "modality": "video",
        "clip": {
            "frames": FRAMES,
            "canvas": CANVAS,
            "item": ITEM,
            "speeds": list(SPEEDS),
            "friction": FRICTION,
            "directions": list(DIRECTIONS),
        },
        "counts": {s: len(x) for s, x in inputs.items()},
        "normalization": {"mean": mean, "std": std},
    }
    # The resume key of a study: it changes with the images and with how clips are made.
    blob = json.dumps({"images": images.fingerprint, **metadata}, sort_keys=True)
    return Items(inputs, labels, hashlib.sha256(blob.encode()).hexdigest(), metadata)


def load_video(
    directory: str | Path | None = None, *, fast: bool = False, verbose: bool = True
) -> Items:
    """Clips made from the image splits (train clips from train images, and so on), as
    standardized film strips ``(N, CANVAS, FRAMES * CANVAS)``; labels ``{"class",
    "direction"}``. Generated on the fly (a few seconds), once per process."""
    return _load_video(None if directory is None else str(directory), fast, verbose)
