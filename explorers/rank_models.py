"""The rank models of notebook 07's explorers, trained once and kept in ``runs/explorers/``.

The tile puzzle and the clip player need a rank model, and training one as notebook 07 does
takes minutes on 2 cores outside fast mode. :func:`rank_model` trains it with notebook 07's
settings (the image or video study's epochs, batch size and learning rate, at the scale of the
mode: ``fast`` or ``demo``) the first time and keeps the checkpoint in the git-ignored
``runs/explorers/<scale>/<modality>/``; later calls load it in a second. ``serve.py`` calls it
before Voilà starts, so no page waits for a training. The explorers' notebooks import this
module from their own folder (a kernel's working directory is its notebook's folder).
"""

from __future__ import annotations

import sys
from pathlib import Path

from minis2l.config import REPO_ROOT
from minis2l.models import PermutationModel
from minis2l.pretrain import PretrainConfig, load_pretrained, pretrain
from minis2l.study import StudyConfig

CACHE = REPO_ROOT / "runs" / "explorers"


def notebook07_config(modality: str, fast: bool) -> PretrainConfig:
    """The rank pretraining of notebook 07 for ``modality`` (``"image"`` or ``"video"``)."""
    study = StudyConfig.for_scale("fast" if fast else "demo", modality=modality)
    return PretrainConfig(
        method="rank",
        modality=modality,
        epochs=study.epochs,
        batch_size=study.batch_size,
        lr=study.lr,
        fast=fast,
    )


def rank_model(
    modality: str, fast: bool, cache: Path = CACHE, verbose: bool = False
) -> tuple[PermutationModel, PretrainConfig]:
    """Notebook 07's rank model for ``modality`` in eval mode, and its config.

    Loaded from ``cache`` when a finished run with the same config is there; otherwise trained
    and written there, replacing whatever was there (``verbose``: say so, with a progress bar
    in a terminal).
    """
    cfg = notebook07_config(modality, fast)
    out = Path(cache) / ("fast" if fast else "demo") / modality
    path = out / "checkpoint.pt"
    if path.is_file():
        try:
            model, stored, ckpt = load_pretrained(path)
        except (OSError, RuntimeError, KeyError, TypeError, ValueError):
            pass  # unreadable, or written by another version of the model: train afresh
        else:
            if stored == cfg and ckpt["epoch"] + 1 >= cfg.epochs:
                return model, cfg
    if verbose:
        print(f"training notebook 07's {modality} rank model ({cfg.epochs} epochs) ...", flush=True)
    pretrain(cfg, out, overwrite=True, progress=verbose and sys.stderr.isatty())
    model, cfg, _ = load_pretrained(path)
    return model, cfg
