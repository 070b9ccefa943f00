"""The ``python -m minis2l`` command line.

Each subcommand lives in the module that implements it; this file only wires them together.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Sequence
from types import ModuleType

from minis2l import __version__
from minis2l.config import set_fast_mode

EXIT_USAGE = 2  # no subcommand given: the help is printed

# name -> (one-line help, description)
_SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "data": (
        "render the NSynth-style note dataset from a SoundFont",
        "Render musical notes from a General MIDI SoundFont, compute log-mel features and "
        "write instrument-disjoint train/valid/test splits.",
    ),
    "pretrain": (
        "pretrain an encoder by un-shuffling spectrogram patches",
        "Pretrain an encoder on the permutation pretext task, with the soft-rank head "
        "(all permutations) or the jigsaw head (a fixed set).",
    ),
    "probe": (
        "fit linear probes (family, pitch; class, direction) on a frozen encoder",
        "Freeze an encoder checkpoint and fit linear probes for its modality's tasks.",
    ),
    "demo": (
        "run the whole study: data, pretraining, probes, results table",
        "The main job: build the data, pretrain every method, probe, and write the results "
        "table and plots.",
    ),
    "permutations": (
        "rank against jigsaw as K grows: the permutation sweep",
        "Sweep K (frequency patches) and jigsaw's fixed-set size: rank, jigsaw and the "
        "references at each point, linear probes, paired differences with 95 % intervals "
        "(make study-permutations writes results/permutations).",
    ),
    "assignments": (
        "build nbgrader student releases from the notebooks",
        "Build an nbgrader course directory from the notebooks and generate student releases.",
    ),
    "student": (
        "write the student edition of the notebooks (solutions and hidden tests removed)",
        "Write every notebook without its solutions and hidden tests, for a learner working "
        "alone. Notebooks you have changed are never overwritten.",
    ),
}

# Subcommands: name -> the module that implements it, exposing ``add_arguments(parser)`` and
# ``run(args) -> int``.
_IMPLEMENTED: dict[str, str] = {
    "data": "minis2l.data",
    "pretrain": "minis2l.pretrain",
    "probe": "minis2l.probe",
    "demo": "minis2l.study",
    "permutations": "minis2l.study.permutations",
    "assignments": "minis2l.assignments.cli",
    "student": "minis2l.assignments.student",
}


def _module(name: str) -> ModuleType:
    return importlib.import_module(_IMPLEMENTED[name])


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="python -m minis2l",
        description="minis2l: self-supervised audio representations from permutations with "
        "differentiable ranking.",
        epilog="Fast mode (--fast or MINIS2L_FAST=1) shrinks data and epochs for a quick run.",
    )
    parser.add_argument("--version", action="version", version=f"minis2l {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (short, description) in _SUBCOMMANDS.items():
        p = sub.add_parser(name, help=short, description=description)
        p.add_argument("--fast", action="store_true", help="small data and few epochs")
        _module(name).add_arguments(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default: ``sys.argv[1:]``), run the subcommand, return its status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    if args.fast:
        set_fast_mode(True)
    return _module(args.command).run(args)
