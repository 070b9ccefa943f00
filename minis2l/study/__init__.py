"""The study (``python -m minis2l demo``): which encoder gives the best representation?

For each seed, four encoders with the same architecture and training budget, on one modality
(``--modality``; :mod:`minis2l.modality`):

* ``random``: untrained (the seed's initialization);
* ``jigsaw``: pretrained to classify a fixed set of P = 100 permutations;
* ``rank``: pretrained with the soft-rank loss on all K! permutations;
* ``supervised``: trained on the first task's labels: a reference, not a competitor.

Each is evaluated in several **regimes**: frozen, with linear probes (:mod:`minis2l.probe`) on
1 %, 10 % and 100 % of the train labels (class-stratified subsets; at 1 % the mean over
several subsets), and fine-tuned with a linear head (:mod:`minis2l.finetune`) on the label
fractions of ``finetune_fractions`` (none in the image and video scales), with the same
budget from each initialization and the stopping step chosen on valid. Tasks are the
modality's labels, the supervised one first. A linear probe on the input itself
(average-pooled, no encoder: the modality's baseline) is reported in the probe regimes.

Then: mean ± std over seeds; for rank - jigsaw and rank - random the paired difference per
seed, its mean and 95 % t-interval; a **sensitivity** line (supervised - random on the first
task with 10 % of the labels: if even labels do not move the probe, the study cannot tell
representations apart, and it draws no verdicts); the pretext curves on valid. With ablations
(modalities with several patch types to compare), seed 0 also trains rank (and takes a random
encoder) on the other patch types, and valid-only probes compare layers (conv features, patch
embeddings, the context layer) and patch-type combinations.

One stage per module: :mod:`~minis2l.study.config` (:class:`StudyConfig`, scales, the
pretraining each encoder gets), :mod:`~minis2l.study.encoders` (train and evaluate one
encoder), :mod:`~minis2l.study.runner` (the jobs, with claims and resume),
:mod:`~minis2l.study.stats` (summaries and paired differences), :mod:`~minis2l.study.assemble`
(the results), :mod:`~minis2l.study.report` (Markdown and verdicts),
:mod:`~minis2l.study.plots`, :mod:`~minis2l.study.pipeline` (:func:`run_study`) and
:mod:`~minis2l.study.cli`.

Outputs in ``out``: ``results.json``, ``results.md`` and PNG plots. Schema::

    {"config": {..., "modality", "command", "code_version", "seconds", and the loader's
                metadata: audio "data", "soundfonts": [{"name", "sha256"}], "notes"; images
                and video "data", "source", "files", "counts"},
     "methods": {method: {task: {"accuracy": S, "macro_f1": S}}},          # probe, 100 %
     "regimes": {"probe": {"0.01"|"0.1"|"1.0": R}, "finetune": {"0.01"|"0.1": R}},
     "sensitivity": {"<first task>_probe_0.1": float},
     "paired": {"rank-jigsaw"|"rank-random": {"probe_0.1"|...: {task: {"mean", "ci95"}}}},
     "ablations": {"label_fraction": {fraction: R}, "patches": {kind: R}},
     "baselines": {"<baseline>": {task: {...}}},
     "pretext": {"rank"|"jigsaw": {"all_perms": {"exact", "per_position", "spearman": S}},
                 # jigsaw also "own_set": {...}: on shuffles from its own set of P
                },
     "curves": {method: [[{epoch metrics}, ...] per seed]},
     "pitch_investigation": {...valid accuracies of layers and patch types...}}

where ``S = {"mean", "std", "runs"}`` and ``R = {method: {task: {"accuracy": S, ...}}}``.
"""

from minis2l.config import REPO_ROOT  # kept for notebooks that import it from here
from minis2l.study.assemble import assemble
from minis2l.study.cli import add_arguments, config_from_args, run
from minis2l.study.config import (
    ABLATION_METHODS,
    METHODS,
    PAIRS,
    PROBE_FRACTIONS,
    SCALES,
    StudyConfig,
)
from minis2l.study.pipeline import code_version, run_study
from minis2l.study.plots import plot_results
from minis2l.study.report import (
    SENSITIVITY_POINTS,
    baseline_of,
    modality_of,
    results_markdown,
    tasks_of,
    verdicts,
)
from minis2l.study.stats import paired_difference

__all__ = [
    "ABLATION_METHODS",
    "METHODS",
    "PAIRS",
    "PROBE_FRACTIONS",
    "REPO_ROOT",
    "SCALES",
    "SENSITIVITY_POINTS",
    "StudyConfig",
    "add_arguments",
    "assemble",
    "baseline_of",
    "code_version",
    "config_from_args",
    "modality_of",
    "paired_difference",
    "plot_results",
    "results_markdown",
    "run",
    "run_study",
    "tasks_of",
    "verdicts",
]
