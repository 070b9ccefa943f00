"""minis2l: mini shuffle-to-learn.

Self-supervised representations learned by putting shuffled pieces back in order, with a
differentiable ranking operator, as a notebook course and a small library. Audio (log-mels of
musical notes), images and video clips all go the same way. The package, stage by stage (data
flows down the list; the shared helpers come last):

* the ranking core: :func:`soft_rank`, :func:`soft_sort` (torchsort's conventions, an exact
  O(n) backward), :func:`hard_rank`, :func:`soft_spearman` / :func:`spearman_loss`;
  :mod:`minis2l.isotonic`, Pool Adjacent Violators written to be read;
* the data: :mod:`minis2l.data` (notes rendered offline from General MIDI SoundFonts, log-mels,
  instrument-disjoint splits) and :mod:`minis2l.vision` (Fashion-MNIST images, moving-image
  clips as film strips); :mod:`minis2l.items` (what every modality hands on: ``(N, H, W)``
  inputs with labels per split) and :mod:`minis2l.modality` (the three modalities side by side,
  the only place that tells them apart);
* :mod:`minis2l.patches`: cutting inputs into K pieces (:func:`~minis2l.patches.cut_pieces`),
  permutations, the fixed jigsaw set;
* :mod:`minis2l.models`: the patch encoder and the rank, jigsaw and supervised heads;
* :mod:`minis2l.pretext` (the shuffle-and-rank task itself) and :mod:`minis2l.pretrain` (the
  training loop, several GPUs, checkpoints; ``python -m minis2l pretrain``);
* :mod:`minis2l.probe` (linear probes on frozen encoders) and :mod:`minis2l.finetune`;
* :mod:`minis2l.study`: every method over seeds, label fractions and patch types, the report
  and plots (``python -m minis2l demo``);
* :mod:`minis2l.widgets`: the notebooks' explorers and puzzles;
* :mod:`minis2l.assignments`: nbgrader releases and the student edition of the notebooks;
* :mod:`minis2l.config` (fast mode, devices, the repository root), :mod:`minis2l.io` (atomic
  writes) and :mod:`minis2l.cli` (``python -m minis2l --help`` lists the commands).
"""

from minis2l.config import fast_mode
from minis2l.ranking import hard_rank, soft_rank, soft_sort, soft_spearman, spearman_loss

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "fast_mode",
    "hard_rank",
    "soft_rank",
    "soft_sort",
    "soft_spearman",
    "spearman_loss",
]
