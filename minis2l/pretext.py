"""The pretext task: shuffle an item's K pieces and ask the model where each one belongs.

Each item (a note's log-mel, an image, a clip's film strip) is cut into K pieces (with
``jitter``, each piece loses a random margin: gaps between tiles) and shuffled:

* ``"rank"``: the permutation is drawn uniformly from all K!; the model scores each piece and
  the loss is the squared error between ``soft_rank(scores)`` and the true ranks, divided by
  K^2 (ranks scaled to [0, 1]);
* ``"jigsaw"``: the permutation is one of a fixed set of P (spread out in Hamming distance);
  the model classifies which one (cross-entropy);
* ``"supervised"``: the reference; nothing is shuffled and the model classifies the item.

Held-out metrics (:func:`evaluate`, the same shuffles every epoch): the loss, exact-reorder
accuracy (every piece put back in place; chance is 1/K! for rank, 1/P for jigsaw) and the
Spearman correlation between predicted and true positions.

All randomness of epoch ``e`` comes from generators seeded with ``(seed, e)``
(:func:`epoch_shuffles`, :func:`epoch_offsets`), so every process of a distributed run and
every resumed run draws the same shuffles. The settings come from a
:class:`~minis2l.pretrain.PretrainConfig` (``method``, ``patches``, ``num_patches``,
``jitter``, ``seed``, ``regularization``, ``regularization_strength``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from minis2l import patches as P
from minis2l.ranking import hard_rank, soft_rank

if TYPE_CHECKING:
    from minis2l.pretrain import PretrainConfig


def epoch_shuffles(
    cfg: PretrainConfig, n: int, epoch: int, perm_set: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The permutation of each of ``n`` items in ``epoch`` and its jigsaw label (or -1).

    A function of (seed, epoch) only, so every process and every resumed run agrees.
    Epoch -1 is reserved for the fixed held-out shuffles. The supervised reference does not
    shuffle: identity permutations.
    """
    if cfg.method == "supervised":
        return torch.arange(cfg.num_patches).expand(n, -1).clone(), torch.full((n,), -1)
    gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch + 1)
    if perm_set is None:
        perms = P.random_permutations(n, cfg.num_patches, generator=gen)
        return perms, torch.full((n,), -1)
    labels = torch.randint(len(perm_set), (n,), generator=gen)
    return perm_set[labels], labels


def epoch_offsets(cfg: PretrainConfig, n: int, epoch: int) -> torch.Tensor | None:
    """Where each piece's crop starts, ``(n, K, 2)`` in ``[0, jitter]``, for ``epoch``; None
    without jitter. A function of (seed, epoch) only, like :func:`epoch_shuffles`."""
    if cfg.jitter == 0:
        return None
    gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch + 500_009)
    return torch.randint(cfg.jitter + 1, (n, cfg.num_patches, 2), generator=gen)


def pretext_loss(
    model: torch.nn.Module,
    cfg: PretrainConfig,
    x: torch.Tensor,
    perms: torch.Tensor,
    labels: torch.Tensor,
    offsets: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, output) for inputs ``x`` (B, H, W) shuffled with ``perms`` (B, K).

    ``labels``: the jigsaw class of each permutation, or the class for ``"supervised"``.
    ``offsets`` (B, K, 2): where each shuffled piece's jitter crop starts (None: centred).
    """
    perm = None if cfg.method == "supervised" else perms
    shuffled = P.cut_pieces(x, cfg.num_patches, cfg.patches, cfg.jitter, perm=perm, offsets=offsets)
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=x.is_cuda):
        out = model(shuffled)
    out = out.float()
    if cfg.method == "rank":
        ranks = soft_rank(out, cfg.regularization, cfg.regularization_strength)
        target = P.target_ranks(perms, out.dtype)
        loss = ((ranks - target) / cfg.num_patches).square().mean()
    else:
        loss = F.cross_entropy(out, labels)
    return loss, out


def predicted_ranks(
    cfg: PretrainConfig, out: torch.Tensor, perm_set: torch.Tensor | None
) -> torch.Tensor:
    """Hard predicted ranks (B, K) from scores (rank) or logits (jigsaw)."""
    if cfg.method == "rank":
        return hard_rank(out)
    return P.target_ranks(perm_set.to(out.device)[out.argmax(-1)], out.dtype)


def spearman(pred_ranks: torch.Tensor, true_ranks: torch.Tensor) -> torch.Tensor:
    """Spearman correlation of two rank matrices (B, K) without ties, per row."""
    k = pred_ranks.shape[-1]
    d2 = (pred_ranks - true_ranks).square().sum(-1)
    return 1 - 6 * d2 / (k * (k * k - 1))


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    cfg: PretrainConfig,
    x: torch.Tensor,
    perm_set: torch.Tensor | None,
    device: torch.device,
    batch_size: int = 256,
    labels: torch.Tensor | None = None,
) -> dict[str, float]:
    """Held-out loss, exact-reorder accuracy and Spearman correlation on fixed shuffles.

    For ``"supervised"`` the last two are NaN and ``accuracy`` is the supervised task's
    accuracy (``labels`` holds that task's labels of ``x``); for the pretext methods
    ``accuracy`` is NaN.
    """
    supervised = cfg.method == "supervised"
    if supervised and labels is None:
        raise ValueError("evaluate needs the labels of x to score the supervised method")
    model.eval()
    perms, targets = epoch_shuffles(cfg, len(x), -1, perm_set)
    if supervised:
        targets = labels
    total = {"loss": 0.0, "exact": 0.0, "spearman": 0.0, "accuracy": 0.0}
    for lo in range(0, len(x), batch_size):
        xb = x[lo : lo + batch_size].to(device)
        pb, tb = perms[lo : lo + batch_size].to(device), targets[lo : lo + batch_size].to(device)
        loss, out = pretext_loss(model, cfg, xb, pb, tb)
        total["loss"] += loss.item() * len(xb)
        if supervised:
            total["accuracy"] += (out.argmax(-1) == tb).float().sum().item()
            continue
        pred = predicted_ranks(cfg, out, perm_set)
        true = P.target_ranks(pb, pred.dtype)
        total["exact"] += (pred == true).all(-1).float().sum().item()
        total["spearman"] += spearman(pred, true).sum().item()
    model.train()
    result = {k: v / max(len(x), 1) for k, v in total.items()}
    nan = float("nan")
    if supervised:
        result["exact"] = result["spearman"] = nan
    else:
        result["accuracy"] = nan
    return result
