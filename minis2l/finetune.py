"""Fine-tuning: train the encoder and a linear head together on a few labels.

A linear probe (:mod:`minis2l.probe`) asks what a frozen encoder already knows; fine-tuning
asks how good a *starting point* it is when a few labels may change it. The clip embedding is
the one the probes use (:meth:`minis2l.models.PermutationModel.embed`: the K patches in their
natural order, encoded and concatenated), followed by a linear layer over the task's classes.
Every initialization gets the same budget: ``steps`` AdamW steps of ``batch_size`` clips with a
cosine learning-rate decay. The model is scored on valid every ``eval_every`` steps; the state
with the best valid accuracy (the stopping point, chosen on valid) is scored once on test.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from sklearn.metrics import accuracy_score, f1_score
from torch import nn

from minis2l import patches as P
from minis2l.models import PermutationModel


@dataclass(frozen=True)
class FinetuneConfig:
    """The fine-tuning budget, the same for every initialization."""

    steps: int = 300
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    eval_every: int = 50
    max_valid: int = 1000  # score on at most this many valid clips (a fixed random subset)

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "eval_every", "max_valid"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")


class Classifier(nn.Module):
    """A :class:`PermutationModel`'s encoder, its clip embedding, and a linear head."""

    def __init__(self, model: PermutationModel, num_classes: int):
        super().__init__()
        self.encoder = model.encoder
        self.num_patches, self.kind, self.jitter = model.num_patches, model.kind, model.jitter
        self.head = nn.Linear(model.num_patches * model.encoder.dim, num_classes)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, classes)`` for inputs ``(B, H, W)`` (log-mels, images, film strips)."""
        pieces = P.cut_pieces(inputs, self.num_patches, self.kind, self.jitter)
        return self.head(self.encoder.encode_pieces(pieces).flatten(1))


@torch.no_grad()
def _predict(net: Classifier, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    net.eval()
    out = [
        net(torch.as_tensor(np.array(x[lo : lo + batch_size], dtype=np.float32))).argmax(-1)
        for lo in range(0, len(x), batch_size)
    ]
    net.train()
    return torch.cat(out).numpy() if out else np.zeros(0, np.int64)


def finetune(
    model: PermutationModel,
    train: tuple[np.ndarray, np.ndarray],
    valid: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    cfg: FinetuneConfig = FinetuneConfig(),
    *,
    seed: int = 0,
) -> dict[str, Any]:
    """Fine-tune a copy of ``model``'s encoder with a new linear head; score on test.

    Each argument is ``(log-mels (N, F, T), labels (N,))``. ``model`` itself is not changed.
    Returns ``{"accuracy", "macro_f1", "valid_accuracy", "best_step"}``: test metrics of the
    state with the best valid accuracy, that accuracy, and the step it was reached at.
    Classes absent from the train labels can never be predicted.
    """
    x_tr, y_tr = train
    if len(x_tr) == 0:
        raise ValueError("fine-tuning needs at least one training clip")
    classes = np.unique(y_tr)
    to_index = {c: i for i, c in enumerate(classes)}
    y_idx = torch.as_tensor([to_index[c] for c in y_tr])
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    net = Classifier(copy.deepcopy(model).cpu(), len(classes))
    net.train()
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    rng = np.random.default_rng(seed)
    v_idx = np.sort(rng.permutation(len(valid[1]))[: cfg.max_valid])
    x_va, y_va = valid[0][v_idx], valid[1][v_idx]
    best = (-1.0, 0, copy.deepcopy(net.state_dict()))
    x_train = torch.as_tensor(np.array(x_tr, dtype=np.float32))
    for step in range(1, cfg.steps + 1):
        batch = torch.randint(len(x_train), (min(cfg.batch_size, len(x_train)),), generator=gen)
        for group in opt.param_groups:
            group["lr"] = cfg.lr * 0.5 * (1 + math.cos(math.pi * (step - 1) / cfg.steps))
        loss = nn.functional.cross_entropy(net(x_train[batch]), y_idx[batch])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % cfg.eval_every == 0 or step == cfg.steps:
            score = accuracy_score(y_va, classes[_predict(net, x_va)]) if len(y_va) else 0.0
            if score > best[0]:
                best = (float(score), step, copy.deepcopy(net.state_dict()))
    net.load_state_dict(best[2])
    pred = classes[_predict(net, test[0])]
    return {
        "accuracy": float(accuracy_score(test[1], pred)),
        "macro_f1": float(f1_score(test[1], pred, average="macro", zero_division=0)),
        "valid_accuracy": best[0],
        "best_step": best[1],
    }


__all__ = ["Classifier", "FinetuneConfig", "finetune"]
