"""Linear probes on frozen encoders (``python -m minis2l probe``).

The encoder is frozen and turned into clip embeddings (:meth:`PermutationModel.embed`). A linear
probe is fitted on the train split for each task of the modality (the labels' names):

* audio: ``family`` (NSynth's instrument family, 11 classes) and ``pitch`` (the MIDI pitch of
  the note, one class per pitch in the data set);
* image: ``class`` (10 classes); video: ``class`` and ``direction`` (8 directions of motion).

The probe is a ridge-regression classifier (least squares onto one-hot labels, arg-max to
predict; scikit-learn's ``RidgeClassifier``) on features standardized with the train split's
statistics. Its penalty is chosen on the valid split from :data:`RIDGE_GRID` (one SVD serves
the whole grid, so probing takes well under a second); the chosen probe is scored once on
test (instruments never seen in training): accuracy and macro-F1.
``label_fraction`` < 1 fits on a random, class-stratified subset of the train labels (at least
one note per class when possible), as in a low-label regime.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.metrics import accuracy_score, f1_score

RIDGE_GRID = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1000.0)


@torch.no_grad()
def embed(model: torch.nn.Module, features: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Embeddings of inputs ``features`` (N, H, W) with a frozen model, as float32 numpy."""
    model.eval()
    device = next(model.parameters()).device
    out = []
    for lo in range(0, len(features), batch_size):
        x = torch.as_tensor(np.array(features[lo : lo + batch_size], dtype=np.float32))
        out.append(model.embed(x.to(device)).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


@torch.no_grad()
def embed_layers(
    model: torch.nn.Module, features: np.ndarray, batch_size: int = 256
) -> dict[str, np.ndarray]:
    """Clip features from three depths of a frozen :class:`~minis2l.models.PermutationModel`.

    The K patches in natural order, each described by: ``"conv"``, the conv stack's channels
    averaged over the patch (before the projection); ``"patch"``, the patch embedding (what
    :func:`embed` returns); ``"context"``, the output of the context layer (models that have
    one). Each is concatenated over the K patches: ``{name: (N, K * width)}``.
    """
    model.eval()
    device = next(model.parameters()).device
    out: dict[str, list[np.ndarray]] = {"conv": [], "patch": []}
    if getattr(model, "context", None) is not None:
        out["context"] = []
    for lo in range(0, len(features), batch_size):
        x = torch.as_tensor(np.array(features[lo : lo + batch_size], dtype=np.float32))
        parts = model.pieces(x.to(device))
        b, k = parts.shape[:2]
        conv = model.encoder.features(parts.reshape(b * k, *parts.shape[2:]))
        patch = model.encoder.proj(conv).reshape(b, k, -1)
        out["conv"].append(conv.reshape(b, -1).float().cpu().numpy())
        out["patch"].append(patch.flatten(1).float().cpu().numpy())
        if "context" in out:
            out["context"].append(model.context(patch).flatten(1).float().cpu().numpy())
    return {name: np.concatenate(parts) for name, parts in out.items()}


def subsample(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Indices of a class-stratified random ``fraction`` of ``labels`` (>= 1 per class)."""
    if not 0 < fraction <= 1:
        raise ValueError(f"label fraction must be in (0, 1], got {fraction}")
    if fraction == 1:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    keep = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        k = max(1, int(round(fraction * len(idx))))
        keep.append(rng.choice(idx, size=k, replace=False))
    return np.sort(np.concatenate(keep))


def fit_probe(
    train: tuple[np.ndarray, np.ndarray],
    valid: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    *,
    ridge_grid: tuple[float, ...] = RIDGE_GRID,
) -> dict[str, Any]:
    """Fit a ridge-regression classifier probe, choose its penalty on valid, score on test.

    Each argument is ``(features, labels)``. The probe regresses one-hot labels on the
    standardized features with an L2 penalty ``alpha * n_train`` and predicts the arg-max. One
    SVD of the train features gives the solution for every penalty in the grid. Returns
    ``{"accuracy", "macro_f1", "alpha", "valid_accuracy"}``: test metrics, and the valid
    accuracy of the chosen penalty (chosen on train accuracy when valid has no labels).
    """
    from threadpoolctl import threadpool_limits

    # One BLAS thread: on a busy 2-core machine a threaded SVD spins and runs several times
    # slower (seen: 4 s against 17 s for 20 000 x 768).
    with threadpool_limits(1):
        return _fit_probe(train, valid, test, ridge_grid)


def _fit_probe(
    train: tuple[np.ndarray, np.ndarray],
    valid: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    ridge_grid: tuple[float, ...],
) -> dict[str, Any]:
    x_tr, y_tr = train
    mean, std = x_tr.mean(0), x_tr.std(0) + 1e-6
    classes = np.unique(y_tr)  # a class never seen in train can never be predicted

    def prep(x: np.ndarray) -> np.ndarray:
        return ((x - mean) / std).astype(np.float64)

    xt = prep(x_tr)
    targets = (y_tr[:, None] == classes[None, :]).astype(np.float64)
    offset = targets.mean(0)
    u, sv, vt = np.linalg.svd(xt, full_matrices=False)
    uty = u.T @ (targets - offset)
    xv, yv = (prep(valid[0]), valid[1]) if len(valid[1]) else (xt, y_tr)
    best = None
    for alpha in ridge_grid:
        shrink = sv / (sv**2 + alpha * len(xt))
        w = vt.T @ (shrink[:, None] * uty)
        score = accuracy_score(yv, classes[np.argmax(xv @ w + offset, axis=1)])
        if best is None or score > best[0]:
            best = (score, alpha, w)
    score, alpha, w = best
    pred = classes[np.argmax(prep(test[0]) @ w + offset, axis=1)]
    return {
        "accuracy": float(accuracy_score(test[1], pred)),
        "macro_f1": float(f1_score(test[1], pred, average="macro", zero_division=0)),
        "alpha": alpha,
        "valid_accuracy": float(score),
    }


def probe_embeddings(
    emb: dict[str, np.ndarray],
    labels: dict[str, dict[str, np.ndarray]],
    *,
    label_fraction: float = 1.0,
    seed: int = 0,
) -> dict[str, dict[str, Any]]:
    """Probe every task. ``emb[split]`` are embeddings, ``labels[split][task]`` the labels."""
    results = {}
    for task in labels["train"]:
        keep = subsample(labels["train"][task], label_fraction, seed)
        results[task] = fit_probe(
            (emb["train"][keep], labels["train"][task][keep]),
            (emb["valid"], labels["valid"][task]),
            (emb["test"], labels["test"][task]),
        )
    return results


def probe_checkpoint(
    checkpoint: str | Path, data: str | Path | None = None, *, label_fraction: float = 1.0
) -> dict[str, Any]:
    """Load an encoder checkpoint and probe it on the data it was trained with (or ``data``)."""
    from minis2l.modality import load_items
    from minis2l.pretrain import load_pretrained

    model, cfg, _ = load_pretrained(checkpoint)
    items = load_items(cfg.modality, data or cfg.data, fast=cfg.fast)
    emb = {s: embed(model, x) for s, x in items.inputs.items()}
    return probe_embeddings(emb, items.labels, label_fraction=label_fraction)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``python -m minis2l probe``."""
    parser.add_argument(
        "--checkpoint",
        required=True,
        metavar="PATH",
        help="a checkpoint.pt written by `minis2l pretrain`",
    )
    parser.add_argument(
        "--data",
        metavar="DIR",
        help="note data set or image folder (default: the run's own)",
    )
    parser.add_argument(
        "--label-fraction",
        type=float,
        default=1.0,
        metavar="F",
        help="fraction of train labels for the probes (default 1)",
    )
    parser.add_argument("--out", metavar="DIR", help="also write DIR/probe.json")


def run(args: argparse.Namespace) -> int:
    """Run ``python -m minis2l probe``; errors become one line on stderr and exit 2."""
    try:
        results = probe_checkpoint(args.checkpoint, args.data, label_fraction=args.label_fraction)
    except (ValueError, FileNotFoundError) as err:
        print(f"minis2l probe: error: {err}", file=sys.stderr)
        return 2
    for task, r in results.items():
        print(
            f"{task:7s} test accuracy {r['accuracy']:.3f}  macro-F1 {r['macro_f1']:.3f}  "
            f"(alpha={r['alpha']}, valid accuracy {r['valid_accuracy']:.3f})"
        )
    if args.out:
        from minis2l.io import save_json

        Path(args.out).mkdir(parents=True, exist_ok=True)
        save_json(Path(args.out) / "probe.json", results)
    return 0


__all__ = [
    "embed",
    "embed_layers",
    "fit_probe",
    "probe_checkpoint",
    "probe_embeddings",
    "subsample",
]
