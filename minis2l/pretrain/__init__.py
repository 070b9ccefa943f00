"""Permutation pretext pretraining (``python -m minis2l pretrain``).

The pretext task itself (shuffles, loss, held-out metrics) is :mod:`minis2l.pretext`; this
package trains a model on it, one stage per module:

* :mod:`~minis2l.pretrain.config` - :class:`PretrainConfig`, :func:`build_model`,
  :func:`load_pretrained`;
* :mod:`~minis2l.pretrain.loop` - :func:`pretrain`: the data, the training loop, the
  learning-rate schedule, checkpoints and exact resume (``--resume``);
* :mod:`~minis2l.pretrain.distributed` - several processes under ``torchrun
  --nproc_per_node=N -m minis2l pretrain`` (DistributedDataParallel, gloo on CPU, nccl on
  CUDA), which see the same global batches as one process;
* :mod:`~minis2l.pretrain.cli` - the command line.

Files in ``--out DIR``: ``checkpoint.pt`` (every epoch, atomically; ``torch.load(...,
weights_only=True)``), ``metrics.csv`` and ``config.json``. The pretext's functions are
importable from here too (``from minis2l.pretrain import pretext_loss``), as the notebooks do.
"""

from minis2l.pretext import (
    epoch_offsets,
    epoch_shuffles,
    evaluate,
    predicted_ranks,
    pretext_loss,
    spearman,
)
from minis2l.pretrain.cli import add_arguments, config_from_args, run
from minis2l.pretrain.config import PretrainConfig, build_model, load_pretrained
from minis2l.pretrain.loop import METRIC_FIELDS, levelled_off, load_features, lr_at, pretrain

__all__ = [
    "METRIC_FIELDS",
    "PretrainConfig",
    "add_arguments",
    "build_model",
    "config_from_args",
    "epoch_offsets",
    "epoch_shuffles",
    "evaluate",
    "levelled_off",
    "load_features",
    "load_pretrained",
    "lr_at",
    "predicted_ranks",
    "pretext_loss",
    "pretrain",
    "run",
    "spearman",
]
