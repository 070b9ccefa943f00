"""``python -m minis2l demo``: run the study from the command line."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from minis2l import modality as M
from minis2l.config import fast_mode
from minis2l.patches import KINDS
from minis2l.pretrain.config import PLATEAU_HELP
from minis2l.study.config import SCALES, StudyConfig
from minis2l.study.pipeline import run_study
from minis2l.study.report import results_markdown

#: Options that override a scale's setting of the same name when given.
_OVERRIDES = (
    "seeds",
    "patches",
    "num_patches",
    "perm_set_size",
    "epochs",
    "plateau",
    "jigsaw_epochs",
    "jigsaw_lr",
)


def _each(attr: str) -> str:
    """``"audio freq, image 2d, video time"``: each modality's value of ``attr``."""
    return ", ".join(f"{m.name} {getattr(m, attr)}" for m in M.MODALITIES.values())


def _add_budget_arguments(parser: argparse.ArgumentParser) -> None:
    """Options that change how long the encoders train: the plateau stop, jigsaw's own budget."""
    parser.add_argument(
        "--plateau",
        type=float,
        metavar="GAIN",
        help=PLATEAU_HELP,
    )
    parser.add_argument(
        "--jigsaw-epochs",
        type=int,
        metavar="N",
        help="jigsaw's own pretraining epochs (default: the study's)",
    )
    parser.add_argument(
        "--jigsaw-lr",
        type=float,
        metavar="LR",
        help="jigsaw's own learning rate (default: the study's)",
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``python -m minis2l demo``."""
    scales = "; ".join(f"{m.name}: {', '.join(m.scales)}" for m in M.MODALITIES.values())
    parser.add_argument(
        "--scale",
        choices=SCALES,
        help=f"the study's size (default: fast with --fast, else demo); scales per modality: "
        f"{scales}. full is what `make study` runs",
    )
    parser.add_argument(
        "--modality",
        choices=list(M.MODALITIES),
        default=M.DEFAULT,
        help="; ".join(f"{m.name}: {m.summary}" for m in M.MODALITIES.values())
        + " (default %(default)s)",
    )
    parser.add_argument(
        "--soundfont",
        metavar="PATH",
        action="append",
        help=f"{M.taking('soundfonts')}: SoundFont(s) to use instead of the scale's (repeat for "
        "several)",
    )
    parser.add_argument(
        "--images",
        metavar="DIR",
        help=f"{M.taking('images')}: a folder with Fashion-MNIST's four IDX files (default: "
        "Debian's dataset-fashion-mnist, else scikit-learn's digits)",
    )
    parser.add_argument("--seeds", type=int, metavar="N", help="seeds (default: the scale's)")
    parser.add_argument(
        "--out", metavar="DIR", default="runs/demo", help="output folder (default %(default)s)"
    )
    parser.add_argument(
        "--patches", choices=KINDS, help=f"patch type (default: the modality's: {_each('patches')})"
    )
    parser.add_argument(
        "--num-patches", type=int, metavar="K", help=f"K (default: {_each('num_patches')})"
    )
    parser.add_argument(
        "--perm-set-size",
        type=int,
        metavar="P",
        help=f"jigsaw's fixed set (default {StudyConfig.perm_set_size})",
    )
    parser.add_argument(
        "--epochs", type=int, metavar="N", help="pretraining epochs (default: the scale's)"
    )
    _add_budget_arguments(parser)
    parser.add_argument(
        "--device",
        default=StudyConfig.device,
        choices=["auto", "cpu", "cuda", "mps"],
        help="default %(default)s",
    )
    parser.add_argument(
        "--no-ablations", action="store_true", help="skip the patch-type ablation and layer probes"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=min(2, os.cpu_count() or 1),
        metavar="N",
        help="processes sharing the encoders, each with its share of the CPU threads (default "
        "%(default)s: 2 where there are 2 cores or more). A killed study resumes from its "
        "finished encoders.",
    )


def config_from_args(args: argparse.Namespace) -> StudyConfig:
    """The :class:`StudyConfig` a command line asks for."""
    scale = args.scale or ("fast" if fast_mode() else "demo")
    overrides: dict[str, Any] = {"device": args.device, "modality": args.modality}
    for name in _OVERRIDES:
        if getattr(args, name) is not None:
            overrides[name] = getattr(args, name)
    for flag, name, value in (
        ("--soundfont", "soundfonts", args.soundfont and list(args.soundfont)),
        ("--images", "images", args.images),
    ):
        if value:
            if name not in M.get(args.modality).options:
                raise ValueError(f"{flag} is for --modality {M.taking(name)}, not {args.modality}")
            overrides[name] = value
    if args.no_ablations:
        overrides["ablations"] = False
    return StudyConfig.for_scale(scale, **overrides)


def run(args: argparse.Namespace) -> int:
    """Run ``python -m minis2l demo``; errors become one line on stderr and exit 2."""
    try:
        cfg = config_from_args(args)
        if args.workers < 1:
            raise ValueError(f"--workers must be at least 1, got {args.workers}")
        results = run_study(cfg, args.out, progress=sys.stderr.isatty(), workers=args.workers)
    except (ValueError, FileNotFoundError, TypeError) as err:
        print(f"minis2l demo: error: {err}", file=sys.stderr)
        return 2
    print()
    print(results_markdown(results))
    seconds = results["config"]["seconds"]
    print(f"wrote {args.out}/results.json, results.md and plots in {seconds:.0f} s")
    return 0
