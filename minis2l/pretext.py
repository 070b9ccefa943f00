"""The pretext task: shuffle an item's K pieces and ask the model where each one belongs.

Each item (a note's log-mel, an image, a clip's film strip) is cut into K pieces (with
``jitter``, each piece loses a random margin: gaps between tiles) and shuffled:

* ``"rank"``: the permutation is drawn uniformly from all K!; the model scores each piece and
  the loss is the squared error between ``soft_rank(scores)`` and the true ranks, divided by
  K^2 (ranks scaled to [0, 1]);
* ``"jigsaw"``: the permutation is one of a fixed set of P (spread out in Hamming distance);
  the model classifies which one (cross-entropy);
* ``"supervised"``: the reference; nothing is shuffled and the model classifies the item.

Held-out metrics (:func:`evaluate`, the same shuffles every epoch): the loss on the method's own
task, then **the same puzzles for every method**: shuffles drawn from all K! (a function of the
seed only, so rank and jigsaw of one seed see the very same ones), scored by exact reorder
(every piece put back in place; chance 1/K!), per-position accuracy (pieces in place; chance
1/K) and the Spearman correlation between predicted and true positions (chance 0). Jigsaw
answers with the member of its set that it predicts, so on all K! its exact reorder is at most
the share of held-out shuffles that lie in its set (about P/K!). Jigsaw is also scored on
shuffles from its own set (``own_*``: exact chance 1/P), a separate number that is not
comparable with rank's.

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


#: The metrics :func:`evaluate` reports for every puzzle set (all K!, and jigsaw's own set).
PUZZLE_METRICS = ("exact", "per_position", "spearman")


def _score_puzzles(
    model: torch.nn.Module,
    cfg: PretrainConfig,
    x: torch.Tensor,
    perms: torch.Tensor,
    perm_set: torch.Tensor | None,
    device: torch.device,
    batch_size: int,
) -> dict[str, float]:
    """Mean exact reorder, per-position accuracy and Spearman of ``model`` on ``x`` shuffled
    with ``perms`` (B, K), whatever set the permutations come from."""
    total = dict.fromkeys(PUZZLE_METRICS, 0.0)
    for lo in range(0, len(x), batch_size):
        xb = x[lo : lo + batch_size].to(device)
        pb = perms[lo : lo + batch_size].to(device)
        pieces = P.cut_pieces(xb, cfg.num_patches, cfg.patches, cfg.jitter, perm=pb)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=xb.is_cuda):
            out = model(pieces).float()
        pred = predicted_ranks(cfg, out, perm_set)
        true = P.target_ranks(pb, pred.dtype)
        total["exact"] += (pred == true).all(-1).float().sum().item()
        total["per_position"] += (pred == true).float().mean(-1).sum().item()
        total["spearman"] += spearman(pred, true).sum().item()
    return {k: v / max(len(x), 1) for k, v in total.items()}


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
    """Held-out metrics on fixed shuffles (the module doc says which).

    Returns ``loss`` (on the method's own task: all K! for rank, its set for jigsaw),
    ``exact``, ``per_position`` and ``spearman`` on shuffles from all K! (the same for rank and
    jigsaw of one seed), ``own_exact``, ``own_per_position`` and ``own_spearman`` on shuffles
    from jigsaw's own set (NaN for rank), and ``accuracy``: the supervised task's accuracy for
    ``"supervised"`` (``labels`` holds that task's labels of ``x``; the puzzle metrics are then
    NaN), NaN for the pretext methods.
    """
    supervised = cfg.method == "supervised"
    if supervised and labels is None:
        raise ValueError("evaluate needs the labels of x to score the supervised method")
    nan = float("nan")
    result = {"loss": 0.0, "accuracy": nan}
    result |= {k: nan for k in PUZZLE_METRICS} | {f"own_{k}": nan for k in PUZZLE_METRICS}
    model.eval()
    perms, targets = epoch_shuffles(cfg, len(x), -1, perm_set)  # the method's own task
    if supervised:
        targets, correct = labels, 0.0
    for lo in range(0, len(x), batch_size):
        xb = x[lo : lo + batch_size].to(device)
        pb, tb = perms[lo : lo + batch_size].to(device), targets[lo : lo + batch_size].to(device)
        loss, out = pretext_loss(model, cfg, xb, pb, tb)
        result["loss"] += loss.item() * len(xb) / max(len(x), 1)
        if supervised:
            correct += (out.argmax(-1) == tb).float().sum().item()
    if supervised:
        result["accuracy"] = correct / max(len(x), 1)
    else:
        all_perms, _ = epoch_shuffles(cfg, len(x), -1, None)  # from all K!: the same for both
        result |= _score_puzzles(model, cfg, x, all_perms, perm_set, device, batch_size)
        if perm_set is not None:
            own = _score_puzzles(model, cfg, x, perms, perm_set, device, batch_size)
            result |= {f"own_{k}": v for k, v in own.items()}
    model.train()
    return result
