"""``python -m minis2l pretrain``: one pretraining run from the command line."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import fields

from minis2l import modality as M
from minis2l.config import fast_mode
from minis2l.pretrain.config import PLATEAU_HELP, PretrainConfig
from minis2l.pretrain.loop import pretrain

_DEFAULTS = {f.name: f.default for f in fields(PretrainConfig)}


def _modality_defaults(attr: str) -> str:
    """``"audio freq, image 2d, video time"``: each modality's value of ``attr``."""
    return ", ".join(f"{m.name} {getattr(m, attr)}" for m in M.MODALITIES.values())


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``python -m minis2l pretrain``."""
    parser.add_argument(
        "--method",
        default=_DEFAULTS["method"],
        help="rank (all K! permutations, soft-rank loss), jigsaw (a fixed set of P, "
        "classification) or supervised (the labels: the reference); default %(default)s",
    )
    parser.add_argument(
        "--modality",
        default=_DEFAULTS["modality"],
        choices=list(M.MODALITIES),
        help="; ".join(f"{m.name}: {m.summary}" for m in M.MODALITIES.values())
        + " (default %(default)s)",
    )
    parser.add_argument(
        "--patches",
        help=f"time, freq or 2d (default: the modality's: {_modality_defaults('patches')})",
    )
    parser.add_argument(
        "--num-patches",
        type=int,
        metavar="K",
        help=f"number of patches K (default: the modality's: {_modality_defaults('num_patches')})",
    )
    parser.add_argument(
        "--jitter",
        type=int,
        metavar="PX",
        help="pixels randomly cropped off each patch, leaving gaps (default: the modality's: "
        f"{_modality_defaults('jitter')})",
    )
    parser.add_argument(
        "--perm-set-size",
        type=int,
        default=_DEFAULTS["perm_set_size"],
        metavar="P",
        help="jigsaw: size of the fixed set, capped at K! (default %(default)s)",
    )
    parser.add_argument("--epochs", type=int, metavar="N", help="default 12 (2 with --fast)")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=_DEFAULTS["batch_size"],
        metavar="B",
        help="global batch size (default %(default)s)",
    )
    parser.add_argument(
        "--lr",
        type=float,
        default=_DEFAULTS["lr"],
        help="peak learning rate (default %(default)s)",
    )
    parser.add_argument(
        "--regularization-strength",
        type=float,
        metavar="EPS",
        default=_DEFAULTS["regularization_strength"],
        help="soft rank's epsilon (default %(default)s)",
    )
    parser.add_argument(
        "--seed", type=int, default=_DEFAULTS["seed"], metavar="S", help="default %(default)s"
    )
    parser.add_argument(
        "--device",
        default=_DEFAULTS["device"],
        choices=["auto", "cpu", "cuda", "mps"],
        help="default %(default)s: CUDA, then MPS, then CPU",
    )
    parser.add_argument(
        "--plateau",
        type=float,
        metavar="GAIN",
        help=PLATEAU_HELP,
    )
    parser.add_argument("--compile", action="store_true", help="torch.compile the model")
    _add_file_arguments(parser)


def _add_file_arguments(parser: argparse.ArgumentParser) -> None:
    """Where the data come from and where the run goes."""
    parser.add_argument(
        "--data",
        metavar="DIR",
        help="where the modality's items are: a built note data set, a folder of IDX files "
        "(default: the modality's own source, built when missing)",
    )
    parser.add_argument(
        "--soundfont",
        metavar="PATH",
        help=f"{M.taking('soundfont')}: the SoundFont of the default data set",
    )
    parser.add_argument(
        "--images",
        metavar="DIR",
        help=f"{M.taking('images')}: a folder with Fashion-MNIST's four IDX files (the same as "
        "--data; default: Debian's dataset-fashion-mnist, else scikit-learn's digits)",
    )
    parser.add_argument(
        "--out",
        metavar="DIR",
        default="runs/pretrain",
        help="output directory (default %(default)s)",
    )
    parser.add_argument(
        "--resume", action="store_true", help="continue the run in --out from its last checkpoint"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace a run already in --out")


def config_from_args(args: argparse.Namespace) -> PretrainConfig:
    """The :class:`PretrainConfig` a command line asks for (fast mode from the environment)."""
    if args.images and "images" not in M.get(args.modality).options:
        raise ValueError(f"--images is for --modality {M.taking('images')}, not {args.modality}")
    given = {k: v for k, v in vars(args).items() if k in _DEFAULTS and k not in ("fast", "data")}
    return PretrainConfig(**given, fast=fast_mode(), data=args.images or args.data)


def run(args: argparse.Namespace) -> int:
    """Run ``python -m minis2l pretrain``; errors become one line on stderr and exit 2."""
    try:
        cfg = config_from_args(args)
        ckpt = pretrain(
            cfg, args.out, resume=args.resume, overwrite=args.overwrite, resume_epochs=args.epochs
        )
    except (ValueError, FileNotFoundError, FileExistsError, TypeError) as err:
        print(f"minis2l pretrain: error: {err}", file=sys.stderr)
        return 2
    last = ckpt["metrics"][-1] if ckpt.get("metrics") else {}
    if int(os.environ.get("RANK", "0")) == 0 and last:
        if cfg.method == "supervised":
            summary = f"valid supervised accuracy {last['valid_accuracy']:.3f}"
        else:
            summary = (
                f"valid, shuffles from all K!: exact-reorder {last['valid_exact']:.3f}, "
                f"Spearman {last['valid_spearman']:.3f}"
            )
            if cfg.method == "jigsaw":
                summary += f"; on its own set: exact {last['valid_own_exact']:.3f}"
        print(f"done: {args.out}/checkpoint.pt; {summary}")
    return 0
