"""Rank against jigsaw as the permutation space grows (``python -m minis2l permutations``,
``make study-permutations``, the committed ``results/permutations/``).

The study of :mod:`minis2l.study` compares the encoders at one K. This sweep asks how the
answer changes with K, the size of the space the rank head learns from (K!), while jigsaw
keeps a fixed set of P: frequency patches at every K of ``num_patches``, rank and jigsaw
(P = ``perm_set_size``) at each, jigsaw with each of ``set_sizes`` at K = ``set_sizes_at``,
and the random and supervised references at ``reference_patches`` (their encoders see K
patches too). Probes only (no fine-tuning, no ablations), on ``probe_fractions`` of the labels,
over ``seeds`` seeds; paired differences rank - jigsaw and rank - random with 95 % intervals.

Every (K, P) point is a small study run with the study's own job runner
(:func:`minis2l.study.runner.run_jobs`: claims, several workers, resume), its jobs in
``out/runs/K<k>-P<p>/``, so a killed sweep resumes from its finished encoders.

``results.json``::

    {"config": {SweepConfig fields, "command", "code_version", "seconds", the data's metadata},
     "sensitivity": {"<first task>_probe_<f>": {"<K>": supervised - random}},
     "points": [{"num_patches", "perm_set_size" (jigsaw's P, capped at K!; null otherwise),
                 "method", "pretext": {"all_perms": {...}, "own_set": {...}} (rank, jigsaw),
                 "probe": {"0.1"|"1.0": {task: {"accuracy": S}}}}],
     "paired": [{"num_patches", "perm_set_size", "pair": "rank-jigsaw"|"rank-random",
                 "regime": "probe_0.1"|"probe_1.0", "task", "mean", "ci95": [low, high]}]}

with ``S = {"mean", "std", "runs"}``.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from minis2l import __version__
from minis2l import modality as M
from minis2l import patches as P
from minis2l.config import fast_mode
from minis2l.io import atomic_write, save_json
from minis2l.pretrain.config import PLATEAU_HELP
from minis2l.study.assemble import pretext_summary
from minis2l.study.config import StudyConfig
from minis2l.study.pipeline import record_run
from minis2l.study.runner import load_data, run_jobs
from minis2l.study.stats import paired_difference, summary

#: The sweep's scales. ``default`` is what ``make study-permutations`` runs (the whole pool,
#: about 2 hours on 2 cores); ``fast`` is a smoke test of the whole pipeline (a minute or two).
#: The default's budget, estimated: 14 trained encoders per seed (rank and jigsaw at 5 K,
#: jigsaw at 2 more set sizes, supervised at 2 K) x 3 seeds = 42, each 4 epochs of the
#: 20 641 pool notes (35 s per epoch for the training steps alone on one thread, measured at
#: K = 4 to 16, P up to 1 000: the cost does not grow with K; 70-86 s per epoch with validation
#: in the full study's run on a shared machine) plus about 30 s of embedding and probes: 42 x
#: 170-370 s on 2 workers, 60-130 min, plus idle workers at points with 3 jobs.
SWEEP_SCALES: dict[str, dict[str, Any]] = {
    "fast": {
        "num_patches": [3, 4],
        "set_sizes_at": 4,
        "set_sizes": [5, 100],
        "reference_patches": [3, 4],
        "seeds": 2,
        "epochs": 1,
        "soundfonts": "default",
        "pitch_step": 4,
        "fast": True,
    },
    "default": {},
}


#: The order of the methods in the results.
ORDER = ("rank", "jigsaw", "random", "supervised")
#: The methods with a pretext task, scored on held-out puzzles.
PRETEXTS = ("rank", "jigsaw")


@dataclass
class SweepConfig:
    """Everything that defines a permutation sweep (stored under ``config`` in its results).

    ``reference_patches``: the K at which random and supervised run (None: every K).
    ``set_sizes``: jigsaw's fixed-set sizes at K = ``set_sizes_at`` (``perm_set_size`` runs at
    every K). The other fields mean what they mean in :class:`~minis2l.study.StudyConfig`.
    """

    scale: str = "default"
    modality: str = M.DEFAULT
    patches: str = "freq"
    num_patches: list[int] = field(default_factory=lambda: [4, 6, 9, 12, 16])
    perm_set_size: int = 100
    set_sizes_at: int = 9
    set_sizes: list[int] = field(default_factory=lambda: [10, 100, 1000])
    reference_patches: list[int] | None = field(default_factory=lambda: [4, 16])
    probe_fractions: list[float] = field(default_factory=lambda: [0.1, 1.0])
    seeds: int = 3
    epochs: int = 4
    soundfonts: str | list[str] = "pool"
    pitch_step: int = 2
    batch_size: int = 64
    lr: float = 2e-3
    fast: bool = False
    device: str = "auto"
    plateau: float | None = None

    def __post_init__(self) -> None:
        self.num_patches = sorted(int(k) for k in self.num_patches)
        for k in self.num_patches:
            P.grid_shape(k, self.patches)  # a valid K for this patch kind
        if self.set_sizes_at not in self.num_patches:
            raise ValueError(
                f"set_sizes_at ({self.set_sizes_at}) must be one of num_patches {self.num_patches}"
            )
        refs = self.num_patches if self.reference_patches is None else self.reference_patches
        if not set(refs) <= set(self.num_patches):
            raise ValueError(f"reference_patches {refs} must be among num_patches")
        sizes = [self.capped(self.set_sizes_at, p) for p in self.extra_sizes()]
        sizes.append(self.capped(self.set_sizes_at, self.perm_set_size))
        if len(set(sizes)) != len(sizes) or min(sizes) < 2:
            raise ValueError(
                f"set_sizes at K = {self.set_sizes_at} must be distinct sets of P >= 2"
            )
        if self.seeds < 1 or self.epochs < 1:
            raise ValueError(
                f"seeds and epochs must be at least 1, got {self.seeds}, {self.epochs}"
            )

    @classmethod
    def for_scale(cls, scale: str, **overrides: Any) -> SweepConfig:
        """The settings of ``scale`` (:data:`SWEEP_SCALES`) with ``overrides`` on top."""
        if scale not in SWEEP_SCALES:
            raise ValueError(f"unknown scale {scale!r}; choose from {', '.join(SWEEP_SCALES)}")
        return cls(**{**SWEEP_SCALES[scale], "scale": scale, **overrides})

    @staticmethod
    def capped(k: int, p: int) -> int:
        """The fixed set's real size at K: P, capped at K!."""
        return min(p, math.factorial(k))

    def extra_sizes(self) -> list[int]:
        """The set sizes run at ``set_sizes_at`` besides ``perm_set_size``."""
        return [p for p in self.set_sizes if p != self.perm_set_size]

    def references_at(self, k: int) -> bool:
        """Whether random and supervised run at K."""
        return self.reference_patches is None or k in self.reference_patches

    def points(self) -> list[tuple[int, int, list[str]]]:
        """``(K, P, methods)`` of every point, each run as one small study."""
        out = []
        for k in self.num_patches:
            refs = ["random", "supervised"] if self.references_at(k) else []
            out.append((k, self.perm_set_size, ["rank", "jigsaw", *refs]))
        out += [(self.set_sizes_at, p, ["jigsaw"]) for p in self.extra_sizes()]
        return out

    def study_config(self, k: int, p: int, methods: list[str]) -> StudyConfig:
        """The :class:`StudyConfig` of one point: probes only, no ablations."""
        shared = ("modality", "patches", "seeds", "epochs", "soundfonts", "pitch_step")
        shared += ("batch_size", "lr", "fast", "device", "probe_fractions", "plateau")
        return StudyConfig(
            **{name: getattr(self, name) for name in shared},
            scale=f"permutations-{self.scale}",
            num_patches=k,
            perm_set_size=p,
            methods=methods,
            finetune_fractions=[],
            ablations=False,
        )


def _point_dir(out: Path, k: int, p: int) -> Path:
    return out / "runs" / f"K{k}-P{p}"


def run_sweep(
    cfg: SweepConfig, out: str | Path, *, progress: bool = False, workers: int = 1
) -> dict[str, Any]:
    """Run every point of ``cfg`` (resuming finished encoders), write ``results.json``,
    ``results.md`` and ``differences.png`` into ``out``; return the results."""
    from minis2l.study.permutations_report import plot_sweep, sweep_markdown

    out = Path(out)
    t0 = time.perf_counter()
    points = cfg.points()
    items = load_data(cfg.study_config(*points[0]), progress)
    out.mkdir(parents=True, exist_ok=True)
    done = {}
    for k, p, methods in points:
        print(f"== K = {k}, P = {cfg.capped(k, p)}: {', '.join(methods)}", flush=True)
        scfg = cfg.study_config(k, p, methods)
        done[(k, p)] = run_jobs(
            scfg, _point_dir(out, k, p), items, progress=progress, workers=workers
        )
    results = assemble_sweep(cfg, done, items.tasks)
    record_run(results, items, _command(cfg), t0)
    save_json(out / "results.json", results)
    markdown = sweep_markdown(results)
    atomic_write(out / "results.md", lambda path: path.write_text(markdown))
    plot_sweep(results, out)
    return results


def assemble_sweep(
    cfg: SweepConfig, done: dict[tuple[int, int], dict[Any, dict[str, Any]]], tasks: tuple[str, ...]
) -> dict[str, Any]:
    """The sweep's results (the schema in the module doc) from every point's job results."""
    seeds, fracs = range(cfg.seeds), cfg.probe_fractions
    scores: dict[tuple[int, int | None, str], list[dict[str, Any]]] = {}
    points = []
    for (k, p), jobs in done.items():
        for method in [m for m in ORDER if any(job[0] == m for job in jobs)]:
            size = cfg.capped(k, p) if method == "jigsaw" else None
            runs = [jobs[(method, cfg.patches, s)] for s in seeds]
            scores[(k, size, method)] = [r["scores"] for r in runs]
            histories = [r["history"] for r in runs]
            points.append(
                {
                    "num_patches": k,
                    "perm_set_size": size,
                    "method": method,
                    "pretext": pretext_summary(method, histories) if method in PRETEXTS else {},
                    "probe": {
                        str(f): {
                            t: {"accuracy": summary(_accuracies(scores[(k, size, method)], f, t))}
                            for t in tasks
                        }
                        for f in fracs
                    },
                }
            )
    frac = 0.1 if 0.1 in fracs else min(fracs)
    return {
        "config": asdict(cfg) | {"minis2l_version": __version__},
        "sensitivity": {f"{tasks[0]}_probe_{frac}": _sensitivity(cfg, scores, tasks[0], frac)},
        "points": points,
        "paired": _paired(cfg, scores, tasks),
    }


def _accuracies(runs: list[dict[str, Any]], frac: float, task: str) -> list[float]:
    """One encoder's test accuracy per seed in the probe on ``frac`` of the labels."""
    return [r[f"probe_{frac}"][task]["accuracy"] for r in runs]


def _sensitivity(
    cfg: SweepConfig, scores: dict[tuple, list[dict[str, Any]]], task: str, frac: float
) -> dict[str, float]:
    """Supervised - random on ``task`` with ``frac`` of the labels, at every K with both."""
    out = {}
    for k in cfg.num_patches:
        if cfg.references_at(k):
            sup = _accuracies(scores[(k, None, "supervised")], frac, task)
            rnd = _accuracies(scores[(k, None, "random")], frac, task)
            out[str(k)] = float(sum(sup) / len(sup) - sum(rnd) / len(rnd))
    return out


def _paired(
    cfg: SweepConfig, scores: dict[tuple, list[dict[str, Any]]], tasks: tuple[str, ...]
) -> list[dict[str, Any]]:
    """rank - jigsaw (each set size at that K) and rank - random, paired over seeds, at every
    K, regime and task."""
    out = []
    for k, size, other in scores:
        if other not in ("jigsaw", "random"):
            continue
        for f in cfg.probe_fractions:
            for t in tasks:
                d = paired_difference(
                    _accuracies(scores[(k, None, "rank")], f, t),
                    _accuracies(scores[(k, size, other)], f, t),
                )
                out.append(
                    {
                        "num_patches": k,
                        "perm_set_size": size,
                        "pair": f"rank-{other}",
                        "regime": f"probe_{f}",
                        "task": t,
                        "mean": d["mean"],
                        "ci95": d["ci95"],
                    }
                )
    return out


def _command(cfg: SweepConfig) -> str:
    """The command line that ran the sweep, or the call when it ran from Python."""
    if Path(sys.argv[0]).name in ("__main__.py", "minis2l"):
        return " ".join(["python -m minis2l", *sys.argv[1:]])
    return f"minis2l.study.permutations.run_sweep(SweepConfig.for_scale({cfg.scale!r}))"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``python -m minis2l permutations``."""
    parser.add_argument(
        "--scale",
        choices=list(SWEEP_SCALES),
        help="default: what `make study-permutations` runs (the whole pool, about 2 h on 2 "
        "cores); fast: a smoke test (the default with --fast)",
    )
    parser.add_argument(
        "--out", metavar="DIR", default="runs/permutations", help="default %(default)s"
    )
    parser.add_argument("--seeds", type=int, metavar="N", help="seeds (default: the scale's)")
    parser.add_argument("--epochs", type=int, metavar="N", help="epochs (default: the scale's)")
    parser.add_argument(
        "--plateau",
        type=float,
        metavar="GAIN",
        help=PLATEAU_HELP,
    )
    parser.add_argument(
        "--device",
        default="auto",
        choices=["auto", "cpu", "cuda", "mps"],
        help="default %(default)s",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=min(2, os.cpu_count() or 1),
        metavar="N",
        help="processes sharing the encoders (default %(default)s); a killed sweep resumes",
    )


def run(args: argparse.Namespace) -> int:
    """Run ``python -m minis2l permutations``; errors become one line on stderr and exit 2."""
    from minis2l.study.permutations_report import sweep_markdown

    try:
        scale = args.scale or ("fast" if fast_mode() else "default")
        names = ("seeds", "epochs", "plateau")
        overrides = {k: getattr(args, k) for k in names if getattr(args, k) is not None}
        cfg = SweepConfig.for_scale(scale, device=args.device, **overrides)
        if args.workers < 1:
            raise ValueError(f"--workers must be at least 1, got {args.workers}")
        results = run_sweep(cfg, args.out, progress=sys.stderr.isatty(), workers=args.workers)
    except (ValueError, FileNotFoundError, TypeError) as err:
        print(f"minis2l permutations: error: {err}", file=sys.stderr)
        return 2
    print()
    print(sweep_markdown(results))
    print(f"wrote {args.out}/results.json, results.md and differences.png")
    return 0
