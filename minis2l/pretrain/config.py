"""What defines a pretraining run (:class:`PretrainConfig`) and the model it trains."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from minis2l import modality as M
from minis2l import patches as P
from minis2l.io import load_checkpoint
from minis2l.models import METHODS, PermutationModel

#: Fields that are options of a modality's loader (:attr:`minis2l.modality.Modality.options`).
LOADER_OPTIONS = ("soundfont",)


PLATEAU_HELP = (  # the --plateau option of every command that pretrains
    "stop before --epochs once two epochs in a row fail to beat the best valid metric before "
    "them (Spearman; accuracy for supervised) by GAIN (default: train every epoch)"
)


@dataclass
class PretrainConfig:
    """Everything that defines a pretraining run (stored in ``config.json`` and checkpoints).

    ``epochs=None`` means the default: 12, or 2 in fast mode. ``patches``, ``num_patches`` and
    ``jitter`` left at None take the modality's defaults (:data:`minis2l.modality.MODALITIES`).
    ``data``: where the modality's loader finds the items (a built note data set, a folder of
    IDX files; None: its default source). ``soundfont``: an option of the audio loader (the
    SoundFont its default data set is built from). ``plateau``: stop before ``epochs`` once the
    valid metric (Spearman on shuffles from all K! for the pretexts, accuracy for supervised)
    has not beaten its best by this much for two epochs (None: train every epoch; the learning-rate
    schedule still spans ``epochs``, so set ``epochs`` to the most you would train).
    """

    method: str = "rank"
    modality: str = M.DEFAULT
    patches: str | None = None
    num_patches: int | None = None
    jitter: int | None = None
    perm_set_size: int = 100
    epochs: int | None = None
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    seed: int = 0
    device: str = "auto"
    regularization: str = "l2"
    regularization_strength: float = 0.1
    dim: int = 128
    compile: bool = False
    fast: bool = False
    data: str | None = None
    soundfont: str | None = None
    plateau: float | None = None

    def __post_init__(self) -> None:
        if self.epochs is None:
            self.epochs = 2 if self.fast else 12
        modality = M.get(self.modality)
        if self.patches is None:
            self.patches = modality.patches
        if self.num_patches is None:
            self.num_patches = modality.num_patches
        if self.jitter is None:
            self.jitter = modality.jitter
        self.validate()

    def validate(self) -> None:
        """Raise ValueError naming the first bad field."""
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; use {', '.join(METHODS)}")
        P.grid_shape(self.num_patches, self.patches)  # kind and K >= 2
        for name in ("epochs", "batch_size", "perm_set_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.method == "jigsaw" and self.num_perms() < 2:
            raise ValueError("the jigsaw head needs a permutation set of at least 2")
        if self.plateau is not None and not self.plateau >= 0:
            raise ValueError(f"plateau must be at least 0 (or None), got {self.plateau}")
        if self.jitter < 0:
            raise ValueError(f"jitter must be at least 0, got {self.jitter}")
        for name in set(LOADER_OPTIONS) - set(self.loader_options()):
            if getattr(self, name) is not None:
                raise ValueError(
                    f"{name} is for the {M.taking(name)} modality; {self.modality} has none"
                )

    def loader_options(self) -> dict[str, Any]:
        """The options this config hands its modality's loader."""
        taken = M.get(self.modality).options
        return {name: getattr(self, name) for name in LOADER_OPTIONS if name in taken}

    def num_perms(self) -> int:
        """P: the fixed set's size, capped at K!."""
        return min(self.perm_set_size, math.factorial(self.num_patches))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PretrainConfig:
        """The config stored in a checkpoint or ``config.json`` (unknown keys are ignored)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def build_model(cfg: PretrainConfig) -> PermutationModel:
    """A freshly initialized model for ``cfg`` (seed it first for reproducible weights)."""
    modality = M.get(cfg.modality)
    return PermutationModel(
        cfg.method,
        cfg.patches,
        cfg.num_patches,
        cfg.num_perms(),
        cfg.dim,
        modality.num_classes,
        cfg.jitter,
        modality.coords,
    )


def load_pretrained(path: str | Path) -> tuple[PermutationModel, PretrainConfig, dict[str, Any]]:
    """Rebuild the model of a checkpoint: ``(model in eval mode, config, checkpoint)``."""
    ckpt = load_checkpoint(path)
    cfg = PretrainConfig.from_dict(ckpt["config"])
    model = build_model(cfg)
    model.load_state_dict(ckpt["model"])
    return model.eval(), cfg, ckpt
