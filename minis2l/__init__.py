"""minis2l: mini shuffle-to-learn.

Self-supervised audio representations from permutations with differentiable ranking, as a
notebook course and a small library. The public entry points:

* :func:`soft_rank`, :func:`soft_sort` - differentiable ranking and sorting (torchsort's
  conventions), with an exact O(n) backward;
* :func:`soft_spearman`, :func:`spearman_loss` - a rank-correlation loss built on them;
* :mod:`minis2l.isotonic` - isotonic regression by Pool Adjacent Violators, written to be read.

``python -m minis2l --help`` lists the command line.
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
