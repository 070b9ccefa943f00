"""The encoder and the two pretext heads.

* :class:`PatchEncoder` - a small conv net that maps one log-mel patch ``(h, w)`` of any size to
  an embedding of ``dim`` numbers (three conv blocks, then global average pooling). It has no
  batch statistics (GroupNorm), so results do not depend on how a batch is split across
  processes.
* :class:`PermutationModel` - the encoder applied to each of the K shuffled patches, a
  transformer layer that lets the patches see each other (no positional encoding: the order of
  the shuffled patches carries no information), and one of two linear heads:

  - ``"rank"``: one score per patch; trained with ``soft_rank(scores)`` against the true ranks,
    so every one of the K! permutations is a training target. Its linear layer has no bias:
    the soft rank ignores a shift common to all K scores, so a bias would get no gradient
    beyond rounding noise, which Adam would then amplify into drift;
  - ``"jigsaw"``: the K patch vectors concatenated, then P logits: which of a fixed set of P
    permutations was applied (Noroozi & Favaro, 2016).

  Both share the encoder and the context layer, so they cost the same except for the last
  linear layer. A third head, ``"supervised"``, classifies the clip embedding below into the
  instrument families: the upper-bound reference, trained on labels with the same encoder.
* The **clip embedding** used by downstream probes (:meth:`PermutationModel.embed`): the clip is
  cut into the same K patches *in their natural order* (centre crops when the model was trained
  with ``jitter``), each is encoded, and the K embeddings are concatenated (``K * dim``
  numbers). Concatenating, rather than averaging, keeps where in
  time or frequency each patch sits, which pitch needs.
"""

from __future__ import annotations

import torch
from torch import nn

from minis2l import patches as P

METHODS = ("rank", "jigsaw", "supervised")


class PatchEncoder(nn.Module):
    """Conv net: ``(N, h, w)`` patches -> ``(N, dim)`` embeddings.

    Global average pooling makes the embedding blind to *where* in the patch something is.
    ``coords=True`` adds two input channels holding each pixel's row and column (in [-1, 1],
    as CoordConv does; Liu et al., 2018), so the embedding can say where an object sits: what
    a video frame's place in time depends on.
    """

    def __init__(self, dim: int = 128, width: int = 16, coords: bool = False):
        super().__init__()
        layers: list[nn.Module] = []
        self.coords = coords
        channels = [3 if coords else 1, width, 2 * width, 4 * width]
        for i in range(3):
            layers += [
                nn.Conv2d(channels[i], channels[i + 1], 3, padding=1),
                nn.GroupNorm(8, channels[i + 1]),
                nn.ReLU(),
            ]
            if i < 2:
                layers.append(nn.MaxPool2d(2, ceil_mode=True))
        self.conv = nn.Sequential(*layers)
        self.proj = nn.Linear(channels[-1], dim)
        self.dim = dim

    def features(self, patches: torch.Tensor) -> torch.Tensor:
        """``(N, h, w)`` -> ``(N, 4 * width)``: the conv stack's channels averaged over each
        patch (with the coordinate channels when ``coords``), before the projection."""
        x = patches.unsqueeze(1)
        if self.coords:
            n, _, h, w = x.shape
            rows = torch.linspace(-1, 1, h, device=x.device, dtype=x.dtype)
            cols = torch.linspace(-1, 1, w, device=x.device, dtype=x.dtype)
            grid = torch.stack(torch.meshgrid(rows, cols, indexing="ij")).expand(n, 2, h, w)
            x = torch.cat([x, grid], dim=1)
        return self.conv(x).mean(dim=(-2, -1))

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        return self.proj(self.features(patches))

    def encode_pieces(self, pieces: torch.Tensor) -> torch.Tensor:
        """``(B, K, h, w)`` -> ``(B, K, dim)``: each of the K pieces encoded on its own."""
        b, k = pieces.shape[:2]
        return self(pieces.reshape(b * k, *pieces.shape[2:])).reshape(b, k, -1)


class PermutationModel(nn.Module):
    """Encoder + context layer + a ``"rank"`` or ``"jigsaw"`` head (see the module doc).

    ``method="supervised"`` builds the supervised reference instead: the same encoder, the
    clip embedding of :meth:`embed` (patches in their natural order), and a linear classifier
    over ``num_classes`` labels; no context layer, no shuffling.

    Args:
        method: ``"rank"``, ``"jigsaw"`` or ``"supervised"``.
        kind: patch type, ``"time"``, ``"freq"`` or ``"2d"``.
        num_patches: K.
        num_perms: P, the size of the fixed permutation set (jigsaw only).
        dim: patch embedding size.
        num_classes: classes of the supervised head (supervised only).
        jitter: pixels cropped off each patch's height and width (at random in training, see
            :func:`minis2l.patches.crop_patches`; centred in :meth:`embed`). 0 for audio.
        coords: give the encoder each pixel's coordinates (see :class:`PatchEncoder`).
    """

    def __init__(
        self,
        method: str,
        kind: str,
        num_patches: int,
        num_perms: int = 0,
        dim: int = 128,
        num_classes: int = 0,
        jitter: int = 0,
        coords: bool = False,
    ):
        super().__init__()
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        P.grid_shape(num_patches, kind)  # validates kind and K
        if method == "jigsaw" and num_perms < 2:
            raise ValueError(f"the jigsaw head needs at least 2 permutations, got {num_perms}")
        if method == "supervised" and num_classes < 2:
            raise ValueError(f"the supervised head needs at least 2 classes, got {num_classes}")
        self.method, self.kind, self.num_patches = method, kind, num_patches
        self.jitter = jitter
        self.encoder = PatchEncoder(dim, coords=coords)
        self.context = None
        if method != "supervised":
            self.context = nn.TransformerEncoderLayer(
                dim, nhead=4, dim_feedforward=2 * dim, dropout=0.0, batch_first=True
            )
        if method == "rank":
            self.head = nn.Linear(dim, 1, bias=False)  # a common shift leaves ranks unchanged
        else:
            out = num_perms if method == "jigsaw" else num_classes
            self.head = nn.Linear(num_patches * dim, out)

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args, **kwargs) -> None:
        """Load weights; a rank head's bias from an older checkpoint is dropped, which changes
        every score of an item by the same amount and so leaves every rank as it was."""
        if self.method == "rank":
            state_dict.pop(prefix + "head.bias", None)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def encode_patches(self, patches: torch.Tensor) -> torch.Tensor:
        """``(B, K, h, w)`` -> ``(B, K, dim)``."""
        return self.encoder.encode_pieces(patches)

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        """Scores ``(B, K)`` (rank), logits ``(B, P)`` (jigsaw) or ``(B, classes)``
        (supervised) for patches ``(B, K, h, w)`` (shuffled, except for supervised)."""
        h = self.encode_patches(patches)
        if self.context is None:
            return self.head(h.flatten(1))
        h = self.context(h)
        if self.method == "rank":
            return self.head(h).squeeze(-1)
        return self.head(h.flatten(1))

    def pieces(self, inputs: torch.Tensor) -> torch.Tensor:
        """The K patches ``(B, K, h, w)`` of unshuffled inputs ``(B, H, W)`` in natural order,
        centre-cropped by ``jitter``: what the encoder sees at evaluation."""
        return P.cut_pieces(inputs, self.num_patches, self.kind, self.jitter)

    @torch.no_grad()
    def embed(self, inputs: torch.Tensor) -> torch.Tensor:
        """Clip embeddings ``(B, K * dim)`` of unshuffled inputs ``(B, H, W)``."""
        return self.encode_patches(self.pieces(inputs)).flatten(1)
